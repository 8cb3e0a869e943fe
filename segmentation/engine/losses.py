"""Segmentation losses on ``(main, aux)`` outputs, in the form :class:`distkd.distiller.Distiller` takes.

Task loss: ``CE(up(main), y) + aux_weight * CE(up(aux), y)``, logits bilinearly upsampled to the
label size, pixels labelled 255 ignored.

KD loss: ``DIST(main_s, main_t) + aux_weight * DIST(aux_s, aux_t)`` on the 1/8-resolution logits,
every pixel a sample (the core :func:`distkd.losses.dist_kd.dist_loss` on ``(N, 19, H, W)``). As
in the paper's code the aux logits are distilled too, and pixels labelled ignore are kept: DIST
matches the teacher's distribution, which exists on every pixel.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from distkd.losses.dist_kd import DISTLoss
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

    def forward(self, a, b) -> Tensor:
        return sum(self.loss(x, y) for x, y in zip(self._split(a), self._split(b), strict=True)) / self.gpus

    def extra_repr(self) -> str:
        return f"gpus={self.gpus}"


class SegDIST(nn.Module):
    """DIST between student and teacher ``(main, aux)`` logits (aux term only when both have one)."""

    inputs = "logits"

    def __init__(self, aux_weight: float = 0.4, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0) -> None:
        super().__init__()
        self.dist = DISTLoss(beta=beta, gamma=gamma, tau=tau)
        self.aux_weight = aux_weight

    def forward(self, outputs_s, outputs_t) -> Tensor:
        main_s, aux_s = split_outputs(outputs_s)
        main_t, aux_t = split_outputs(outputs_t)
        loss = self.dist(main_s, main_t)
        if aux_s is not None and aux_t is not None and self.aux_weight:
            loss = loss + self.aux_weight * self.dist(aux_s, aux_t)
        return loss
