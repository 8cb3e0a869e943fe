"""A pause and a failure at a known step, for the tests of signals, kills and failed ranks (no timing guesses).

A test installs :class:`PauseAndFail` in a trainer's (or a teacher-store build's) process through the
loops' extension point (:mod:`distkd_cli.callbacks`): it adds :func:`hook_env` to the environment, with

- ``DISTKD_TEST_PAUSE_AT=EPOCH:ITERATION`` and ``DISTKD_TEST_PAUSE_FILE=PATH``: after ITERATION steps of
  EPOCH (epoch 0 for the iteration-based segmentation trainer; for a store build the chunk and its
  stored batches), rank 0 creates ``PATH.reached`` and waits while ``PATH`` exists (or until a
  pre-emption signal arrives). A test creates ``PATH``, waits for ``PATH.reached``, sends its signal,
  then removes ``PATH``. ``EPOCH:ITERATION:MICRO``: the same before micro-batch ``MICRO > 0`` of step
  ITERATION (gradient accumulation), between micro-batches;
- ``DISTKD_TEST_FAIL_AT=RANK:EPOCH:ITERATION``: that rank raises ``RuntimeError`` before that step.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from distkd_cli.callbacks import StepState, never

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "tests.hooks:PauseAndFail"


def hook_env() -> dict[str, str]:
    """The environment that installs :class:`PauseAndFail` (``tests`` importable in the child)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"DISTKD_CALLBACKS": CALLBACK, "PYTHONPATH": path}


def _at(variable: str) -> tuple[int, ...] | None:
    value = os.environ.get(variable)
    return tuple(int(v) for v in value.split(":")) if value else None


class PauseAndFail:
    def __init__(self) -> None:
        self.pause_at, self.fail_at = _at("DISTKD_TEST_PAUSE_AT"), _at("DISTKD_TEST_FAIL_AT")

    def on_step_start(self, state: StepState) -> None:
        if state.micro == 0 and self.fail_at == (state.rank, state.epoch, state.iteration):
            raise RuntimeError(f"test failure injected on rank {state.rank} at epoch {state.epoch} "
                               f"iteration {state.iteration}")
        if state.micro > 0:  # a kill between micro-batches
            self.pause((state.epoch, state.iteration, state.micro), state.rank)

    def on_step_end(self, state: StepState) -> None:
        self.pause((state.epoch, state.iteration), state.rank, state.stop_requested)

    def pause(self, where: tuple[int, ...], rank: int, stop_waiting=never) -> None:
        if rank != 0 or self.pause_at != where:
            return
        path = Path(os.environ["DISTKD_TEST_PAUSE_FILE"])
        Path(f"{path}.reached").write_text(":".join(map(str, where)) + "\n")
        while path.exists() and not stop_waiting():
            time.sleep(0.02)
