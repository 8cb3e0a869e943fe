"""Pre-emption: SIGTERM / SIGUSR1 (what slurm sends before it stops a job) end a run cleanly.

The handler only records the signal. At the end of each iteration :meth:`PreemptionGuard.agreed`
combines the flag over the ranks (one small all-reduce), so every rank stops after the same
iteration; the trainer then writes ``last.pth`` on rank 0 and raises :class:`Preempted`, which the
command-line tools turn into exit code :data:`PREEMPTED_EXIT_CODE` (75, ``EX_TEMPFAIL``: run the
same command with ``--resume auto``; ``tools/slurm_train.sh`` requeues it).
"""
from __future__ import annotations

import signal
from types import FrameType

import torch
import torch.distributed as dist

PREEMPTED_EXIT_CODE = 75
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

    def agreed(self) -> bool:
        """Whether any rank received a signal; every rank must call this at the same iteration."""
        flag = torch.tensor([float(self.requested())], device=self.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else "a signal on another rank"
