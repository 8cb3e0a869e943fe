"""Launch a sweep's commands in order: skip finished experiments, stop at the first failure."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from distkd.errors import UserError
from distkd.reproduce.job import Job
from distkd.reproduce.runs import load_run


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


def run_jobs(jobs: Sequence[Job], cwd: str | Path = ".") -> int:
    """Run each job from ``cwd`` (the repository root); return 0, or the first failure's exit code."""
    missing = missing_files(jobs, cwd)
    if missing:
        raise UserError(f"missing {', '.join(missing)} (relative to {Path(cwd).resolve()}); "
                        "run from the repository root")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(cwd).resolve()), env.get("PYTHONPATH")]))
    for index, job in enumerate(jobs, 1):
        prefix = f"[{index}/{len(jobs)}] {job.name}"
        if is_finished(job):
            print(f"{prefix}: finished earlier, skipped", flush=True)
            continue
        argv = list(job.argv) + resume_args(job)
        print(f"{prefix}: {shlex.join(argv)}", flush=True)
        code = subprocess.call(argv, cwd=cwd, env=env)
        if code != 0:
            print(f"{prefix} failed (exit {code}); fix it and run the same command again: "
                  "finished runs are skipped", file=sys.stderr, flush=True)
            return code
    return 0
