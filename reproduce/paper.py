"""What the paper did: its result tables and its detection configs.

- Tables: typed rows read from the bundled ``paper_tables.csv``; each row is one student/teacher
  pair with the paper's baseline (student trained alone), teacher, KD (T=4), DIST and DIST+mimic
  results. The project adds one row of its own, the CPU-sized ``digits`` benchmark (no paper numbers).
- The classification recipes (configs and ``--kd`` names) are in :mod:`distkd_cli.recipes`, which the
  trainer reads too; the published ImageNet logs in :mod:`reproduce.paper_logs`.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
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


# --- detection configs ----------------------------------------------------------------------

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
