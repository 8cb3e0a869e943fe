"""The training commands of a table, as jobs: what each runs, where it writes, what it trains.

Experiment names identify table recipe, row, method and seed: ``cifar100-r8x4_r32x4-dist-s0``
(student ``r8x4`` distilled from ``r32x4`` with DIST, seed 0); ``cifar100-r8x4-baseline-s1``;
``cifar100-r32x4-teacher-s0``. Classification's commands are here (the paper's recipes of
:mod:`distkd_cli.recipes`, and the ``cifar100-methods`` table of :mod:`reproduce.methods`);
Cityscapes' and COCO's in :mod:`reproduce.dense_jobs`.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from distkd_cli.recipes import RECIPES, Recipe
from reproduce import methods
from reproduce.paper import PaperRow

ROOT = Path(__file__).resolve().parents[1]

_SHORT = {
    "cifar_mobile_half": "mbv2",
    "cifar_ShuffleV1": "shv1",
    "cifar_ShuffleV2": "shv2",
    "mobilenet_v1": "mbv1",
    "tv_mobilenet_v2": "mbv2",
    "timm_resnet50": "r50sb",
    "timm_tf_efficientnet_b0": "effb0",
    "timm_swin_large_patch4_window7_224": "swinl",
    "timm_swin_tiny_patch4_window7_224": "swint",
    "deeplabv3_resnet18": "dlv3r18",
    "deeplabv3_resnet101": "dlv3r101",
    "pspnet_resnet18": "pspr18",
    "faster_rcnn_r50_fpn": "frcnnr50",
    "cascade_mask_rcnn_x101_fpn": "cmrcnnx101",
    "retinanet_r50_fpn": "retinar50",
    "retinanet_x101_fpn": "retinax101",
}


def short_name(model: str) -> str:
    """``cifar_resnet8x4`` -> ``r8x4``, ``cifar_wrn_40_2`` -> ``wrn40-2``, ``tv_resnet18`` -> ``r18``."""
    if model in _SHORT:
        return _SHORT[model]
    name = re.sub(r"^(cifar_|tv_|timm_)", "", model)
    name = re.sub(r"^wrn_(\d+)_(\d+)$", r"wrn\1-\2", name)
    name = re.sub(r"(?i)^resnet", "r", name)
    return name.replace("_", "")


@dataclass(frozen=True)
class Job:
    """A command and what it trains: ``role`` is teacher, baseline, kd, dist or dist_mimic."""

    name: str
    role: str
    row: PaperRow
    seed: int
    argv: tuple[str, ...]
    config: str | None  # config file the command reads (checked to exist by the tests)
    models: tuple[str, ...]  # model names the command builds
    output_dir: str  # where the run writes args.yaml / metrics
    note: str = ""
    per_gpu: str = ""  # the images per GPU and how G GPUs make the paper's step (printed under the row)

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)

    def with_extra(self, extra: tuple[str, ...]) -> Job:
        return replace(self, argv=self.argv + extra) if extra else self


def emulate_option(gpus: int, paper_gpus: int) -> list[str]:
    """``--emulate-gpus`` for a run on fewer GPUs than the paper's (docs/reproduce.md)."""
    return ["--emulate-gpus", str(paper_gpus)] if paper_gpus > 1 and max(gpus, 1) < paper_gpus else []


def per_gpu_note(gpus: int, paper_gpus: int, batch: int | str, unit: str = "images") -> str:
    """What one GPU computes per step, and how ``gpus`` GPUs make the paper's step."""
    used = max(gpus, 1)
    if paper_gpus == 0 and gpus == 0:  # digits: the project's CPU benchmark
        return f"{batch} {unit} per step, one CPU process"
    if paper_gpus <= 1 or used >= paper_gpus:
        paper = " (the paper's)" if used == paper_gpus else f" (the paper: {max(paper_gpus, 1)} x {batch})"
        return f"per GPU {batch} {unit}: {used} GPU(s) x {batch} per step{paper}"
    k = paper_gpus // used
    return (f"per GPU {batch} {unit}: {used} GPU(s) x {k} emulated GPUs (--emulate-gpus {paper_gpus}) = the "
            f"paper's {paper_gpus} x {batch} per step")


def _config_batch(config: str) -> int | str:
    """``batch_size`` of a bundled YAML config ('?' where it cannot be read)."""
    import yaml

    try:
        return int(yaml.safe_load((ROOT / config).read_text())["batch_size"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return "?"


# --- classification ---------------------------------------------------------------------------

METHODS = ("teacher", "baseline", "kd", "dist")
ONLY_CHOICES = tuple(dict.fromkeys((*METHODS, "dist_mimic", *methods.COLUMNS)))


def _launch(gpus: int, config: str, model: str) -> list[str]:
    if gpus > 1:
        return ["sh", "tools/dist_train.sh", str(gpus), config, model]
    return ["python", "tools/train.py", "-c", config, "--model", model]


def _teacher_job(row: PaperRow, recipe: Recipe, gpus: int, output: str) -> Job:
    name = f"{recipe.prefix}-{short_name(row.teacher_model)}-teacher-s0"
    argv = _launch(gpus, recipe.baseline, row.teacher_model)
    argv += ["--dataset", row.dataset, "--experiment", name, "--output", output, "--seed", "0"]
    argv += emulate_option(gpus, recipe.gpus)
    return Job(name, "teacher", row, 0, tuple(argv), recipe.baseline, (row.teacher_model,), f"{output}/{name}",
               per_gpu=per_gpu_note(gpus, recipe.gpus, _config_batch(recipe.baseline)))


def _student_job(row: PaperRow, recipe: Recipe, method: str, seed: int, gpus: int, output: str) -> Job:
    student, teacher = short_name(row.student_model), short_name(row.teacher_model)
    if method == "baseline":
        name, config, kd_args, models = f"{recipe.prefix}-{student}-baseline-s{seed}", recipe.baseline, [], ()
    else:
        config, kd_name, kd_extra = recipe.kd if method == "kd" else recipe.dist
        name = f"{recipe.prefix}-{student}_{teacher}-{method}-s{seed}"
        kd_args = ["--kd", kd_name, "--teacher-model", row.teacher_model]
        if recipe.train_teacher:
            kd_args += ["--teacher-ckpt", f"{output}/{recipe.prefix}-{teacher}-teacher-s0/best.pth"]
        else:
            kd_args += ["--teacher-pretrained"]
        kd_args += list(kd_extra)
        models = (row.teacher_model,)
    argv = _launch(gpus, config, row.student_model)
    argv += ["--dataset", row.dataset, "--experiment", name, "--output", output, "--seed", str(seed)]
    argv += kd_args + list(row.overrides) + emulate_option(gpus, recipe.gpus)
    note = recipe.notes.get(method, "")
    if row.config_path is None:
        note = "; ".join(filter(None, [note, f"approximation: the paper used the {row.note}"]))
    return Job(name, method, row, seed, tuple(argv), config, (row.student_model, *models), f"{output}/{name}", note,
               per_gpu_note(gpus, recipe.gpus, _config_batch(config)))


def classification_jobs(rows: Sequence[PaperRow], seeds: int, gpus: int | None, output: str) -> list[Job]:
    """Teachers (trained ones only, once each) first, then seed by seed every row's students."""
    jobs: list[Job] = []
    for row in rows:
        recipe = RECIPES[row.recipe]
        if recipe.train_teacher:
            jobs.append(_teacher_job(row, recipe, recipe.gpus if gpus is None else gpus, output))
    for seed in range(seeds):
        for row in rows:
            recipe = RECIPES[row.recipe]
            for method in ("baseline", "kd", "dist"):
                jobs.append(_student_job(row, recipe, method, seed, recipe.gpus if gpus is None else gpus, output))
    return jobs


def _method_job(row: PaperRow, column: str, setting: methods.Setting, seed: int, gpus: int, output: str) -> Job:
    """A student of ``tools/reproduce.py cifar100-methods``: the CIFAR recipe with one method's loss."""
    recipe = RECIPES["cifar"]
    student, teacher = short_name(row.student_model), short_name(row.teacher_model)
    name = f"{recipe.prefix}-{student}_{teacher}-{column}-s{seed}"
    argv = _launch(gpus, setting.config, row.student_model)
    argv += ["--dataset", row.dataset, "--experiment", name, "--output", output, "--seed", str(seed)]
    argv += ["--kd", setting.kd, "--teacher-model", row.teacher_model,
             "--teacher-ckpt", f"{output}/{recipe.prefix}-{teacher}-teacher-s0/best.pth"]
    argv += list(setting.extra) + list(row.overrides)
    return Job(name, column, row, seed, tuple(argv), setting.config, (row.student_model, row.teacher_model),
               f"{output}/{name}", setting.note)


def method_jobs(rows: Sequence[PaperRow], seeds: int, gpus: int | None, output: str,
                recipe: str = "paper") -> list[Job]:
    """The CIFAR-100 teachers, then seed by seed every pair's KD, DKD and DIST runs with and without logit
    standardisation (:mod:`reproduce.methods`); ``recipe='published'`` adds the authors' own settings."""
    cifar = RECIPES["cifar"]
    gpus = cifar.gpus if gpus is None else gpus
    jobs = [_teacher_job(row, cifar, gpus, output) for row in rows]
    for seed in range(seeds):
        for row in rows:
            settings = methods.settings(row)
            jobs += [_method_job(row, column, settings[column], seed, gpus, output)
                     for column in methods.columns_of(recipe) if column in settings]
    return jobs
