"""Read finished, unfinished and crashed experiments from an experiments folder.

Classification and segmentation runs are folders with ``args.yaml`` and ``metrics.csv`` (one row
per finished epoch / evaluation); detection runs are mmengine work dirs (``<work_dir>/<config>.py``
and ``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON record per logged step; the
evaluation records hold ``coco/bbox_mAP`` as a fraction).
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distkd_cli.recipes import RECIPES
from reproduce.paper import DET_CONFIGS, rows_of_table

# --- runs --------------------------------------------------------------------------------------

def _recipe_of_config() -> dict[str, str]:
    """Config file stem -> recipe, from the sweep's recipes (``dist_b2`` -> ``strong``)."""
    return {Path(config).stem: name for name, recipe in RECIPES.items()
            for config in (recipe.baseline, recipe.kd[0], recipe.dist[0])}


@dataclass(frozen=True)
class Run:
    """One experiment: what it trained and how far it got (scores in percent)."""

    path: Path
    name: str
    task: str  # classification | segmentation | detection
    dataset: str
    student: str
    teacher: str | None  # None: trained without KD
    kd: str | None  # the --kd name ("dist_t4", ...); for dense tasks the column ("dist", "dist_mimic")
    recipe: str
    seed: int | None
    total: int | None  # epochs (iterations for segmentation) the run was asked for
    done: int | None  # epochs finished (last evaluated iteration); None: none yet
    best: float | None
    last: float | None
    teacher_score: float | None = None  # the teacher evaluated before KD (teacher.yaml)
    unit: str = "epoch"
    kd_options: dict[str, Any] = field(default_factory=dict, compare=False)  # --kd-loss-kwargs
    loss_weights: tuple[float | None, float | None] = (None, None)  # --ori-loss-weight, --kd-loss-weight

    @property
    def finished(self) -> bool:
        return self.done is not None and self.total is not None and self.done >= self.total

    @property
    def status(self) -> str:
        if self.finished:
            return "finished"
        if self.done is None:
            return f"unfinished (no {self.unit} done)"
        return f"unfinished ({self.done} of {self.total} {self.unit}s done)"


def _read_yaml(path: Path) -> dict[str, Any]:
    with open(path) as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a mapping")
    return data


def _float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _read_metrics(path: Path, step_key: str, score_key: str) -> list[tuple[int, float]]:
    """``(step, score)`` of every complete row; a torn last line of a crashed run is skipped."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as handle:
        for line in csv.DictReader(handle):
            step, score = _float(line.get(step_key)), _float(line.get(score_key))
            if step is not None and score is not None:
                rows.append((int(step), score))
    return rows


def recipe_of(args: dict[str, Any]) -> str:
    """The training recipe of a classification run, from its config file name, else its options."""
    config = Path(str(args.get("config") or "")).stem
    recipes = _recipe_of_config()
    if config in recipes:
        return recipes[config]
    dataset = args.get("dataset")
    if dataset in ("cifar100", "cifar10"):
        return "cifar"
    if dataset == "imagenet":
        strong = str(args.get("opt", "")).startswith("rmsprop") or bool(args.get("model_ema"))
        return "strong" if strong else "plain"
    return str(dataset)


def _classification_run(path: Path, args: dict[str, Any]) -> Run:
    # With model EMA the paper's code validates, ranks and reports the EMA weights.
    rows = _read_metrics(path / "metrics.csv", "epoch", "val_top1_ema") if args.get("model_ema") else []
    rows = rows or _read_metrics(path / "metrics.csv", "epoch", "val_top1")
    teacher_yaml = path / "teacher.yaml"
    teacher_score = _float(_read_yaml(teacher_yaml).get("top1")) if teacher_yaml.is_file() else None
    kd = args.get("kd") or None
    return Run(
        path=path,
        name=str(args.get("experiment") or path.name),
        task="classification",
        dataset=str(args.get("dataset")),
        student=str(args.get("model")),
        teacher=str(args["teacher_model"]) if kd and args.get("teacher_model") else None,
        kd=kd,
        recipe=recipe_of(args),
        seed=args.get("seed"),
        total=args.get("epochs"),
        done=rows[-1][0] + 1 if rows else None,  # epochs count from 0
        best=max(score for _, score in rows) if rows else None,
        last=rows[-1][1] if rows else None,
        teacher_score=teacher_score,
        kd_options=dict(args.get("kd_loss_kwargs") or {}),
        loss_weights=(_float(args.get("ori_loss_weight")), _float(args.get("kd_loss_weight"))),
    )


_SEG_PAPER_ARCH = {"psp": "pspnet"}  # the trainer's --student-model -> the paper table's name


def _seg_model(args: dict[str, Any], role: str) -> str:
    """The paper table's name: ``psp`` + ``resnet18_v1s`` (the paper's resnet18) -> ``pspnet_resnet18``."""
    arch, backbone = str(args.get(f"{role}_model")), str(args.get(f"{role}_backbone"))
    return f"{_SEG_PAPER_ARCH.get(arch, arch)}_{backbone.removesuffix('_v1s')}"


def _segmentation_run(path: Path, args: dict[str, Any]) -> Run:
    # val_miou is a fraction; iterations count from 1 and the last one is always evaluated
    rows = [(step, 100.0 * score) for step, score in _read_metrics(path / "metrics.csv", "iteration", "val_miou")]
    weight = args.get("kd_loss_weight", args.get("lambda_kd"))  # lambda_kd: args.yaml of older runs
    distilled = bool(args.get("teacher_model")) and (_float(weight) or 0.0) > 0
    return Run(
        path=path,
        name=path.name,
        task="segmentation",
        dataset="cityscapes",
        student=_seg_model(args, "student"),
        teacher=_seg_model(args, "teacher") if distilled else None,
        kd=(args.get("kd") or "dist") if distilled else None,  # no 'kd' key: runs before --kd existed (DIST)
        recipe="seg",
        seed=args.get("seed"),
        total=args.get("max_iterations"),
        done=rows[-1][0] if rows else None,
        best=max(score for _, score in rows) if rows else None,
        last=rows[-1][1] if rows else None,
        unit="iteration",
    )


def load_run(path: str | Path) -> Run:
    """The run in ``path`` (a folder holding ``args.yaml``); raises ``ValueError`` if unreadable."""
    path = Path(path)
    try:
        args = _read_yaml(path / "args.yaml")
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read {path / 'args.yaml'}: {err}") from None
    if "student_model" in args:
        return _segmentation_run(path, args)
    if "model" not in args:
        raise ValueError(f"{path / 'args.yaml'} names no model")
    return _classification_run(path, args)


def find_runs(root: str | Path) -> tuple[list[Run], list[str]]:
    """Every run under ``root`` and a message for each folder that could not be read."""
    root = Path(root)
    runs, problems = [], []
    for args_file in sorted(root.rglob("args.yaml")):
        try:
            runs.append(load_run(args_file.parent))
        except ValueError as err:
            problems.append(" ".join(str(err).split()))
    mmdet_runs, mmdet_problems = find_mmdet_runs(root)
    return runs + mmdet_runs, problems + mmdet_problems


# --- mmdet runs --------------------------------------------------------------------------------

_ROLE_OF_CONFIG = {
    Path(config).stem: (student, role) for student, configs in DET_CONFIGS.items() for role, config in configs.items()
}


def _int_setting(text: str, key: str) -> int | None:
    match = re.search(rf"\b{key}\s*=\s*(\d+)", text)
    return int(match.group(1)) if match else None


def _seed(config_text: str) -> int | None:
    match = re.search(r"randomness\s*=\s*dict\([^)]*\bseed\s*=\s*(\d+)", config_text)
    return int(match.group(1)) if match else None


def _evaluations(work_dir: Path) -> list[tuple[int, float]]:
    """``(epoch, box AP in percent)`` of every evaluation, over all (resumed) sessions."""
    points = {}
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn last line of a crashed run
            if "coco/bbox_mAP" in record:
                step = record.get("epoch", record.get("step"))
                points[int(step)] = 100.0 * float(record["coco/bbox_mAP"])
    return sorted(points.items())


def load_mmdet_run(work_dir: Path) -> Run:
    configs = sorted(work_dir.glob("*.py"))
    config_text = configs[0].read_text() if configs else ""
    stem = configs[0].stem if configs else work_dir.name
    student, role = _ROLE_OF_CONFIG.get(stem, (stem, "baseline"))
    teacher_of = {row.student_model: row.teacher_model for row in rows_of_table("coco")}
    points = _evaluations(work_dir)
    total = _int_setting(config_text, "max_epochs")
    return Run(
        path=work_dir,
        name=work_dir.name,
        task="detection",
        dataset="coco",
        student=student,
        teacher=teacher_of.get(student) if role != "baseline" else None,
        kd=None if role == "baseline" else role,
        recipe="det",
        seed=_seed(config_text),
        total=total,
        done=points[-1][0] if points else None,  # mmengine counts epochs from 1
        best=max(ap for _, ap in points) if points else None,
        last=points[-1][1] if points else None,
    )


def find_mmdet_runs(root: Path) -> tuple[list[Run], list[str]]:
    work_dirs = sorted({scalars.parents[2] for scalars in root.rglob("vis_data/scalars.json")})
    runs, problems = [], []
    for work_dir in work_dirs:
        if (work_dir / "args.yaml").exists():
            continue
        try:
            runs.append(load_mmdet_run(work_dir))
        except (OSError, ValueError) as err:
            problems.append(f"cannot read detection run {work_dir}: {err}")
    return runs, problems
