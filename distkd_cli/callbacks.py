"""Callbacks: the extension point of the training loops (custom logging, monitoring, a test's pause).

A loop calls its :class:`Callbacks` with a :class:`StepState`:

- ``on_step_start(state)``: before each step; with gradient accumulation before each micro-batch
  (``state.micro``) too (the classification trainer);
- ``on_step_end(state)``: after each step (``state.iteration``: the steps done), before the
  pre-emption check and the step's checkpoint (both trainers; the teacher-store build after each
  stored batch of a chunk, ``state.epoch`` the chunk).

A callback is any object with some of these methods. The trainers run under torchrun and slurm, so
callbacks are installed from the environment of each process: ``DISTKD_CALLBACKS=module:factory``
(several: comma-separated) imports ``factory`` from ``module`` and calls it once, without arguments,
for the callback. E.g. a file ``my_log.py`` on ``PYTHONPATH``::

    class PrintLoss:
        def on_step_end(self, state):
            if state.rank == 0 and state.iteration % 100 == 0:
                print(state.epoch, state.iteration, {k: float(v) for k, v in state.losses.items()})

    DISTKD_CALLBACKS=my_log:PrintLoss python tools/train.py ...
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from torch import Tensor

from distkd.errors import UserError

VARIABLE = "DISTKD_CALLBACKS"


def never() -> bool:
    return False


@dataclass(frozen=True)
class StepState:
    """Where a loop stands. ``epoch``: 0 in the iteration-based segmentation trainer;
    ``losses``: the step's (device tensors: reading one waits for the device); ``stop_requested()``:
    a pre-emption signal arrived (a callback that waits can stop waiting)."""

    epoch: int
    iteration: int
    rank: int = 0
    micro: int = 0
    losses: Mapping[str, Tensor] = field(default_factory=dict)
    stop_requested: Callable[[], bool] = never


def load(name: str) -> Callable[[], object]:
    module, _, attr = name.strip().partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise UserError(f"{VARIABLE}: cannot load '{name}' ({err}); give module:factory of a module on "
                        "PYTHONPATH") from None


class Callbacks:
    """The installed callbacks; :meth:`from_env` those of ``DISTKD_CALLBACKS``."""

    def __init__(self, callbacks: Iterable[object] = ()) -> None:
        self.callbacks = list(callbacks)

    @classmethod
    def from_env(cls) -> Callbacks:
        return cls(load(name)() for name in os.environ.get(VARIABLE, "").split(",") if name.strip())

    def on_step_start(self, state: StepState) -> None:
        self._call("on_step_start", state)

    def on_step_end(self, state: StepState) -> None:
        self._call("on_step_end", state)

    def _call(self, event: str, state: StepState) -> None:
        for callback in self.callbacks:
            if (method := getattr(callback, event, None)) is not None:
                method(state)
