r"""DKD (Zhao et al., CVPR 2022) as mdistiller's ``mdistiller/distillers/DKD.py`` computes it.

With ``p = softmax(z / T)``, ``g`` each sample's target class and ``b = [p_g, sum of the rest]``:

    TCKD = T^2 / N * sum_i KL(b_t[i] || b_s[i])              (plain log of the student's sums)
    NCKD = T^2 / N * sum_i KL(q_t[i] || q_s[i]),  q = softmax(z / T - 1000 * onehot(g))
    DKD  = warm-up * (alpha * TCKD + beta * NCKD),  warm-up = min(epoch / warmup, 1)

mdistiller counts epochs from 1; this trainer from 0, so its epoch ``e`` gets ``min((e + 1) / warmup,
1)`` (1/20 in the first epoch of their CIFAR-100 setting; ``warmup`` 0: none). Defaults are theirs
(CFG.DKD; CE weight 1). ``ls=True`` standardises both logits first (the logit-standardisation
authors' ``DKD.py``). ``(N, C)`` logits, one class index per sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distkd.context import BatchContext
from distkd.losses.common import check_same_shape, standardize, upcast


def dkd_loss(z_s: Tensor, z_t: Tensor, target: Tensor, alpha: float = 1.0, beta: float = 8.0,
             tau: float = 4.0) -> Tensor:
    """``alpha * TCKD + beta * NCKD`` between student and teacher logits ``(N, C)`` (no warm-up)."""
    check_same_shape("DKD", z_s, z_t)
    if z_s.dim() != 2:
        raise ValueError(f"dkd takes logits of shape (N, C), got {tuple(z_s.shape)}")
    if target is None or target.dim() != 1 or target.is_floating_point() or len(target) != len(z_s):
        raise ValueError("dkd needs the batch's class targets, one class index per sample (mixup / cutmix "
                         f"soft targets cannot be used), got {None if target is None else tuple(target.shape)}")
    if not tau > 0:
        raise ValueError(f"dkd temperature tau must be > 0, got {tau}")
    z_s, z_t, n = upcast(z_s), upcast(z_t), len(target)
    gt = F.one_hot(target, z_s.shape[1]).to(z_s.dtype)

    def target_vs_rest(z: Tensor) -> Tensor:
        p = torch.softmax(z / tau, dim=1)
        return torch.stack([(p * gt).sum(1), (p * (1 - gt)).sum(1)], dim=1)

    tckd = F.kl_div(torch.log(target_vs_rest(z_s)), target_vs_rest(z_t), reduction="sum")
    nckd = F.kl_div(torch.log_softmax(z_s / tau - 1000.0 * gt, 1), torch.softmax(z_t / tau - 1000.0 * gt, 1),
                    reduction="sum")
    return (alpha * tckd + beta * nckd) * tau**2 / n


def warmup_factor(epoch: int, warmup: int) -> float:
    """``min((epoch + 1) / warmup, 1)``, epochs counted from 0 (1 when ``warmup`` is 0)."""
    return min((epoch + 1) / warmup, 1.0) if warmup > 0 else 1.0


class DKD(nn.Module):
    """:func:`dkd_loss` times the warm-up factor; the targets and the epoch come from ``ctx``."""

    inputs, dense, needs_targets = "logits", False, True

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, tau: float = 4.0, warmup: int = 20,
                 ls: bool = False) -> None:
        super().__init__()
        if not tau > 0 or warmup < 0 or int(warmup) != warmup:
            raise ValueError(f"dkd needs tau > 0 and a whole warmup >= 0 (epochs), got tau={tau}, warmup={warmup}")
        self.alpha, self.beta, self.tau, self.warmup, self.ls = float(alpha), float(beta), float(tau), int(warmup), ls

    def forward(self, z_s: Tensor, z_t: Tensor, ctx: BatchContext | None = None) -> Tensor:
        if ctx is None or ctx.targets is None:
            raise ValueError("dkd needs the batch's class targets (one class index per sample); none were given")
        if self.ls:
            z_s, z_t = standardize(upcast(z_s)), standardize(upcast(z_t))
        return warmup_factor(ctx.epoch, self.warmup) * dkd_loss(z_s, z_t, ctx.targets, self.alpha, self.beta, self.tau)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, tau={self.tau}, warmup={self.warmup}, ls={self.ls}"
