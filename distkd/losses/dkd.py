r"""DKD: Decoupled Knowledge Distillation (Zhao et al., CVPR 2022), as its authors' code computes it.

With ``p = softmax(z / T)`` over the classes and ``g`` the target class of each sample,

    TCKD = T^2 / N * sum_i KL( [p_t[i, g], 1 - p_t[i, g]] || [p_s[i, g], 1 - p_s[i, g]] )   # target vs rest
    NCKD = T^2 / N * sum_i KL( q_t[i] || q_s[i] ),  q = softmax(z / T - 1000 * onehot(g))      # among the rest
    DKD  = alpha * TCKD + beta * NCKD

and the trainer multiplies it by the linear warm-up ``min(epoch / warmup, 1)``. Point by point as
``mdistiller/distillers/DKD.py`` (megvii-research/mdistiller):

* the binary distribution sums the softmax over the target mask and over the other classes
  (``cat_mask``) and takes the plain ``log`` of the student's sums;
* the non-target distribution masks the target logit by subtracting 1000 from ``z / T`` (not -inf);
* both KL terms are summed over the batch and divided by the batch size, times ``T^2``;
* warm-up: mdistiller counts epochs from 1 and applies ``min(epoch / WARMUP, 1)``; this trainer
  counts from 0, so epoch ``e`` here is their ``e + 1``: the factor is ``min((e + 1) / warmup, 1)``
  (1/20 in the first epoch of their CIFAR-100 setting, 1 from the 20th on; their ImageNet setting,
  ``warmup: 1``, has none). ``warmup: 0`` turns it off.

Defaults are mdistiller's (``CFG.DKD``): alpha 1, beta 8, T 4, warm-up 20 epochs, with the CE term
at weight 1. ``ls=True`` standardises both logits first (logit standardisation, Sun et al. 2024, as
their ``DKD.py``). Logits ``(N, C)`` only, with one class index per sample (not soft targets).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distkd.context import BatchContext
from distkd.losses.common import check_same_shape, upcast
from distkd.losses.standardize import standardize

MASK = 1000.0  # subtracted from the target logit / T in the non-target term, as the authors' code


def _check_targets(z: Tensor, target: Tensor | None) -> None:
    if target is None:
        raise ValueError("dkd needs the batch's class targets (one class index per sample); none were given")
    if target.dim() != 1 or target.is_floating_point():
        raise ValueError(f"dkd needs one class index per sample, got targets of shape {tuple(target.shape)} "
                         f"({target.dtype}); mixup / cutmix soft targets cannot be used with dkd")
    if len(target) != len(z):
        raise ValueError(f"dkd: {len(target)} targets for {len(z)} samples")


def dkd_loss(z_s: Tensor, z_t: Tensor, target: Tensor, alpha: float = 1.0, beta: float = 8.0,
             tau: float = 4.0) -> Tensor:
    """``alpha * TCKD + beta * NCKD`` between student and teacher logits ``(N, C)`` (no warm-up)."""
    check_same_shape("DKD", z_s, z_t)
    if z_s.dim() != 2:
        raise ValueError(f"dkd takes logits of shape (N, C), got {tuple(z_s.shape)}")
    _check_targets(z_s, target)
    if not tau > 0:
        raise ValueError(f"dkd temperature tau must be > 0, got {tau}")
    z_s, z_t = upcast(z_s), upcast(z_t)
    gt = F.one_hot(target, z_s.shape[1]).to(z_s.dtype)  # 1 at the target class
    n = len(target)

    def target_vs_rest(p: Tensor) -> Tensor:
        return torch.stack([(p * gt).sum(1), (p * (1 - gt)).sum(1)], dim=1)

    b_s = target_vs_rest(torch.softmax(z_s / tau, dim=1))
    b_t = target_vs_rest(torch.softmax(z_t / tau, dim=1))
    tckd = F.kl_div(torch.log(b_s), b_t, reduction="sum") * tau**2 / n
    log_q_s = torch.log_softmax(z_s / tau - MASK * gt, dim=1)
    q_t = torch.softmax(z_t / tau - MASK * gt, dim=1)
    nckd = F.kl_div(log_q_s, q_t, reduction="sum") * tau**2 / n
    return alpha * tckd + beta * nckd


def warmup_factor(epoch: int, warmup: int) -> float:
    """``min((epoch + 1) / warmup, 1)`` for this trainer's epoch counted from 0 (1 when ``warmup`` is 0)."""
    return min((epoch + 1) / warmup, 1.0) if warmup > 0 else 1.0


class DKD(nn.Module):
    """:func:`dkd_loss` times the warm-up factor of the batch's epoch; ``forward(z_s, z_t, ctx)`` reads
    the class targets and the epoch from ``ctx`` (a :class:`~distkd.context.BatchContext`)."""

    inputs = "logits"
    dense = False  # (N, C) logits only
    needs_targets = True

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, tau: float = 4.0, warmup: int = 20,
                 ls: bool = False) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"dkd temperature tau must be > 0, got {tau}")
        if warmup < 0 or int(warmup) != warmup:
            raise ValueError(f"dkd warmup is a whole number of epochs >= 0, got {warmup}")
        self.alpha, self.beta, self.tau = float(alpha), float(beta), float(tau)
        self.warmup, self.ls = int(warmup), bool(ls)

    def forward(self, z_s: Tensor, z_t: Tensor, ctx: BatchContext | None = None) -> Tensor:
        if ctx is None or ctx.targets is None:
            raise ValueError("dkd needs the batch's class targets (one class index per sample); none were given")
        if self.ls:
            z_s, z_t = standardize(upcast(z_s)), standardize(upcast(z_t))
        loss = dkd_loss(z_s, z_t, ctx.targets, self.alpha, self.beta, self.tau)
        return warmup_factor(ctx.epoch, self.warmup) * loss

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, beta={self.beta}, tau={self.tau}, warmup={self.warmup}"
                + (", ls=True" if self.ls else ""))
