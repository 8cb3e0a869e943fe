"""The embedded demo: what distillation adds when the student alone falls short of its teacher.

On scikit-learn's bundled digits, a teacher (``cifar_resnet20``) trains on the whole training split;
then a smaller student (``cifar_resnet8``) trains on a tenth of it (``--train-fraction 0.1``, about
14 images per class) without KD, with KD (T=4) and with DIST (tau=4), over 3 seeds, all through the
same trainer. Prints (and saves as ``demo_results.md`` / ``.png``) teacher and mean ± std of each
method.

    python tools/demo.py            # a few minutes on 2 idle CPU cores
"""
from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

from classification.train import main as train_main
from distkd.errors import UserError
from distkd.utils.config import ArgumentParser
from reproduce.sweep import RECIPES

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
_DIGITS = RECIPES["digits"]  # the same KD / DIST loss weights as `tools/reproduce.py digits`
METHODS = (
    ("baseline", []),
    ("KD (T=4)", ["--kd", _DIGITS.kd[1], *_DIGITS.kd[2]]),
    ("DIST (tau=4)", ["--kd", _DIGITS.dist[1], *_DIGITS.dist[2]]),
)


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
                   help="torch intra-op threads (tiny models gain nothing from more; 0 = torch's default)")
    p.add_argument("--output", default="experiments/demo")
    args = p.parse_args(argv)
    for name in ("seeds", "student_epochs", "student_batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if not 0 < args.train_fraction <= 1:
        raise UserError(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
    return args


def _train(args: argparse.Namespace, name: str, model: str, extra: list[str]) -> dict[str, float]:
    argv = ["-c", CONFIG, "--model", model, "--output", args.output, "--experiment", name, "--overwrite",
            "--device", "cpu", "--max-iters-per-epoch", str(args.max_iters_per_epoch)]
    return train_main(argv + extra)


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
    out = Path(args.output)
    teacher_extra = ["--seed", str(args.seed)] + (["--epochs", str(args.epochs)] if args.epochs else [])
    teacher = _train(args, "teacher", args.teacher, teacher_extra)
    rows = [("teacher", args.teacher, [teacher["best_top1"]])]
    kd = ["--teacher-model", args.teacher, "--teacher-ckpt", str(out / "teacher" / "best.pth")]
    for method, extra in METHODS:
        scores = []
        for seed in range(args.seeds):
            student = ["--train-fraction", str(args.train_fraction), "--epochs", str(args.student_epochs),
                       "-b", str(args.student_batch_size), "--seed", str(seed)]
            name = f"student_{method.split()[0].lower()}_s{seed}"
            scores.append(_train(args, name, args.student, student + extra + (kd if extra else []))["best_top1"])
        rows.append((f"student {method}", args.student, scores))
    table = write_table(rows, out, args.train_fraction)
    print("\n" + table + f"\n\nwritten: {out / 'demo_results.md'}, {out / 'demo_results.png'}")
    return table
