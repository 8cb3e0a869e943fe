"""The exact training commands that reproduce a table: teachers first, then every row's
baseline, KD and DIST students over N seeds.

Experiment names identify table recipe, row, method and seed: ``cifar100-r8x4_r32x4-dist-s0``
(student ``r8x4`` distilled from ``r32x4`` with DIST, seed 0); ``cifar100-r8x4-baseline-s1``;
``cifar100-r32x4-teacher-s0``.
"""
from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from distkd.errors import UserError
from distkd.reproduce.dense_commands import dense_jobs
from distkd.reproduce.job import Job, short_name
from distkd.reproduce.paper import PaperRow, rows_of_table

METHODS = ("teacher", "baseline", "kd", "dist")


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


def _launch(gpus: int, config: str, model: str) -> list[str]:
    if gpus > 1:
        return ["sh", "tools/dist_train.sh", str(gpus), config, model]
    return ["python", "tools/train.py", "-c", config, "--model", model]


def _teacher_job(row: PaperRow, recipe: Recipe, gpus: int, output: str) -> Job:
    name = f"{recipe.prefix}-{short_name(row.teacher_model)}-teacher-s0"
    argv = _launch(gpus, recipe.baseline, row.teacher_model)
    argv += ["--dataset", row.dataset, "--experiment", name, "--output", output, "--seed", "0"]
    return Job(name, "teacher", row, 0, tuple(argv), recipe.baseline, (row.teacher_model,), f"{output}/{name}")


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
    argv += kd_args + list(row.overrides)
    note = recipe.notes.get(method, "")
    if row.config_path is None:
        note = "; ".join(filter(None, [note, f"approximation: the paper used the {row.note}"]))
    return Job(name, method, row, seed, tuple(argv), config, (row.student_model, *models), f"{output}/{name}", note)


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


def _unique(jobs: Iterable[Job]) -> list[Job]:
    """Drop repeated experiments (a shared teacher or baseline student), keeping the first."""
    seen: dict[str, Job] = {}
    for job in jobs:
        if job.name in seen and seen[job.name].argv != job.argv:
            raise AssertionError(f"two different commands share the experiment name '{job.name}'")
        seen.setdefault(job.name, job)
    return list(seen.values())


def plan(
    table: str,
    seeds: int = 3,
    gpus: int | None = None,
    output: str = "experiments",
    extra: str = "",
    only: Sequence[str] | None = None,
) -> list[Job]:
    """Every command of ``table`` in launch order; ``extra`` is appended to each command."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    bad = sorted(set(only or ()) - set(METHODS) - {"dist_mimic"})
    if bad:
        raise UserError(f"unknown --only value(s) {bad}; choose from {', '.join(METHODS)}")
    rows = rows_of_table(table)
    output = output.rstrip("/") or "."
    if rows[0].task == "classification":
        jobs = classification_jobs(rows, seeds, gpus, output)
    else:
        jobs = dense_jobs(rows, seeds, gpus, output)
    jobs = _unique(jobs)
    if only:
        jobs = [job for job in jobs if job.role in only or (job.role == "dist_mimic" and "dist" in only)]
    tail = tuple(shlex.split(extra))
    return [job.with_extra(tail) for job in jobs]


def format_plan(jobs: Sequence[Job]) -> str:
    """Shell-ready listing: one comment line per row change, one command per line."""
    lines, current = [], None
    for job in jobs:
        header = f"# {job.row.table}: {job.row.label}" if job.role != "teacher" else f"# teacher {job.row.teacher}"
        if header != current:
            lines.append(header)
            current = header
        if job.note:
            lines.append(f"#   note: {job.note}")
        lines.append(job.shell)
    return "\n".join(lines)
