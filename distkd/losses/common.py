"""Small helpers the logit losses share."""
from __future__ import annotations

import torch
from torch import Tensor


def upcast(z: Tensor) -> Tensor:
    """The losses compute in float32 whatever the input dtype (half, bfloat16); float64 stays float64."""
    return z if z.dtype == torch.float64 else z.float()


def check_same_shape(method: str, z_s: Tensor, z_t: Tensor) -> None:
    if z_s.shape != z_t.shape:
        raise ValueError(
            f"{method} needs student and teacher logits of the same shape, got {tuple(z_s.shape)} "
            f"and {tuple(z_t.shape)} (do both models have the same number of classes?)"
        )
