r"""DIST: Knowledge Distillation from A Stronger Teacher (Huang et al., NeurIPS 2022).

With ``p = softmax(z / tau)`` over the class dimension (dim 1),

    L = tau^2 * ( beta  * (1 - mean_i pearson(p_s[i, :], p_t[i, :]))     # inter-class
                + gamma * (1 - mean_c pearson(p_s[:, c], p_t[:, c])) )   # intra-class

    pearson(a, b) = <a - mean a, b - mean b> / (|a - mean a| * |b - mean b| + eps),  eps = 1e-8

``eps`` is added to the product of the norms, as in the paper's code (all three of its code bases).
Dense logits ``(N, C, H, W)``: every pixel is a sample, so the inter-class term runs over all
``N*H*W`` pixels and the intra-class term correlates each class over all pixels of the batch.

``probs="sigmoid"`` replaces the softmax by an element-wise ``sigmoid(z / tau)``: the paper's
RetinaNet DIST (``use_sigmoid=True`` in its detection code), where the ``A*C`` anchor x class scores
of each position form the row.

``ls=True`` standardises both logits over the classes first (softmax form only).
Computed in float32 whatever the input dtype (float64 stays float64), through plain autograd.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from distkd.losses.common import standardize, upcast

PROBS = ("softmax", "sigmoid")


def pearson(a: Tensor, b: Tensor, dims: tuple[int, ...], eps: float = 1e-8) -> Tensor:
    """Pearson correlation of ``a`` and ``b`` along ``dims``, with ``eps`` added to the norm product."""
    a = a - a.mean(dims, keepdim=True)
    b = b - b.mean(dims, keepdim=True)
    norms = torch.linalg.vector_norm(a, dim=dims) * torch.linalg.vector_norm(b, dim=dims)
    return (a * b).sum(dims) / (norms + eps)


def probabilities(z: Tensor, tau: float = 1.0, probs: str = "softmax") -> Tensor:
    """``softmax(z / tau)`` over dim 1 (or element-wise ``sigmoid(z / tau)``), in float32 or float64."""
    z = upcast(z)
    return torch.softmax(z / tau, dim=1) if probs == "softmax" else torch.sigmoid(z / tau)


def dist_loss(
    z_s: Tensor,
    z_t: Tensor,
    beta: float = 1.0,
    gamma: float = 1.0,
    tau: float = 1.0,
    eps: float = 1e-8,
    probs: str = "softmax",
    ls: bool = False,
) -> Tensor:
    """DIST between student logits ``z_s`` and teacher logits ``z_t``, ``(N, C)`` or ``(N, C, *spatial)``."""
    _check(z_s, z_t, tau, probs, ls)
    if ls:
        z_s, z_t = standardize(upcast(z_s)), standardize(upcast(z_t))
    p_s, p_t = probabilities(z_s, tau, probs), probabilities(z_t, tau, probs)
    sample_dims = (0,) + tuple(range(2, p_s.dim()))
    inter = pearson(p_s, p_t, (1,), eps)  # one value per sample (pixel)
    intra = pearson(p_s, p_t, sample_dims, eps)  # one value per class
    return tau**2 * (beta * (1 - inter.mean()) + gamma * (1 - intra.mean()))


def _check(z_s: Tensor, z_t: Tensor, tau: float, probs: str, ls: bool = False) -> None:
    if z_s.shape != z_t.shape:
        raise ValueError(
            f"DIST needs student and teacher logits of the same shape, got {tuple(z_s.shape)} "
            f"and {tuple(z_t.shape)} (do both models have the same number of classes?)"
        )
    if z_s.dim() < 2:
        raise ValueError(f"DIST needs logits of shape (N, C) or (N, C, H, W), got {tuple(z_s.shape)}")
    if not tau > 0:
        raise ValueError(f"DIST temperature tau must be > 0, got {tau}")
    if probs not in PROBS:
        raise ValueError(f"DIST probs must be one of {PROBS}, got '{probs}'")
    if ls and probs != "softmax":
        raise ValueError("DIST ls=True (logit standardisation) goes before a softmax; probs='sigmoid' has none")


class DISTLoss(nn.Module):
    """``nn.Module`` form of :func:`dist_loss`: ``forward(student_logits, teacher_logits)``.

    The teacher logits are used as given: detach them (or compute them under ``no_grad``) unless
    gradients should reach the teacher too.
    """

    inputs = "logits"

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, eps: float = 1e-8,
                 probs: str = "softmax", ls: bool = False) -> None:
        super().__init__()
        _check(torch.empty(1, 1), torch.empty(1, 1), tau, probs, ls)
        self.beta, self.gamma, self.tau, self.eps, self.probs = float(beta), float(gamma), float(tau), float(eps), probs
        self.ls = bool(ls)

    def forward(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        return dist_loss(z_s, z_t, self.beta, self.gamma, self.tau, self.eps, self.probs, self.ls)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}, tau={self.tau}" + (
            f", probs={self.probs}" if self.probs != "softmax" else "") + (", ls=True" if self.ls else "")
