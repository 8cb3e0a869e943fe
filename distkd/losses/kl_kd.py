r"""Vanilla knowledge distillation (Hinton et al., 2015).

    L = T^2 * mean_i KL( softmax(z_t[i] / T) || softmax(z_s[i] / T) )

Classes are on dim 1; for dense logits ``(N, C, H, W)`` every pixel is a sample. ``ls=True``
standardises both logits first (as mdistiller's ``kd_loss`` with the LS authors' ``logit_stand``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distkd.losses.common import check_same_shape, standardize, upcast


def kl_kd_loss(z_s: Tensor, z_t: Tensor, tau: float = 4.0, ls: bool = False) -> Tensor:
    """Temperature-scaled KL divergence from teacher to student, averaged over samples."""
    check_same_shape("KD", z_s, z_t)
    if not tau > 0:
        raise ValueError(f"KD temperature must be > 0, got {tau}")
    z_s, z_t = upcast(z_s), upcast(z_t)
    if ls:
        z_s, z_t = standardize(z_s), standardize(z_t)
    log_s = torch.log_softmax(z_s / tau, dim=1)
    log_t = torch.log_softmax(z_t / tau, dim=1)
    kl = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(1)
    return kl.mean() * tau**2


class KLDivKD(nn.Module):
    """``nn.Module`` form of :func:`kl_kd_loss`."""

    inputs = "logits"

    def __init__(self, tau: float = 4.0, ls: bool = False) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"KD temperature must be > 0, got {tau}")
        self.tau, self.ls = float(tau), bool(ls)

    def forward(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        return kl_kd_loss(z_s, z_t, self.tau, self.ls)

    def extra_repr(self) -> str:
        return f"tau={self.tau}" + (", ls=True" if self.ls else "")
