r"""Vanilla knowledge distillation (Hinton et al., 2015).

    L = T^2 * mean_i KL( softmax(z_t[i] / T) || softmax(z_s[i] / T) )

Classes are on dim 1; for dense logits ``(N, C, H, W)`` every pixel is a sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def kl_kd_loss(z_s: Tensor, z_t: Tensor, tau: float = 4.0) -> Tensor:
    """Temperature-scaled KL divergence from teacher to student, averaged over samples."""
    if z_s.shape != z_t.shape:
        raise ValueError(
            f"KD needs student and teacher logits of the same shape, got {tuple(z_s.shape)} "
            f"and {tuple(z_t.shape)} (do both models have the same number of classes?)"
        )
    if not tau > 0:
        raise ValueError(f"KD temperature must be > 0, got {tau}")
    log_s = torch.log_softmax(z_s.float() / tau, dim=1)
    log_t = torch.log_softmax(z_t.float() / tau, dim=1)
    kl = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(1)
    return kl.mean() * tau**2


class KLDivKD(nn.Module):
    """``nn.Module`` form of :func:`kl_kd_loss`."""

    inputs = "logits"

    def __init__(self, tau: float = 4.0) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"KD temperature must be > 0, got {tau}")
        self.tau = float(tau)

    def forward(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        return kl_kd_loss(z_s, z_t, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
