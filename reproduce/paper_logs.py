"""The paper's published ImageNet training logs, and one run's curve beside them.

The paper's repository publishes the training log of its ImageNet rows (``hunto/DIST_KD`` release
``v0.0.1``, one text file per row, written by ``image_classification_sota``). Its validation lines
read, one per logged batch,

    22-05-20 10:11:12 INFO Test: 37 [ 195/196] Loss: 1.234 (1.301) Top-1: 70.000% (69.912%) Top-5: ...

with the running average in parentheses; the line of an epoch's last batch carries that epoch's
top-1 (``Test(EMA):`` the EMA weights', ``Test (teacher):`` the teacher's, both kept apart).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

from distkd.errors import UserError

RELEASE = "https://github.com/hunto/DIST_KD/releases/download/v0.0.1"
DEFAULT_DIR = Path("checkpoints") / "paper_logs"
# (student model, teacher model, recipe) -> log file of the paper's release. The stronger-teacher
# rows (R50/101/152 teachers) and the R34->R18 KD column have no published log.
PAPER_LOGS = {
    ("tv_resnet18", "tv_resnet34", "plain"): "baseline_Res34-Res18.txt",
    ("mobilenet_v1", "tv_resnet50", "plain"): "baseline_Res50-MBV1.txt",
    ("tv_resnet18", "timm_resnet50", "strong"): "stronger_Res50SB-Res18.txt",
    ("tv_resnet34", "timm_resnet50", "strong"): "stronger_Res50SB-Res34.txt",
    ("tv_mobilenet_v2", "timm_resnet50", "strong"): "stronger_Res50SB-MBV2.txt",
    ("timm_tf_efficientnet_b0", "timm_resnet50", "strong"): "stronger_Res50SB-EfficientNetB0.txt",
    ("tv_resnet50", "timm_swin_large_patch4_window7_224", "strong"): "stronger_SwinL-Res50.txt",
}
_TEST_LINE = re.compile(r"Test(?P<suffix>[^:]*): (?P<epoch>\d+) \[\s*(?P<batch>\d+)/(?P<batches>\d+)\]"
                        r".*?Top-1: [\d.]+% \((?P<top1>[\d.]+)%\)")


def parse_log(text: str) -> dict[str, dict[int, float]]:
    """``{'top1': {epoch: top-1}, 'top1_ema': {...}, 'teacher': {...}}`` from the original trainer's log
    (series that do not occur are left out)."""
    series: dict[str, dict[int, float]] = {}
    for match in _TEST_LINE.finditer(text):
        if int(match["batch"]) != int(match["batches"]) - 1:
            continue
        suffix = match["suffix"].strip().lower()
        key = "top1" if not suffix else "top1_ema" if "ema" in suffix else "teacher" if "teacher" in suffix else None
        if key:
            series.setdefault(key, {})[int(match["epoch"])] = float(match["top1"])
    if "top1" not in series:
        raise UserError("no per-epoch validation lines ('Test: EPOCH [LAST/N] ... Top-1: x% (AVG%)') in the paper "
                        "log: is it a log of image_classification_sota's trainer?")
    return series


def log_name_for(student: str, teacher: str | None, config: str | None) -> str:
    recipe = "strong" if config and "b2" in Path(config).name else "plain"
    name = PAPER_LOGS.get((student, teacher or "", recipe))
    if name is None:
        rows = ", ".join(f"{s} <- {t} ({r})" for s, t, r in PAPER_LOGS)
        raise UserError(f"the paper published no log for {student} <- {teacher} ({recipe} recipe); logs exist for: "
                        f"{rows}; or pass a log file with --paper-log PATH")
    return name


def get_paper_log(name_or_path: str, fetch: Callable[[str, Path], Path], folder: str | Path = DEFAULT_DIR) -> Path:
    """A log file given by path, or one of :data:`PAPER_LOGS` by file name, fetched by ``fetch(url,
    target)`` (the caller's verified downloader: ``tools/report.py`` downloads once and records the
    SHA-256 trust-on-first-use in ``folder/sha256.json``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if name_or_path not in PAPER_LOGS.values():
        raise UserError(f"--paper-log '{name_or_path}' is neither a file nor one of the paper's logs: "
                        f"{', '.join(sorted(PAPER_LOGS.values()))}")
    return fetch(f"{RELEASE}/{name_or_path}", Path(folder) / name_or_path)


def read_run(run_dir: str | Path) -> dict[int, float]:
    """``{epoch: val_top1}`` from a run's ``metrics.csv``."""
    metrics = Path(run_dir) / "metrics.csv"
    if not metrics.is_file():
        raise UserError(f"no metrics.csv in '{run_dir}': pass the folder of one run (experiments/NAME)")
    with open(metrics, newline="") as f:
        return {int(float(r["epoch"])): float(r["val_top1"]) for r in csv.DictReader(f) if r.get("val_top1")}


def first_departure(paper: dict[int, float], run: dict[int, float], tolerance: float) -> int | None:
    """The first epoch both have where the run's top-1 differs from the paper's by more than ``tolerance``."""
    return next((e for e in sorted(set(paper) & set(run)) if abs(run[e] - paper[e]) > tolerance), None)


def compare(paper_log: Path, run_dir: str | Path, out_png: str | Path, tolerance: float = 1.0) -> str:
    """Draw the paper's per-epoch top-1 beside the run's; return a one-paragraph summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = parse_log(Path(paper_log).read_text(errors="replace"))["top1"]
    run = read_run(run_dir)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(sorted(paper), [paper[e] for e in sorted(paper)], label=f"paper ({Path(paper_log).name})", color="#777777")
    ax.plot(sorted(run), [run[e] for e in sorted(run)], label=f"yours ({Path(run_dir).name})", color="#55a868")
    departs = first_departure(paper, run, tolerance)
    if departs is not None:
        ax.axvline(departs, color="#c44e52", ls="--", lw=1, label=f"departs by > {tolerance:g} at epoch {departs}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    common = sorted(set(paper) & set(run))
    last = common[-1] if common else None
    lines = [f"paper: {len(paper)} epochs, best {max(paper.values()):.2f}; yours: {len(run)} epochs, "
             f"best {max(run.values()):.2f}" if run else "yours: no epochs yet"]
    if last is not None:
        lines.append(f"epoch {last}: paper {paper[last]:.2f}, yours {run[last]:.2f} ({run[last] - paper[last]:+.2f})")
    lines.append(f"first epoch off by more than {tolerance:g} point(s): {departs}" if departs is not None
                 else f"within {tolerance:g} point(s) of the paper at every common epoch")
    return "\n".join(lines + [f"written: {out_png}"])
