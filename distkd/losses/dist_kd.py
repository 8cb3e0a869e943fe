r"""DIST: Knowledge Distillation from A Stronger Teacher (Huang et al., NeurIPS 2022).

With ``p = softmax(z / tau)`` over the class dimension,

    L = tau^2 * ( beta  * (1 - mean_i  pearson(p_s[i, :], p_t[i, :]))     # inter-class
                + gamma * (1 - mean_c  pearson(p_s[:, c], p_t[:, c])) )   # intra-class

The inter-class term compares, per sample, how the two networks rank the classes; the intra-class
term compares, per class, how they rank the samples of the batch. For dense logits ``(N, C, H, W)``
every pixel is a sample: the inter-class term runs over all ``N*H*W`` pixels and the intra-class
term correlates each class over all pixels of the batch.

``pearson(x, y) = <x - mean x, y - mean y> / max(|x - mean x| * |y - mean y|, eps)``.

Computation is in float32 (float64 stays float64), whatever the input dtype. The gradient is
written by hand (see ``_DISTFunction.backward``) so that only the two probability tensors are kept
for the backward pass; the centring runs along each axis in place of transposed copies.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def _check(z_s: Tensor, z_t: Tensor, tau: float) -> None:
    if z_s.shape != z_t.shape:
        raise ValueError(
            f"DIST needs student and teacher logits of the same shape, got {tuple(z_s.shape)} "
            f"and {tuple(z_t.shape)} (do both models have the same number of classes?)"
        )
    if z_s.dim() < 2:
        raise ValueError(f"DIST needs logits of shape (N, C) or (N, C, H, W), got {tuple(z_s.shape)}")
    if not tau > 0:
        raise ValueError(f"DIST temperature tau must be > 0, got {tau}")


def _probs(z: Tensor, tau: float) -> Tensor:
    z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
    return torch.softmax(z / tau, dim=1)


def _sample_dims(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


def _pearson_terms(x: Tensor, y: Tensor, dims: tuple[int, ...], eps: float):
    """Centred copies, norms and Pearson coefficient of x and y along ``dims``."""
    xc = x - x.mean(dims, keepdim=True)
    yc = y - y.mean(dims, keepdim=True)
    nx = torch.linalg.vector_norm(xc, dim=dims, keepdim=True)
    ny = torch.linalg.vector_norm(yc, dim=dims, keepdim=True)
    denom = (nx * ny).clamp_min(eps)
    r = (xc * yc).sum(dims, keepdim=True) / denom
    return xc, yc, nx, denom, r


class _DISTFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z_s: Tensor, z_t: Tensor, beta: float, gamma: float, tau: float, eps: float):
        s, t = _probs(z_s, tau), _probs(z_t, tau)
        inter = _pearson_terms(s, t, (1,), eps)[-1]
        intra = _pearson_terms(s, t, _sample_dims(s.dim()), eps)[-1]
        loss = tau**2 * (beta * (1 - inter.mean()) + gamma * (1 - intra.mean()))
        ctx.save_for_backward(s, t)
        ctx.hyper = (beta, gamma, tau, eps, z_s.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        s, t = ctx.saved_tensors
        beta, gamma, tau, eps, dtype = ctx.hyper
        grad_s = torch.zeros_like(s)
        # d pearson(x, y) / dx = yc / (|xc| |yc|) - r * xc / |xc|^2, one term per axis.
        for weight, dims in ((beta, (1,)), (gamma, _sample_dims(s.dim()))):
            if weight == 0:
                continue
            xc, yc, nx, denom, r = _pearson_terms(s, t, dims, eps)
            count = r.numel()
            scale = -(tau**2) * weight / count
            grad_s += (yc / denom - r * xc / nx.square().clamp_min(eps)) * scale
        # Softmax backward: dz = p * (g - <g, p>) / tau.
        grad_s *= grad_out
        grad_z = s * (grad_s - (grad_s * s).sum(1, keepdim=True)) / tau
        return grad_z.to(dtype), None, None, None, None, None


def dist_loss(
    z_s: Tensor,
    z_t: Tensor,
    beta: float = 1.0,
    gamma: float = 1.0,
    tau: float = 1.0,
    eps: float = 1e-8,
) -> Tensor:
    """DIST loss between student logits ``z_s`` and teacher logits ``z_t``.

    Both are ``(N, C)`` or ``(N, C, *spatial)`` with classes on dim 1. The teacher side is treated
    as a constant unless it requires grad (then plain autograd runs through both).
    """
    _check(z_s, z_t, tau)
    if z_t.requires_grad:
        return dist_loss_autograd(z_s, z_t, beta, gamma, tau, eps)
    return _DISTFunction.apply(z_s, z_t, beta, gamma, tau, eps)


def dist_loss_autograd(
    z_s: Tensor, z_t: Tensor, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, eps: float = 1e-8
) -> Tensor:
    """The same loss through plain autograd (used when the teacher side needs gradients)."""
    _check(z_s, z_t, tau)
    s, t = _probs(z_s, tau), _probs(z_t, tau)
    inter = _pearson_terms(s, t, (1,), eps)[-1]
    intra = _pearson_terms(s, t, _sample_dims(s.dim()), eps)[-1]
    return tau**2 * (beta * (1 - inter.mean()) + gamma * (1 - intra.mean()))


class DISTLoss(nn.Module):
    """``nn.Module`` form of :func:`dist_loss`; ``forward(student_logits, teacher_logits)``."""

    inputs = "logits"

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"DIST temperature tau must be > 0, got {tau}")
        self.beta, self.gamma, self.tau, self.eps = float(beta), float(gamma), float(tau), float(eps)

    def forward(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        return dist_loss(z_s, z_t, self.beta, self.gamma, self.tau, self.eps)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}, tau={self.tau}"
