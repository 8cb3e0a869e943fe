"""The teacher side, one interface ``teacher.outputs(images, ctx)``: :class:`Teacher`, a frozen network
always in eval mode, run under ``no_grad`` on the student's batch, or :class:`StoredTeacher`, outputs
stored earlier that came with the batch (``ctx.teacher_outputs``).

The network runs in the caller's autocast and on the student's tensor (so in the student's memory format).
When its weights expect another input normalisation than the student's data (a timm model's
``pretrained_cfg``, a checkpoint's recorded format), :class:`Renormalize` converts the batch on
the device first, per channel::

    x_teacher = (x_student * std_s + mean_s - mean_t) / std_t
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from distkd.context import BatchContext


class Renormalize(nn.Module):
    """Re-expresses a batch normalised with ``(mean_s, std_s)`` in ``(mean_t, std_t)``; ``reverse_channels``
    also swaps RGB <-> BGR between the two (each mean/std in its own order)."""

    def __init__(self, source_mean: Sequence[float], source_std: Sequence[float], target_mean: Sequence[float],
                 target_std: Sequence[float], reverse_channels: bool = False) -> None:
        super().__init__()
        for name, values in (("source_mean", source_mean), ("source_std", source_std),
                             ("target_mean", target_mean), ("target_std", target_std)):
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.reverse_channels = reverse_channels

    def forward(self, x: Tensor) -> Tensor:
        raw = x * self.source_std + self.source_mean  # the pixel values before the student's normalisation
        if self.reverse_channels:
            raw = raw.flip(1)
        return (raw - self.target_mean) / self.target_std

    def extra_repr(self) -> str:
        mean_s, std_s, mean_t, std_t = ([round(v, 4) for v in b.flatten().tolist()] for b in self.buffers())
        return f"mean {mean_s} std {std_s} -> mean {mean_t} std {std_t}" + (", RGB<->BGR" * self.reverse_channels)


def renormalize_or_none(source: tuple[Sequence[float], Sequence[float]],
                        target: tuple[Sequence[float], Sequence[float]] | None) -> Renormalize | None:
    """A :class:`Renormalize` from ``source`` ``(mean, std)`` to ``target``; None when they agree (or no target)."""
    if target is None or all(abs(a - b) < 1e-6 for s, t in zip(source, target) for a, b in zip(s, t)):
        return None
    return Renormalize(*source, *target)


class Teacher(nn.Module):
    """A frozen ``model`` (no gradients, eval mode whatever ``train()`` is called with), fed through
    ``renormalize`` when given. Its output is computed under ``torch.no_grad()``."""

    def __init__(self, model: nn.Module, renormalize: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model.requires_grad_(False)
        self.renormalize = renormalize if renormalize is not None else nn.Identity()
        self.eval()

    def train(self, mode: bool = True) -> Teacher:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor):
        return self.model(self.renormalize(images))

    def outputs(self, images: Tensor, ctx: BatchContext | None = None):
        return self(images)


class StoredTeacher(nn.Module):
    """The teacher's outputs a teacher store's replay loader yields with each batch: no network."""

    def outputs(self, images: Tensor, ctx: BatchContext | None = None) -> Tensor:
        if ctx is None or ctx.teacher_outputs is None:
            raise ValueError("a StoredTeacher reads the teacher's outputs from the batch (ctx.teacher_outputs), "
                             "and this batch has none: use a teacher store's replay loader")
        return ctx.teacher_outputs.to(images.device, non_blocking=True)
