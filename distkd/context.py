"""What a KD method and a teacher receive besides the outputs: the batch's context (and the batch).

A KD method is called ``method(student_outputs, teacher_outputs, ctx)``; DKD reads the targets and
the epoch from ``ctx``, as mdistiller's ``forward_train(image, target, epoch=...)`` gives them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor


@dataclass(frozen=True)
class BatchContext:
    """``targets``: the task's (class indices ``(N,)``; soft ``(N, C)`` under mixup; per-pixel labels);
    ``epoch`` counted from 0; ``progress``: fraction of training done; ``teacher_outputs``: the
    teacher's outputs when they came with the batch (a teacher store), else None."""

    targets: Tensor | None = None
    epoch: int = 0
    progress: float = 0.0
    teacher_outputs: Tensor | None = None


class Batch(NamedTuple):
    """A training loader's item, ``(images, targets)`` or, from a teacher store, ``(images, targets,
    teacher outputs)``: ``Batch(*item)`` names the parts of either."""

    images: Tensor
    targets: Tensor
    teacher_outputs: Tensor | None = None
