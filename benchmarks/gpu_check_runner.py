"""How the GPU check (``benchmarks/gpu_check.py``) runs its steps: the sizes of the GPU run and of the
CPU dry run, each command a subprocess from the repository root with its own time limit under one
deadline, its output to the log, a failed step reported while the others still run."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.gpu_check_fork import run_forked
from benchmarks.gpu_check_report import md

ROOT = Path(__file__).resolve().parents[1]
PAIRS = "tv_resnet18:tv_resnet34,mobilenet_v1:tv_resnet50"


@dataclass
class Sizes:
    """What each step runs with: the GPU run, or the CPU dry run (tiny)."""

    device: str
    batch: int
    image: int
    repeats: int
    seg_size: tuple[int, int]
    jpegs: int
    jpeg_size: str
    val_images: int
    classes: int
    e2e_iters: int
    store_iters: int
    workers: tuple[int, ...]
    e2e_workers: int
    data_batches: int
    compile_backend: str
    pairs: str = PAIRS
    budget_s: float = 470.0
    limits: dict[str, float] = field(default_factory=dict)


GPU = Sizes(device="cuda", batch=256, image=224, repeats=10, seg_size=(512, 1024), jpegs=1024, jpeg_size="500x375",
            val_images=64, classes=1000, e2e_iters=200, store_iters=60, workers=(8, 16), e2e_workers=16,
            data_batches=12, compile_backend="inductor",
            limits={"env": 60, "tests": 200, "step": 150, "seg": 120, "e2e": 150, "data": 150, "store": 200,
                    "compile": 300})
DRY = Sizes(device="cpu", batch=4, image=32, repeats=1, seg_size=(64, 64), jpegs=24, jpeg_size="80x60",
            val_images=4, classes=4, e2e_iters=3, store_iters=2, workers=(0, 1), e2e_workers=1,
            data_batches=2, compile_backend="eager", pairs="tv_resnet18:tv_resnet18,mobilenet_v1:tv_resnet18",
            budget_s=900.0,
            limits={"env": 120, "tests": 300, "step": 300, "seg": 300, "e2e": 300, "data": 300, "store": 300,
                    "compile": 300})


class Runner:
    """Runs commands and steps under the deadline ``sizes.budget_s``; keeps the log (``gpu_check.log``)
    and each step's status; a step that fails adds its error to ``self.sections``."""

    def __init__(self, out: Path, work: Path, sizes: Sizes, dry_run: bool, fork: bool = False) -> None:
        self.out, self.work, self.s, self.dry_run = out, work, sizes, dry_run
        self.fork = fork  # Python commands in a fork of this process (the dry run: benchmarks/gpu_check_fork.py)
        self.start = time.monotonic()
        self.log = open(out / "gpu_check.log", "w")
        self.sections: list[str] = []
        self.status: list[tuple[str, str, float, str]] = []  # (step, ok / FAILED / skipped, seconds, note)
        self.metrics: dict[str, float] = {}
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.setdefault("KINETO_LOG_LEVEL", "5")

    def remaining(self) -> float:
        return self.s.budget_s - (time.monotonic() - self.start)

    def run(self, name: str, argv: list[str], limit: float, fresh: bool = False) -> str:
        """Runs ``argv`` from the repository root; returns its stdout; raises on failure or timeout.
        With ``self.fork``, a Python command runs in a fork of this process unless ``fresh``."""
        limit = min(limit, self.remaining())
        if limit < 5:
            raise TimeoutError(f"no time left for: {shlex.join(argv)}")
        forked = self.fork and not fresh and argv[0] == sys.executable
        self.log.write(f"\n===== [{name}] $ {shlex.join(argv)}   (limit {limit:.0f}s{', forked' if forked else ''})\n")
        self.log.flush()
        began = time.monotonic()
        try:
            if forked:
                returncode, stdout, stderr = run_forked(argv[1:], str(ROOT), self.env, limit)
            else:
                result = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=limit)
                returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired as err:
            self.log.write(text(err.stdout) + text(err.stderr) + f"\n----- timed out after {limit:.0f}s\n")
            raise TimeoutError(f"timed out after {limit:.0f}s: {shlex.join(argv[:4])} ...") from None
        self.log.write(stdout + stderr)
        self.log.write(f"\n----- exit {returncode} after {time.monotonic() - began:.1f}s\n")
        self.log.flush()
        if returncode != 0:
            tail = (stderr or stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"exit {returncode}: " + " / ".join(tail))
        return stdout

    def step(self, name: str, fn: Callable[[], str | None]) -> None:
        """Runs one step; records ok / FAILED / skipped (no time) with its note; rewrites the report."""
        began = time.monotonic()
        print(f"[gpu_check] {name} ... ({self.remaining():.0f}s left)", flush=True)
        try:
            note = fn() or ""
            state = "ok"
        except Exception as err:  # a failed step is reported; the others still run
            state, note = ("skipped (no time)" if isinstance(err, TimeoutError) and "no time" in str(err)
                           else "FAILED"), f"{type(err).__name__}: {err}"
            self.sections.append(f"## {name}\n\n**{state}**: {md(note)}\n")
        seconds = time.monotonic() - began
        self.status.append((name, state, seconds, note))
        print(f"[gpu_check] {name}: {state} in {seconds:.0f}s {note[:200]}", flush=True)
        self.write_report()

    def python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def amp(self) -> list[str]:
        """``--amp`` for the trainer on the GPU (bf16); not in the dry run (CPU bf16 is slow, not its path)."""
        return [] if self.dry_run else ["--amp"]


def text(value: str | bytes | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
