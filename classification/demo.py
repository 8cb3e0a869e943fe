"""The embedded demo: on scikit-learn's bundled digits, train a teacher, then a student without KD,
with KD (T=4) and with DIST, all through the same trainer; print and save a table and a bar chart.

    python tools/demo.py            # under a minute on 2 idle CPU cores
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from classification.train import main as train_main
from distkd.reproduce.commands import RECIPES

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
_DIGITS = RECIPES["digits"]  # the same recipe as `tools/reproduce.py digits`
METHODS = (
    ("baseline", []),
    ("KD (T=4)", ["--kd", _DIGITS.kd[1], *_DIGITS.kd[2]]),
    ("DIST (tau=4)", ["--kd", _DIGITS.dist[1], *_DIGITS.dist[2]]),
)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="cifar_resnet20")
    p.add_argument("--student", default="cifar_resnet8")
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--max-iters-per-epoch", type=int, default=0, help="cap iterations (quick checks)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", default="experiments/demo")
    return p.parse_args(argv)


def _train(args: argparse.Namespace, name: str, model: str, extra: list[str]) -> dict[str, float]:
    argv = ["-c", CONFIG, "--model", model, "--output", args.output, "--experiment", name, "--overwrite",
            "--seed", str(args.seed), "--device", "cpu", "--max-iters-per-epoch", str(args.max_iters_per_epoch)]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    return train_main(argv + extra)


def write_table(rows: list[tuple[str, str, float, float]], out: Path) -> str:
    lines = ["| run | model | best top-1 (%) | last top-1 (%) |", "|---|---|---|---|"]
    lines += [f"| {run} | {model} | {best:.2f} | {last:.2f} |" for run, model, best, last in rows]
    table = "\n".join(lines)
    (out / "demo_results.md").write_text(table + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.5))
    names = [r[0] for r in rows]
    bars = ax.bar(names, [r[2] for r in rows], color=["#777777", "#4c72b0", "#dd8452", "#55a868"][: len(rows)])
    ax.bar_label(bars, fmt="%.1f")
    low = min(r[2] for r in rows)
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.set_ylabel("best val top-1 (%)")
    ax.set_title("digits: teacher and student without KD / with KD / with DIST")
    fig.tight_layout()
    fig.savefig(out / "demo_results.png", dpi=100)
    plt.close(fig)
    return table


def main(argv: Sequence[str] | None = None) -> str:
    args = parse(argv)
    out = Path(args.output)
    teacher = _train(args, "teacher", args.teacher, [])
    rows = [("teacher", args.teacher, teacher["best_top1"], teacher["top1"])]
    teacher_ckpt = str(out / "teacher" / "best.pth")
    for method, extra in METHODS:
        kd = ["--teacher-model", args.teacher, "--teacher-ckpt", teacher_ckpt] if extra else []
        stats = _train(args, f"student_{method.split()[0].lower()}", args.student, extra + kd)
        rows.append((f"student {method}", args.student, stats["best_top1"], stats["top1"]))
    table = write_table(rows, out)
    print("\n" + table + f"\n\nwritten: {out / 'demo_results.md'}, {out / 'demo_results.png'}")
    return table
