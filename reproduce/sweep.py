"""A reproduction sweep: the exact training commands of a table, and running them in order.

:func:`plan` lists teachers first, then every row's baseline, KD and DIST students over N seeds
(classification, Cityscapes segmentation, COCO detection); :func:`run_jobs` launches them in
order, skipping finished experiments and stopping at the first failure.

Experiment names identify table recipe, row, method and seed: ``cifar100-r8x4_r32x4-dist-s0``
(student ``r8x4`` distilled from ``r32x4`` with DIST, seed 0); ``cifar100-r8x4-baseline-s1``;
``cifar100-r32x4-teacher-s0``.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from distkd.errors import UserError
from reproduce import methods
from reproduce.paper import DET_CONFIGS, RECIPES, PaperRow, Recipe, rows_of_table
from reproduce.runs import load_run

# --- job ---------------------------------------------------------------------------------------

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


# --- dense commands ----------------------------------------------------------------------------

SEG_SCRIPT = "tools/train_seg.py"
SEG_DATA = "data/cityscapes"
SEG_ARCH = {"deeplabv3": "deeplabv3", "pspnet": "psp"}  # paper name -> --student-model/--teacher-model
SEG_CKPTS = "ckpts"  # the paper's backbone files ckpts/resnet{18,101}-imagenet.pth (segmentation/README.md)
# The paper's settings, as the launch scripts in segmentation/train_scripts/ pass them: its input
# format, 16 images, 40k iterations, lr 0.02, float32; the two trainers' own weight decay, poly
# floor and validation interval.
SEG_OPTIONS = ("--input-format", "paper", "--crop-size", "512", "1024", "--batch-size", "16", "--max-iterations",
               "40000", "--lr", "0.02", "--momentum", "0.9", "--power", "0.9", "--aux-weight", "0.4", "--no-amp")
SEG_TRAINER_OPTIONS = {  # the paper's train_kd.py / train_baseline.py
    "dist": ("--weight-decay", "5e-4", "--min-lr", "1e-4", "--val-interval", "400"),
    "baseline": ("--weight-decay", "1e-4", "--min-lr", "0", "--val-interval", "800"),
}
DET_LAUNCHER = "tools/dist_train_mmdet.sh"
PAPER_DENSE_GPUS = 8  # Cityscapes: 8 GPUs x 2 crops; COCO: 8 GPUs x 2 images
ROOT = Path(__file__).resolve().parents[1]


def _emulate(gpus: int, paper_gpus: int) -> list[str]:
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
# Paper row (student model) -> config of each detection column. The teachers are mmdet's COCO
# weights, read by the distillation configs, so detection has no teacher job.


def _split(model: str) -> tuple[str, str]:
    """``pspnet_resnet18`` -> (``psp``, ``resnet18``): the trainer's model and the paper's backbone names."""
    arch, _, backbone = model.partition("_")
    return SEG_ARCH.get(arch, arch), backbone


def _seg_backbone(paper_backbone: str) -> str:
    """The paper's resnet18/resnet101 are the deep-stem ``*_v1s`` networks of this code."""
    return f"{paper_backbone}_v1s" if paper_backbone.startswith("resnet") else paper_backbone


def _seg_launch(gpus: int) -> list[str]:
    return ["sh", "tools/torchrun.sh", str(gpus), SEG_SCRIPT] if gpus > 1 else ["python", SEG_SCRIPT]


def _seg_job(row: PaperRow, role: str, seed: int, gpus: int, output: str) -> Job:
    model = row.teacher_model if role == "teacher" else row.student_model
    arch, backbone = _split(model)
    if role == "teacher":
        name = f"cityscapes-{short_name(model)}-teacher-s0"
    elif role == "baseline":
        name = f"cityscapes-{short_name(model)}-baseline-s{seed}"
    else:
        name = f"cityscapes-{short_name(model)}_{short_name(row.teacher_model)}-{role}-s{seed}"
    argv = _seg_launch(gpus) + ["--student-model", arch, "--student-backbone", _seg_backbone(backbone)]
    argv += ["--data-path", SEG_DATA, "--student-pretrained-base", f"{SEG_CKPTS}/{backbone}-imagenet.pth", *SEG_OPTIONS]
    argv += SEG_TRAINER_OPTIONS["dist" if role == "dist" else "baseline"]
    argv += ["--output", output, "--experiment", name, "--seed", str(seed), *_emulate(gpus, PAPER_DENSE_GPUS)]
    models = [model]
    if role == "dist":
        t_arch, t_backbone = _split(row.teacher_model)
        teacher_dir = f"{output}/cityscapes-{short_name(row.teacher_model)}-teacher-s0"
        argv += ["--teacher-model", t_arch, "--teacher-backbone", _seg_backbone(t_backbone)]
        argv += ["--teacher-ckpt", f"{teacher_dir}/best.pth", "--kd-loss-weight", "1.0", "--eval-teacher"]
        models.append(row.teacher_model)
    note = per_gpu_note(gpus, PAPER_DENSE_GPUS, 2, "crops")
    if max(gpus, 1) < PAPER_DENSE_GPUS:
        note += "; BatchNorm over all 16 crops (as SyncBatchNorm), DIST and cross-entropy per 2 crops"
    return Job(name, role, row, seed, tuple(argv), None, tuple(models), f"{output}/{name}", per_gpu=note)


def _det_job(row: PaperRow, role: str, seed: int, gpus: int, output: str) -> Job:
    config = DET_CONFIGS[row.student_model][role]
    student = short_name(row.student_model)
    if role == "baseline":
        name = f"coco-{student}-baseline-s{seed}"
    else:
        name = f"coco-{student}_{short_name(row.teacher_model)}-{role}-s{seed}"
    argv = ["sh", DET_LAUNCHER, config, str(max(gpus, 1)), f"{output}/{name}"]
    argv += ["--cfg-options", f"randomness.seed={seed}"]
    used = max(gpus, 1)
    note = f"per GPU 2 images: {used} GPU(s) x 2 per step" + (" (the paper's)" if used == PAPER_DENSE_GPUS else "")
    if used < PAPER_DENSE_GPUS:
        note = (f"per GPU 2 images: {used} GPU(s) x 2 x {PAPER_DENSE_GPUS // used} accumulated iterations "
                f"(accumulative_counts, set by {DET_LAUNCHER}) = the paper's 8 x 2 per step")
    return Job(name, role, row, seed, tuple(argv), config, (), f"{output}/{name}", per_gpu=note)


def dense_jobs(rows: Sequence[PaperRow], seeds: int, gpus: int | None, output: str) -> list[Job]:
    """Segmentation: teacher first, then baseline and DIST students; detection: baseline, DIST, +mimic."""
    gpus = 8 if gpus is None else gpus
    jobs: list[Job] = []
    if rows[0].task == "segmentation":
        jobs += [_seg_job(row, "teacher", 0, gpus, output) for row in rows]
        for seed in range(seeds):
            jobs += [_seg_job(row, role, seed, gpus, output) for row in rows for role in ("baseline", "dist")]
    else:
        for seed in range(seeds):
            for row in rows:
                jobs += [_det_job(row, role, seed, gpus, output) for role in ("baseline", "dist", "dist_mimic")]
    return jobs


# --- commands ----------------------------------------------------------------------------------

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
    argv += _emulate(gpus, recipe.gpus)
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
    argv += kd_args + list(row.overrides) + _emulate(gpus, recipe.gpus)
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
    recipe: str = "paper",
) -> list[Job]:
    """Every command of ``table`` in launch order; ``extra`` is appended to each command. ``recipe``:
    ``cifar100-methods`` only, ``published`` adds each method's own published setting."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    bad = sorted(set(only or ()) - set(ONLY_CHOICES))
    if bad:
        raise UserError(f"unknown --only value(s) {bad}; choose from {', '.join(ONLY_CHOICES)}")
    if recipe not in methods.RECIPES:
        raise UserError(f"unknown --recipe '{recipe}'; choose from {', '.join(methods.RECIPES)}")
    if recipe != "paper" and table != methods.TABLE:
        raise UserError(f"--recipe {recipe} applies to the {methods.TABLE} table only")
    output = output.rstrip("/") or "."
    rows = rows_of_table("cifar100" if table == methods.TABLE else table)
    check_gpus(rows[0], gpus)
    if table == methods.TABLE:
        jobs = method_jobs(rows, seeds, gpus, output, recipe)
    elif rows[0].task == "classification":
        jobs = classification_jobs(rows, seeds, gpus, output)
    else:
        jobs = dense_jobs(rows, seeds, gpus, output)
    jobs = _unique(jobs)
    if only:
        jobs = [job for job in jobs if job.role in only or (job.role == "dist_mimic" and "dist" in only)]
    tail = tuple(shlex.split(extra))
    return [job.with_extra(tail) for job in jobs]


def check_gpus(row: PaperRow, gpus: int | None) -> None:
    """``--gpus G``: a run on fewer GPUs than the paper's emulates them, so G must divide the paper's count."""
    if gpus is None:
        return
    if gpus < 0:
        raise UserError(f"--gpus must be >= 0, got {gpus}")
    paper = RECIPES[row.recipe].gpus if row.task == "classification" else PAPER_DENSE_GPUS
    if 1 < paper and max(gpus, 1) < paper and paper % max(gpus, 1):
        counts = ", ".join(str(g) for g in range(1, paper + 1) if paper % g == 0)
        raise UserError(f"--gpus {gpus} does not divide the paper's {paper} GPUs of {row.table}: "
                        f"use {counts} (each GPU then plays {paper} / G of the paper's)")


def format_plan(jobs: Sequence[Job]) -> str:
    """Shell-ready listing: one comment line per row change (with the images per GPU), one command per line."""
    lines, current = [], None
    for job in jobs:
        header = f"# {job.row.table}: {job.row.label}" if job.role != "teacher" else f"# teacher {job.row.teacher}"
        if header != current:
            lines.append(header)
            if job.per_gpu:
                lines.append(f"#   {job.per_gpu}")
            current = header
        if job.note:
            lines.append(f"#   note: {job.note}")
        lines.append(job.shell)
    return "\n".join(lines)


# --- sweep -------------------------------------------------------------------------------------

def is_finished(job: Job) -> bool:
    """True when the job's experiment folder holds a run that reached its last epoch."""
    path = Path(job.output_dir)
    if not (path / "args.yaml").is_file():
        return False
    try:
        return load_run(path).finished
    except ValueError:
        return False


def resume_args(job: Job) -> list[str]:
    """``--resume auto`` for an interrupted run that left a checkpoint (the trainers refuse to
    start over it otherwise); nothing for a fresh one."""
    path = Path(job.output_dir)
    interrupted = (path / "last.pth").is_file() or (path / "last_checkpoint").is_file()
    return ["--resume", "auto"] if interrupted else []


def missing_files(jobs: Sequence[Job], cwd: str | Path = ".") -> list[str]:
    """Configs and launch scripts the jobs need that are not there (checked before anything runs)."""
    needed = []
    for job in jobs:
        needed += [job.config] if job.config else []
        needed += [arg for arg in job.argv[:4] if arg.startswith("tools/")]
    return [path for path in dict.fromkeys(needed) if not (Path(cwd) / path).is_file()]


# Options that do not change what a run trains: where it writes, how often it logs or saves, how it
# is launched and resumed. A difference in any other option means another experiment.
SAME_EXPERIMENT = frozenset({
    "resume", "overwrite", "config", "output", "experiment", "save_dir", "log_interval", "save_interval",
    "stop_after_epochs", "workers", "log_wandb", "wandb_project", "offline", "download", "list_models",
    "local_rank", "dist_port", "slurm", "device", "data_path", "log_dir", "gpu_id", "no_progress", "eval_teacher",
})


OptionsOf = Callable[[Job, Path], "dict[str, Any] | None"]  # a job's parsed options (tools/reproduce.py's)


def changed_options(job: Job, cwd: str | Path = ".", options_of: OptionsOf | None = None) -> list[str]:
    """``['epochs 2 -> 3', ...]``: how the job's options (``options_of(job, cwd)``: the trainer's parse
    of its command; this package does not import the trainers) differ from those its experiment
    folder recorded (``args.yaml``) when it was started; empty for a folder without a run, or the same run."""
    if options_of is None or not (Path(cwd) / job.output_dir / "args.yaml").is_file():
        return []
    wanted = options_of(job, Path(cwd))
    return [] if wanted is None else recorded_differences(Path(cwd) / job.output_dir, wanted)


DERIVED = {"grad_accum_steps"}  # recorded as the trainer resolved it (from --emulate-gpus), unset on the command line


def recorded_differences(folder: str | Path, wanted: dict[str, Any]) -> list[str]:
    """``['epochs 2 -> 3', ...]``: the options of ``wanted`` (a trainer's parsed options) that differ
    from those the run in ``folder`` recorded (``args.yaml``), leaving out :data:`SAME_EXPERIMENT`."""
    recorded_file = Path(folder) / "args.yaml"
    if not recorded_file.is_file():
        return []
    recorded = yaml.safe_load(recorded_file.read_text()) or {}
    same = lambda value: yaml.safe_load(yaml.safe_dump(value))  # noqa: E731 - tuples/lists, ints/floats
    return [f"{key} {recorded[key]!r} -> {value!r}" for key, value in wanted.items()
            if key not in SAME_EXPERIMENT and key in recorded and same(recorded[key]) != same(value)
            and not (value is None and key in DERIVED)]


def run_jobs(jobs: Sequence[Job], cwd: str | Path = ".", rerun_changed: bool = False,
             options_of: OptionsOf | None = None) -> int:
    """Run each job from ``cwd`` (the repository root); return 0, or the first failure's exit code.

    Before anything runs, every job whose experiment folder holds a run started with other options
    (read with ``options_of``, see :func:`changed_options`) is listed: the sweep stops there (one
    line saying what to do) unless ``rerun_changed``, which starts those runs again from scratch
    (``--overwrite``)."""
    missing = missing_files(jobs, cwd)
    if missing:
        raise UserError(f"missing {', '.join(missing)} (relative to {Path(cwd).resolve()}); "
                        "run from the repository root")
    changed = {job.name: diff for job in jobs if (diff := changed_options(job, cwd, options_of))}
    if changed and not rerun_changed:
        listed = "; ".join(f"{name}: {', '.join(diff)}" for name, diff in list(changed.items())[:3])
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        raise UserError(f"{len(changed)} experiment(s) were started with other options than these commands give "
                        f"({listed}{more}); add --rerun-changed to train them again from scratch (their old "
                        "checkpoints and records are removed), or keep them and write the new runs elsewhere with "
                        "--output DIR")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(cwd).resolve()), env.get("PYTHONPATH")]))
    for index, job in enumerate(jobs, 1):
        prefix = f"[{index}/{len(jobs)}] {job.name}"
        if job.name in changed:
            print(f"{prefix}: options changed ({', '.join(changed[job.name])}): training it again from scratch",
                  flush=True)
            argv = list(job.argv) + ["--overwrite"]
        elif is_finished(job):
            print(f"{prefix}: finished earlier, skipped", flush=True)
            continue
        else:
            argv = list(job.argv) + resume_args(job)
        print(f"{prefix}: {shlex.join(argv)}", flush=True)
        code = subprocess.call(argv, cwd=cwd, env=env)
        if code != 0:
            print(f"{prefix} failed (exit {code}); fix it and run the same command again: "
                  "finished runs are skipped", file=sys.stderr, flush=True)
            return code
    return 0
