"""What the logit losses share: their compute dtype, the shape check, and logit standardisation.

``standardize`` is Sun et al.'s (CVPR 2024) ``normalize`` (sunshangquan/logit-standardization-KD):
``(z - mean) / (1e-7 + std)`` over the classes (dim 1), torch's unbiased std, applied to student
and teacher before the temperature (the ``ls`` switch of kd, dkd, dist). Equal logits give zeros
but a NaN gradient, as theirs.
"""
from __future__ import annotations

import torch
from torch import Tensor


def upcast(z: Tensor) -> Tensor:
    """The losses compute in float32 whatever the input dtype (half, bfloat16); float64 stays float64."""
    return z if z.dtype == torch.float64 else z.float()


def standardize(z: Tensor, dim: int = 1) -> Tensor:
    return (z - z.mean(dim, keepdim=True)) / (1e-7 + z.std(dim, keepdim=True))


def check_same_shape(method: str, z_s: Tensor, z_t: Tensor) -> None:
    if z_s.shape != z_t.shape:
        raise ValueError(f"{method} needs student and teacher logits of the same shape, got {tuple(z_s.shape)} "
                         f"and {tuple(z_t.shape)} (do both models have the same number of classes?)")
