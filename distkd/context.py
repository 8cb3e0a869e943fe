"""What a KD method and a teacher receive besides the outputs: the batch's context, and the batch itself.

A KD method is called ``method(student_outputs, teacher_outputs, ctx)`` and returns a loss or a dict
of named losses; ``ctx`` is a :class:`BatchContext` (its ``targets``, ``epoch``, ``progress``). DKD
reads the class targets and the epoch (its warm-up), as mdistiller's ``forward_train(image, target,
epoch=...)`` gives them; the other methods ignore it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor


@dataclass(frozen=True)
class BatchContext:
    """The batch's context.

    ``targets``: the task's targets of the batch (class indices ``(N,)`` in classification; soft
    ``(N, C)`` under mixup / cutmix; per-pixel labels in segmentation). ``epoch``: the epoch the step
    belongs to, counted from 0. ``progress``: the fraction of training done, in [0, 1].
    ``teacher_outputs``: the teacher's outputs when they came with the batch (a teacher store), else
    ``None`` (the teacher network computes them).
    """

    targets: Tensor | None = None
    epoch: int = 0
    progress: float = 0.0
    teacher_outputs: Tensor | None = None


class Batch(NamedTuple):
    """One item of a training loader: ``(images, targets)``, or ``(images, targets, teacher outputs)``
    from a teacher store's replay loader. ``Batch(*item)`` names the parts of either."""

    images: Tensor
    targets: Tensor
    teacher_outputs: Tensor | None = None
