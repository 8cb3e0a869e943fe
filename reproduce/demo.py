"""The embedded demo: what distillation adds when the student alone falls short of its teacher.

On scikit-learn's bundled digits, a teacher (``cifar_resnet20``) trains on the whole training split;
then a smaller student (``cifar_resnet8``) trains on a tenth of it (``--train-fraction 0.1``, about
14 images per class) without KD, with KD (T=4) and with DIST (tau=4), over 3 seeds, all through the
same trainer. Prints (and saves as ``demo_results.md`` / ``.png``) teacher and mean ± std of each
method.

    python tools/demo.py                  # about 7 minutes on 2 CPU cores
    python tools/demo.py --resume auto    # after Ctrl-C: finished runs are kept, the interrupted one continues

The same command prints the same table on a machine of the same kind: every run is seeded, reads
its data in the main process, uses deterministic kernels and one CPU thread (``--threads``: another
thread count sums floats in another order, which changes the last digits of the weights, and after
a few epochs some accuracies). An earlier demo in ``--output`` is never removed silently: the demo
refuses to start over it without ``--resume auto`` (continue) or ``--overwrite`` (start again).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path

from classification.config import fill_defaults, parse_args
from classification.train import main as train_main
from distkd.errors import UserError
from distkd_cli.args import ArgumentParser
from distkd_cli.recipes import RECIPES
from reproduce.sweep import recorded_differences

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
_DIGITS = RECIPES["digits"]  # the same KD / DIST loss weights as `tools/reproduce.py digits`
METHODS = (
    ("baseline", []),
    ("KD (T=4)", ["--kd", _DIGITS.kd[1], *_DIGITS.kd[2]]),
    ("DIST (tau=4)", ["--kd", _DIGITS.dist[1], *_DIGITS.dist[2]]),
)
RESULTS = ("demo_results.md", "demo_results.png")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="cifar_resnet20")
    p.add_argument("--student", default="cifar_resnet8")
    p.add_argument("--train-fraction", type=float, default=0.1, help="students' share of the training split")
    p.add_argument("--epochs", type=int, default=None, help="teacher epochs (default: the config's 10)")
    p.add_argument("--student-epochs", type=int, default=20)
    p.add_argument("--student-batch-size", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3, help="students are trained with seeds 0..N-1")
    p.add_argument("--max-iters-per-epoch", type=int, default=0, help="cap iterations (quick checks)")
    p.add_argument("--seed", type=int, default=42, help="the teacher's seed")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (tiny models gain nothing from more; 0 = torch's default); the "
                        "table is reproducible for one thread count")
    p.add_argument("--output", default="experiments/demo")
    p.add_argument("--resume", nargs="?", const="auto", default=None, choices=["auto"],
                   help="continue an earlier (interrupted) demo in --output: finished runs are kept, an interrupted "
                        "one continues from its last checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start again: remove the earlier demo's runs and results in --output first")
    args = p.parse_args(argv)
    for name in ("seeds", "student_epochs", "student_batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if not 0 < args.train_fraction <= 1:
        raise UserError(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
    if args.resume and args.overwrite:
        raise UserError("--resume auto continues the earlier demo, --overwrite removes it: pass one of them")
    return args


def plan(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """Every run of the demo: (row of the table, experiment name, the trainer's command line)."""
    out = Path(args.output)
    common = ["-c", CONFIG, "--output", str(out), "--device", "cpu", "--deterministic",
              "--max-iters-per-epoch", str(args.max_iters_per_epoch)]
    teacher = ["--model", args.teacher, "--experiment", "teacher", "--seed", str(args.seed)]
    runs = [("teacher", "teacher", common + teacher + (["--epochs", str(args.epochs)] if args.epochs else []))]
    kd = ["--teacher-model", args.teacher, "--teacher-ckpt", str(out / "teacher" / "best.pth")]
    for method, extra in METHODS:
        for seed in range(args.seeds):
            name = f"student_{method.split()[0].lower()}_s{seed}"
            student = ["--model", args.student, "--experiment", name, "--train-fraction", str(args.train_fraction),
                       "--epochs", str(args.student_epochs), "-b", str(args.student_batch_size), "--seed", str(seed)]
            runs.append((f"student {method}", name, common + student + extra + (kd if extra else [])))
    return runs


def check_earlier(args: argparse.Namespace, runs: list[tuple[str, str, list[str]]]) -> None:
    """Never start over an earlier demo silently: continue it (--resume auto, same options only),
    remove it (--overwrite), or refuse, saying which."""
    out = Path(args.output)
    earlier = [out / name for _, name, _ in runs if (out / name).exists()]
    results = [out / name for name in RESULTS if (out / name).exists()]
    if not earlier and not results:
        return
    if args.overwrite:
        for path in earlier:
            shutil.rmtree(path)
        for path in results:
            path.unlink()
        print(f"--overwrite: removed the earlier demo in '{out}' ({len(earlier)} runs)")
        return
    if not args.resume:
        raise UserError(f"'{out}' holds an earlier demo ({len(earlier)} runs{', a results table' if results else ''}):"
                        " continue it with --resume auto, start again with --overwrite (removes it), or pass "
                        "--output DIR")
    for _, name, argv in runs:
        changed = recorded_differences(out / name, vars(fill_defaults(parse_args(argv))))
        if changed:
            raise UserError(f"the earlier demo's run '{out / name}' was started with other options "
                            f"({', '.join(changed)}): start again with --overwrite, or pass --output DIR")
    for path in results:  # rewritten at the end; never left stale by an interrupted continuation
        path.unlink()


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def write_table(rows: list[tuple[str, str, list[float]]], out: Path, fraction: float) -> str:
    lines = ["| run | model | train data | best top-1 (%) mean ± std | seeds |", "|---|---|---|---|---|"]
    for run, model, values in rows:
        mean, std = _mean_std(values)
        data = "all" if run == "teacher" else f"{fraction:.0%}"
        lines.append(f"| {run} | {model} | {data} | {mean:.2f} ± {std:.2f} | {len(values)} |")
    table = "\n".join(lines)
    (out / "demo_results.md").write_text(table + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = [_mean_std(v) for _, _, v in rows]
    fig, ax = plt.subplots(figsize=(7.5, 3.5))
    bars = ax.bar([r[0] for r in rows], [m for m, _ in stats], yerr=[s for _, s in stats], capsize=4,
                  color=["#777777", "#4c72b0", "#dd8452", "#55a868"][: len(rows)])
    ax.bar_label(bars, labels=[f"{m:.1f}±{s:.1f}" for m, s in stats], label_type="center", color="white")
    ax.set_ylim(max(0.0, min(m - s for m, s in stats) - 10), 100)
    ax.set_ylabel("best val top-1 (%)")
    ax.set_title(f"digits: teacher (all data) vs. student on {fraction:.0%} of the data")
    fig.tight_layout()
    fig.savefig(out / "demo_results.png", dpi=100)
    plt.close(fig)
    return table


def main(argv: Sequence[str] | None = None) -> str:
    args = parse(argv)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    runs = plan(args)
    check_earlier(args, runs)
    scores: dict[str, list[float]] = {}
    models = {}
    for row, _, run_argv in runs:  # --resume auto: a fresh run starts, a finished one returns its best at once
        scores.setdefault(row, []).append(train_main(run_argv + ["--resume", "auto"])["best_top1"])
        models[row] = run_argv[run_argv.index("--model") + 1]
    out = Path(args.output)
    table = write_table([(row, models[row], values) for row, values in scores.items()], out, args.train_fraction)
    print("\n" + table + f"\n\nwritten: {out / RESULTS[0]}, {out / RESULTS[1]}")
    return table
