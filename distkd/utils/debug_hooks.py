"""Test-only hooks that make the tests of signals and failures independent of timing.

Never needed in normal use; both are read from the environment when a trainer reaches an iteration:

- ``DISTKD_TEST_PAUSE_AT=EPOCH:ITERATION`` with ``DISTKD_TEST_PAUSE_FILE=PATH``: before that
  iteration (epoch 0 for the iteration-based segmentation trainer), rank 0 creates
  ``PATH.reached`` and waits while ``PATH`` exists (or until a pre-emption signal arrives). A test
  creates ``PATH``, waits for ``PATH.reached``, sends its signal, then removes ``PATH``.
  ``EPOCH:ITERATION:MICRO``: the same before micro-batch ``MICRO > 0`` of that iteration (gradient
  accumulation), between micro-batches.
- ``DISTKD_TEST_FAIL_AT=RANK:EPOCH:ITERATION``: that rank raises ``RuntimeError`` there.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def _at(variable: str) -> tuple[int, ...] | None:
    value = os.environ.get(variable)
    return tuple(int(v) for v in value.split(":")) if value else None


def pause_point(epoch: int, iteration: int, rank: int = 0, stop_waiting: Callable[[], bool] = lambda: False,
                micro: int | None = None) -> None:
    """Wait here while the test's pause file exists (see the module docstring)."""
    where = (epoch, iteration) if micro is None else (epoch, iteration, micro)
    if rank != 0 or _at("DISTKD_TEST_PAUSE_AT") != where:
        return
    path = Path(os.environ["DISTKD_TEST_PAUSE_FILE"])
    Path(f"{path}.reached").write_text(":".join(map(str, where)) + "\n")
    while path.exists() and not stop_waiting():
        time.sleep(0.02)


def fail_point(rank: int, epoch: int, iteration: int) -> None:
    if _at("DISTKD_TEST_FAIL_AT") == (rank, epoch, iteration):
        raise RuntimeError(f"test failure injected on rank {rank} at epoch {epoch} iteration {iteration}")
