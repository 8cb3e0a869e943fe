"""What the paper did: its result tables, its training recipes and its published ImageNet logs.

- Tables: typed rows read from the bundled ``paper_tables.csv``; each row is one student/teacher
  pair with the paper's baseline (student trained alone), teacher, KD (T=4), DIST and DIST+mimic
  results. The project adds one row of its own, the CPU-sized ``digits`` benchmark (no paper numbers).
- Recipes: the configs and ``--kd`` names of each classification recipe, and the detection configs.
- Logs: the paper's repository publishes the training log of its ImageNet rows (``hunto/DIST_KD``
  release ``v0.0.1``, one text file per row, written by ``image_classification_sota``). Its
  validation lines read, one per logged batch,

      22-05-20 10:11:12 INFO Test: 37 [ 195/196] Loss: 1.234 (1.301) Top-1: 70.000% (69.912%) Top-5: ...

  with the running average in parentheses; the line of an epoch's last batch carries that epoch's
  top-1 (``Test(EMA):`` the EMA weights', ``Test (teacher):`` the teacher's, both kept apart).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from distkd.errors import UserError

# --- paper -------------------------------------------------------------------------------------

_TABLE_OF = {
    ("cifar100", "standard"): "cifar100",
    ("imagenet", "baseline"): "imagenet_baseline",
    ("imagenet", "stronger_teacher"): "imagenet_stronger_teachers",
    ("imagenet", "stronger_strategy"): "imagenet_strong_strategy",
    ("cityscapes", "standard"): "cityscapes",
    ("coco", "standard"): "coco",
}
PAPER_TABLES = tuple(dict.fromkeys(_TABLE_OF.values()))
TABLES = (*PAPER_TABLES, "digits")

# The training recipe a table's runs share; it tells apart runs of the same models on ImageNet
# (the plain 100-epoch recipe versus the strong 450-epoch one).
RECIPE_OF_TABLE = {
    "cifar100": "cifar",
    "imagenet_baseline": "plain",
    "imagenet_stronger_teachers": "plain",
    "imagenet_strong_strategy": "strong",
    "cityscapes": "seg",
    "coco": "det",
    "digits": "digits",
}

# The result columns of a row, by task, in display order.
ROLES_OF_TASK = {
    "classification": ("teacher", "baseline", "kd", "dist"),
    "segmentation": ("teacher", "baseline", "dist"),
    "detection": ("teacher", "baseline", "dist", "dist_mimic"),
}
_SETTING_ITEM = re.compile(r"([a-z][a-z0-9-]*)\s+([0-9.eE+-]+)")


@dataclass(frozen=True)
class PaperRow:
    """One student/teacher pair of a table and the paper's numbers for it (``None``: not given)."""

    table: str
    task: str
    dataset: str
    student: str
    student_model: str
    teacher: str
    teacher_model: str
    metric: str
    config: str
    baseline: float | None = None
    teacher_acc: float | None = None
    kd: float | None = None
    dist: float | None = None
    dist_std: float | None = None
    dist_mimic: float | None = None
    source: str = "paper"

    @property
    def recipe(self) -> str:
        return RECIPE_OF_TABLE[self.table]

    @property
    def roles(self) -> tuple[str, ...]:
        return ROLES_OF_TASK[self.task]

    @property
    def label(self) -> str:
        return f"{self.student} <- {self.teacher}"

    @property
    def config_path(self) -> str | None:
        """The config file of the row's DIST run, or ``None`` when it was trained elsewhere."""
        path = self.config.split(" (", 1)[0].strip()
        return path if path.startswith("configs/") else None

    @property
    def note(self) -> str:
        """The parenthesised remark of the config column, e.g. ``lr 0.01; warmup-lr 0.01``."""
        match = re.search(r"\((.*)\)", self.config)
        return match.group(1).strip() if match else ""

    @property
    def overrides(self) -> tuple[str, ...]:
        """Command-line options the row adds to its recipe: ``lr 0.01`` -> ``--lr 0.01``."""
        args: list[str] = []
        for item in self.note.split(";"):
            match = _SETTING_ITEM.fullmatch(item.strip())
            if match:
                args += [f"--{match.group(1)}", match.group(2)]
        return tuple(args)

    def paper_value(self, role: str) -> float | None:
        return {
            "teacher": self.teacher_acc,
            "baseline": self.baseline,
            "kd": self.kd,
            "dist": self.dist,
            "dist_mimic": self.dist_mimic,
        }[role]


DIGITS_ROW = PaperRow(
    table="digits",
    task="classification",
    dataset="digits",
    student="ResNet-8",
    student_model="cifar_resnet8",
    teacher="ResNet-20",
    teacher_model="cifar_resnet20",
    metric="top1",
    config="configs/digits.yaml",
    source="project",
)


def _number(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def bundled_csv() -> Path:
    return Path(str(resources.files("reproduce") / "paper_tables.csv"))


def load_paper_rows(path: str | Path | None = None) -> list[PaperRow]:
    """Every row of the paper's tables (``path`` defaults to the bundled copy of the CSV)."""
    path = Path(path) if path is not None else bundled_csv()
    if not path.is_file():
        raise UserError(f"paper table not found: '{path}'; reinstall distkd or pass the CSV path")
    rows = []
    with open(path, newline="") as handle:
        for line in csv.DictReader(handle):
            key = (line["dataset"], line["setting"])
            if key not in _TABLE_OF:
                raise UserError(f"{path}: unknown dataset/setting {key}; known: {sorted(_TABLE_OF)}")
            rows.append(
                PaperRow(
                    table=_TABLE_OF[key],
                    task=line["task"],
                    dataset=line["dataset"],
                    student=line["student"],
                    student_model=line["student_model"],
                    teacher=line["teacher"],
                    teacher_model=line["teacher_model"],
                    metric=line["metric"],
                    config=line["config"],
                    baseline=_number(line["student_baseline"]),
                    teacher_acc=_number(line["teacher_acc"]),
                    kd=_number(line["kd_t4"]),
                    dist=_number(line["dist"]),
                    dist_std=_number(line["dist_std"]),
                    dist_mimic=_number(line["dist_mimic"]),
                )
            )
    return rows


def reference_rows(path: str | Path | None = None) -> list[PaperRow]:
    """The paper's rows plus the project's own ``digits`` row: everything a run can match."""
    return [*load_paper_rows(path), DIGITS_ROW]


def rows_of_table(table: str, path: str | Path | None = None) -> list[PaperRow]:
    if table not in TABLES:
        raise UserError(f"unknown table '{table}'; choose one of: {', '.join(TABLES)}")
    return [row for row in reference_rows(path) if row.table == table]


# --- paper logs --------------------------------------------------------------------------------

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


# --- recipes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """Configs and ``--kd`` names of one classification training recipe."""

    prefix: str  # experiment-name prefix
    baseline: str  # config of runs without KD (teachers and baseline students)
    kd: tuple[str, str, tuple[str, ...]]  # (config, --kd name, extra options) of the KD column
    dist: tuple[str, str, tuple[str, ...]]  # same for the DIST column
    train_teacher: bool  # True: train the teacher first; False: torchvision/timm weights
    gpus: int  # default number of GPUs (the paper's setup)
    notes: dict[str, str] = field(default_factory=dict)


_BASE, _DISTILL = "configs/strategies/baseline", "configs/strategies/distill"
RECIPES = {
    "cifar": Recipe(
        "cifar100", f"{_BASE}/cifar.yaml", (f"{_DISTILL}/kd_cifar.yaml", "kdt4", ()),
        (f"{_DISTILL}/dist_cifar.yaml", "dist_t4", ()), train_teacher=True, gpus=1,
    ),
    "plain": Recipe(
        "imagenet", f"{_BASE}/resnet.yaml", (f"{_DISTILL}/resnet_kdt4.yaml", "kdt4", ()),
        (f"{_DISTILL}/resnet_dist.yaml", "dist", ()), train_teacher=False, gpus=8,
    ),
    "strong": Recipe(
        "imagenet_strong", f"{_BASE}/b2.yaml",
        (f"{_DISTILL}/dist_b2.yaml", "kdt4", ("--ori-loss-weight", "0.9", "--kd-loss-weight", "1")),
        (f"{_DISTILL}/dist_b2.yaml", "dist", ()), train_teacher=False, gpus=8,
        notes={"kd": "no released strong-recipe KD config: dist_b2 with KD T=4 and resnet_kdt4's loss weights"},
    ),
    "digits": Recipe(  # loss weights as the CIFAR recipes (kd_cifar.yaml, dist_cifar.yaml); tools/demo.py too
        "digits", "configs/digits.yaml",
        ("configs/digits.yaml", "kdt4", ("--ori-loss-weight", "0.9", "--kd-loss-weight", "1")),
        ("configs/digits.yaml", "dist_t4", ("--ori-loss-weight", "1", "--kd-loss-weight", "2")),
        train_teacher=True, gpus=0,
    ),
}

DET_CONFIGS = {
    "faster_rcnn_r50_fpn": {
        "baseline": "configs/detection/faster-rcnn_r50_fpn_2x_coco.py",
        "dist": "configs/detection/faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py",
        "dist_mimic": "configs/detection/faster-rcnn_r50_dist-mimic_cascade-mask-rcnn_x101_2x_coco.py",
    },
    "retinanet_r50_fpn": {
        "baseline": "configs/detection/retinanet_r50_fpn_2x_coco.py",
        "dist": "configs/detection/retinanet_r50_dist_retinanet_x101_2x_coco.py",
        "dist_mimic": "configs/detection/retinanet_r50_dist-mimic_retinanet_x101_2x_coco.py",
    },
}
