r"""Logit standardisation (Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024).

Each sample's logits become their z-score over the classes, for the student and the teacher alike,
before the temperature:

    standardize(z) = (z - mean_c z) / (1e-7 + std_c z),      std unbiased (divides by C - 1)

as ``normalize`` in the authors' code (sunshangquan/logit-standardization-KD,
``mdistiller/distillers/KD.py`` and ``DKD.py``): ``logit.mean(dim=-1)``, ``logit.std(dim=-1)``
(torch's default, unbiased) and 1e-7 added to the standard deviation. Here the classes are on dim 1,
which is their last dimension for ``(N, C)`` logits; for dense logits ``(N, C, *spatial)`` every
pixel is standardised over its classes.

It is the ``ls`` switch of the ``kd``, ``dkd`` and ``dist`` methods (``--kd-loss-kwargs ls=1``).
A sample whose logits are all equal (std 0) maps to zeros, but its gradient is NaN, as in the
authors' code.
"""
from __future__ import annotations

from torch import Tensor

EPS = 1e-7


def standardize(z: Tensor, dim: int = 1) -> Tensor:
    """``(z - mean) / (1e-7 + std)`` along ``dim`` (the classes), std unbiased, as the authors' ``normalize``."""
    mean = z.mean(dim, keepdim=True)
    std = z.std(dim, keepdim=True)
    return (z - mean) / (EPS + std)
