"""Pre-emption: SIGTERM / SIGUSR1 (what slurm sends before it stops a job) end a run cleanly.

The handler only records the signal. At the end of each iteration :meth:`PreemptionGuard.agreed`
reads it: alone, from the flag (no device work); with several ranks, every
:data:`AGREE_EVERY` iterations one small all-reduce combines the flags (a host sync), so every rank
stops after the same iteration; the trainer then writes ``last.pth`` on rank 0 and raises :class:`Preempted`, which the
command-line tools turn into exit code :data:`PREEMPTED_EXIT_CODE` (75, ``EX_TEMPFAIL``: run the
same command with ``--resume auto``; ``tools/slurm_train.sh`` requeues it).
"""
from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import NoReturn, TypeVar

import torch
import torch.distributed as dist

from distkd.utils.distributed import DistInfo, barrier, cleanup_distributed, raise_if_peer_failed

PREEMPTED_EXIT_CODE = 75
AGREE_EVERY = 20  # iterations between the ranks' agreements: seconds, well inside slurm's warning time
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """The run stopped on a pre-emption signal after saving its state; continue with --resume auto."""


class PreemptionGuard:
    """Context manager that records SIGTERM / SIGUSR1 instead of dying (restores the old handlers)."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum

    def __enter__(self) -> PreemptionGuard:
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def requested(self) -> bool:
        """This process received a signal (no communication)."""
        return self.received is not None

    def agreed(self, iteration: int, epoch_end: bool = False) -> bool:
        """Whether to stop after ``iteration``; every rank calls this after the same iterations (and
        agrees at each epoch's end too: an epoch shorter than AGREE_EVERY iterations would never stop)."""
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return self.requested()
        if iteration % AGREE_EVERY and not epoch_end:
            return False
        flag = torch.tensor([float(self.requested())], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else "a signal on another rank"

    def stop(self, where: str, saved: object) -> NoReturn:
        """After :meth:`agreed` said stop and rank 0 saved ``saved``: every rank raises :class:`Preempted`."""
        barrier()
        raise Preempted(f"{self.name()} received: stopped after {where}, {saved} saved; continue with --resume auto")


T = TypeVar("T")


def run_guarded(info: DistInfo, train: Callable[[PreemptionGuard], T]) -> T:
    """A trainer's body: ``train(guard)`` under a :class:`PreemptionGuard`; an error caused by a
    failed peer rank becomes one line naming it; the process group is torn down at the end."""
    try:
        with PreemptionGuard(info.device) as guard:
            try:
                return train(guard)
            except BaseException as err:  # inside the guard: torchrun's SIGTERM to the survivors waits
                raise_if_peer_failed(err, info.rank)
                raise
    finally:
        cleanup_distributed()
