"""Confusion matrix, per-class IoU and mIoU.

Rows are ground truth, columns predictions; pixels labelled ``ignore_index`` are skipped.
``IoU_c = M[c, c] / (sum_j M[c, j] + sum_i M[i, c] - M[c, c])``; a class that is neither in the
ground truth nor predicted has no IoU (NaN) and is left out of the mean.
"""
from __future__ import annotations

import torch
from torch import Tensor

from distkd.utils.distributed import all_reduce_sum
from segmentation.datasets import CLASS_NAMES


class ConfusionMatrix:
    def __init__(self, num_classes: int, ignore_index: int = 255, device: torch.device | str = "cpu") -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add predictions and labels of any (matching) shape, as class ids."""
        keep = target != self.ignore_index
        index = target[keep].long() * self.num_classes + pred[keep].long().to(target.device)
        counts = torch.bincount(index, minlength=self.num_classes**2)
        self.matrix += counts.view(self.num_classes, self.num_classes).to(self.matrix.device)

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the matrix over all ranks (no-op when not distributed)."""
        all_reduce_sum(self.matrix)
        return self

    def iou(self) -> Tensor:
        matrix = self.matrix.double()
        inter = matrix.diag()
        union = matrix.sum(0) + matrix.sum(1) - inter
        return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))

    def miou(self) -> float:
        return float(self.iou().nanmean())

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(self.matrix.diag().sum().double() / total) if total > 0 else float("nan")


def format_iou(iou: Tensor) -> str:
    """Per-class IoU as ``name value`` lines (``-`` for classes with no IoU)."""
    return "\n".join(
        f"  {name:<14} {value:.4f}" if value == value else f"  {name:<14} -"
        for name, value in zip(CLASS_NAMES, iou.tolist())
    )
