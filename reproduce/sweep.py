"""A reproduction sweep: the exact training commands of a table, and running them in order.

:func:`plan` lists teachers first, then every row's baseline, KD and DIST students over N seeds
(classification, Cityscapes segmentation, COCO detection; the commands are built in
:mod:`reproduce.jobs` and :mod:`reproduce.dense_jobs`); :func:`run_jobs` launches them in order,
skipping finished experiments and stopping at the first failure.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from distkd.errors import UserError
from distkd_cli.recipes import RECIPES
from reproduce import methods
from reproduce.dense_jobs import PAPER_DENSE_GPUS, dense_jobs
from reproduce.jobs import ONLY_CHOICES, Job, classification_jobs, method_jobs
from reproduce.paper import PaperRow, rows_of_table
from reproduce.runs import load_run

# --- plan --------------------------------------------------------------------------------------

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
