"""Detect a non-finite loss without a host synchronisation in every training step."""
from __future__ import annotations

import torch
from torch import Tensor


class NonFiniteWatch:
    """Keeps, on the device, the first step whose losses are not all finite and their values.
    :meth:`update` runs every step (device ops only); :meth:`first` reads the flag back (one host
    sync): call it where the trainer logs or saves anyway."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._step: Tensor | None = None  # -1 while every step was finite
        self._values: Tensor | None = None

    def update(self, step: int, losses: dict[str, Tensor]) -> None:
        values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        if self._step is None:
            self.names = list(losses)
            self._step, self._values = torch.full((), -1, device=values.device), values
        new = (self._step < 0) & ~torch.isfinite(values).all()
        self._step = torch.where(new, step, self._step)
        self._values = torch.where(new, values, self._values)

    def first(self) -> tuple[int, dict[str, float]] | None:
        """``(step, {name: value})`` of the first non-finite step so far, or None."""
        if self._step is None or (step := int(self._step.item())) < 0:
            return None
        return step, dict(zip(self.names, self._values.tolist()))
