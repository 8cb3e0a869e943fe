"""Segmentation losses on ``(main, aux)`` outputs, in the form :class:`distkd.distiller.Distiller` takes.

Task loss: ``CE(up(main), y) + aux_weight * CE(up(aux), y)``, logits bilinearly upsampled to the
label size, pixels labelled 255 ignored.

KD loss: ``method(main_s, main_t) + aux_weight * method(aux_s, aux_t)`` on the 1/8-resolution
logits, every pixel a sample, for any registered KD method that takes per-pixel logits ``(N, 19, H, W)``
(:class:`HeadsKD`; the paper's ``DIST(main) + 0.4 DIST(aux)`` with the core
:func:`distkd.losses.dist_kd.dist_loss`). As in the paper's code the aux logits are distilled too, and
pixels labelled ignore are kept: the teacher's distribution exists on every pixel.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from distkd.context import BatchContext
from distkd.losses.registry import apply_kd, takes_context
from segmentation.datasets.cityscapes import IGNORE_INDEX
from segmentation.models.heads import upsample


def split_outputs(outputs) -> tuple[Tensor, Tensor | None]:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs, None)


class SegCrossEntropy(nn.Module):
    def __init__(self, aux_weight: float = 0.4, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.aux_weight, self.ignore_index = aux_weight, ignore_index

    def _ce(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(upsample(logits, target.shape[-2:]), target, ignore_index=self.ignore_index)

    def forward(self, outputs, target: Tensor) -> Tensor:
        main, aux = split_outputs(outputs)
        loss = self._ce(main, target)
        if aux is not None and self.aux_weight:
            loss = loss + self.aux_weight * self._ce(aux, target)
        return loss


class PerGPU(nn.Module):
    """``loss`` on each of ``gpus`` equal parts of the batch, averaged: what ``gpus`` GPUs compute on
    their own crops and DDP averages (``--emulate-gpus``). ``(main, aux)`` outputs are split alike."""

    def __init__(self, loss: nn.Module, gpus: int) -> None:
        super().__init__()
        self.loss, self.gpus = loss, gpus
        self.inputs = getattr(loss, "inputs", "logits")

    def _split(self, value) -> list:
        if isinstance(value, (tuple, list)):
            return list(zip(*(self._split(v) for v in value)))
        if value is None:
            return [None] * self.gpus
        return list(value.split(value.shape[0] // self.gpus))

    def forward(self, a, b, ctx: BatchContext | None = None) -> Tensor | dict[str, Tensor]:
        parts = [apply_kd(self.loss, x, y, ctx) for x, y in zip(self._split(a), self._split(b), strict=True)]
        if isinstance(parts[0], dict):  # a method's named losses: each averaged over the GPUs
            return {name: sum(p[name] for p in parts) / self.gpus for name in parts[0]}
        return sum(parts) / self.gpus

    def extra_repr(self) -> str:
        return f"gpus={self.gpus}"


class HeadsKD(nn.Module):
    """A KD method on the student's and the teacher's ``(main, aux)`` logits: ``method(main_s, main_t) +
    aux_weight * method(aux_s, aux_t)`` (the aux term only when both have an aux head)."""

    inputs = "logits"

    def __init__(self, method: nn.Module, aux_weight: float = 0.4) -> None:
        super().__init__()
        self.method, self.aux_weight = method, aux_weight
        self._with_ctx = takes_context(method)

    def forward(self, outputs_s, outputs_t, ctx: BatchContext | None = None) -> Tensor | dict[str, Tensor]:
        main_s, aux_s = split_outputs(outputs_s)
        main_t, aux_t = split_outputs(outputs_t)
        loss = apply_kd(self.method, main_s, main_t, ctx, self._with_ctx)
        if aux_s is None or aux_t is None or not self.aux_weight:
            return loss
        aux = apply_kd(self.method, aux_s, aux_t, ctx, self._with_ctx)
        if isinstance(loss, dict):  # a method that returns named losses: each one over both heads
            return {name: value + self.aux_weight * aux[name] for name, value in loss.items()}
        return loss + self.aux_weight * aux
