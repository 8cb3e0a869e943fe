r"""DIST: Knowledge Distillation from A Stronger Teacher (Huang et al., NeurIPS 2022).

With ``p = softmax(z / tau)`` over the class dimension,

    L = tau^2 * ( beta  * (1 - mean_i  pearson(p_s[i, :], p_t[i, :]))     # inter-class
                + gamma * (1 - mean_c  pearson(p_s[:, c], p_t[:, c])) )   # intra-class

The inter-class term compares, per sample, how the two networks rank the classes; the intra-class
term compares, per class, how they rank the samples of the batch. For dense logits ``(N, C, H, W)``
every pixel is a sample: the inter-class term runs over all ``N*H*W`` pixels and the intra-class
term correlates each class over all pixels of the batch.

``pearson(x, y) = <x - mean x, y - mean y> / max(|x - mean x| * |y - mean y|, eps)``.

Computation is in float32 (float64 stays float64), whatever the input dtype.

The default path is eager and hand-differentiated (:class:`_DISTFunction`):

- both networks' probabilities live in one ``(2, N, C, ...)`` tensor, so each centring, product
  and reduction is one op for both; nothing is transposed or copied per axis;
- a softmax row sums to 1, so its mean over classes is exactly ``1/C``: the inter-class centring is
  a scalar subtraction (its error against the computed mean is second order);
- only the probabilities and per-sample / per-class vectors are kept for the backward pass, whose
  gradient is ``(A_i + A_c) * p_t - (B_i + B_c) * p_s + k_c`` followed by one fused softmax
  backward (terms constant along the class dim are dropped: the softmax backward removes them);
- on the CPU the large temporaries live in a per-module workspace (:class:`_Workspace`): a fresh
  multi-MiB tensor there costs page faults that take longer than the arithmetic.

``dist_loss_autograd`` is the same formula through plain autograd (used when the teacher logits
need gradients, and by the tests as the independent check of the hand-written gradient).
``DISTLoss(compile=True)`` (or ``DISTKD_COMPILE=1``) runs ``dist_loss_autograd`` through
``torch.compile`` and falls back to the eager path when compilation is unavailable or fails.
"""
from __future__ import annotations

import os
import warnings

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
    """``softmax(z / tau)`` over dim 1 in float32 (float64 stays float64)."""
    if z.dtype not in (torch.float32, torch.float64):
        z = z.float()
    return torch.softmax(z if tau == 1 else z / tau, dim=1)


def _sample_dims(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


class _Workspace:
    """Buffers kept between calls on the CPU, where a fresh multi-MiB tensor costs page faults.

    - ``scratch``: temporaries that never outlive one forward or one backward call;
    - ``take_probs`` / ``give_back_probs``: the probability tensor saved for backward, handed out
      to one forward at a time and given back by its backward (or at once when no backward will
      run). Should a retained graph run backward again after a later forward refilled the tensor,
      autograd's saved-tensor version check raises instead of using stale values.

    On other devices the caching allocator already makes fresh buffers cheap: new ones are
    returned. Tensors above ``MAX_NUMEL`` elements are never kept. Not pickled or deep-copied.
    Not thread-safe: Python threads running losses concurrently on the CPU need one module each.
    """

    MAX_NUMEL = 1 << 26  # at most 256 MiB of float32 kept per buffer

    def __init__(self) -> None:
        self._scratch: Tensor | None = None
        self._probs: Tensor | None = None

    def _keeps(self, numel: int, device: torch.device) -> bool:
        return device.type == "cpu" and numel <= self.MAX_NUMEL

    def scratch(self, shape: torch.Size, dtype: torch.dtype, device: torch.device, count: int) -> Tensor:
        """A contiguous ``(count, *shape)`` tensor (one allocation) for temporaries."""
        full = torch.Size((count, *shape))
        buf = self._scratch
        if buf is not None and buf.shape[1:] == shape and buf.shape[0] >= count and buf.dtype == dtype:
            return buf[:count]
        buf = torch.empty(full, dtype=dtype, device=device)
        if self._keeps(full.numel(), device):
            self._scratch = buf
        return buf

    def take_probs(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        probs, self._probs = self._probs, None
        if probs is not None and probs.shape == shape and probs.dtype == dtype:
            return probs
        return torch.empty(shape, dtype=dtype, device=device)

    def give_back_probs(self, probs: Tensor) -> None:
        if self._keeps(probs.numel(), probs.device):
            self._probs = probs

    def __reduce__(self):
        return (_Workspace, ())


def _softmax_into(out: Tensor, z: Tensor, tau: float, scratch: Tensor) -> None:
    """``out = softmax(z / tau)`` over dim 1, computed in ``out.dtype``."""
    if z.dtype != out.dtype or tau != 1:
        z = scratch.copy_(z) if tau == 1 else torch.div(scratch.copy_(z), tau, out=scratch)
    torch.ops.aten._softmax.out(z, 1, False, out=out)


def _chunks(n_rows: int, row_numel: int) -> list[tuple[int, int]]:
    """Slices of the batch dim for the temporaries: the whole batch when it has at most
    ``CHUNK_NUMEL`` elements; else slices of at most ``CHUNK_NUMEL`` elements and a quarter of the
    batch (at least one row), so that temporaries stay well below the size of the logits."""
    if n_rows * row_numel <= CHUNK_NUMEL:
        return [(0, n_rows)]
    rows = max(1, min(CHUNK_NUMEL // max(1, row_numel), -(-n_rows // 4)))
    return [(lo, min(n_rows, lo + rows)) for lo in range(0, n_rows, rows)]


CHUNK_NUMEL = 1 << 20  # ~4 MiB of float32


class _DISTFunction(torch.autograd.Function):
    """DIST of student logits ``z_s`` against teacher logits ``z_t`` (a constant).

    Both networks' probabilities live in one ``(2, N, C, ...)`` tensor ``p`` so that every
    centring, product and reduction is one op for both; the per-sample and per-class statistics
    are packed into one vector of ``M + C`` entries (M samples, C classes) for the coefficients.
    Temporaries are computed slice by slice along the batch dim (:data:`CHUNK_NUMEL`): besides ``p``
    and the returned gradient, memory stays small whatever the size of dense logits.
    """

    @staticmethod
    def forward(ctx, z_s: Tensor, z_t: Tensor, beta: float, gamma: float, tau: float, eps: float,
                workspace: _Workspace, recording: bool) -> Tensor:
        dtype = torch.float64 if z_s.dtype == torch.float64 else torch.float32
        n_rows, row_numel = z_s.shape[0], z_s[0].numel()
        chunks = _chunks(n_rows, row_numel)
        rows = chunks[0][1]
        scratch = workspace.scratch(torch.Size((rows, *z_s.shape[1:])), dtype, z_s.device, 3)
        p = workspace.take_probs(torch.Size((2, *z_s.shape)), dtype, z_s.device)
        for lo, hi in chunks:
            _softmax_into(p[0, lo:hi], z_s[lo:hi], tau, scratch[0, : hi - lo])
            _softmax_into(p[1, lo:hi], z_t[lo:hi], tau, scratch[1, : hi - lo])
        n_cls = p.shape[2]
        sample_dims = (1,) + tuple(range(3, p.dim()))
        mean = p.mean(sample_dims, keepdim=True)  # per class, over all samples (intra-class centring)
        dot_i = p.new_empty((n_rows, *z_s.shape[2:]))
        sq_i = p.new_empty((2, n_rows, *z_s.shape[2:]))
        dot_c, sq_c = p.new_zeros(n_cls), p.new_zeros((2, n_cls))
        for lo, hi in chunks:
            pc, x, q = p[:, lo:hi], scratch[:2, : hi - lo], scratch[2, : hi - lo]
            # Inter-class, along the class dim: a softmax row sums to 1, so its mean is exactly 1/C.
            torch.sub(pc, 1.0 / n_cls, out=x)
            torch.sum(torch.mul(x[0], x[1], out=q), 1, out=dot_i[lo:hi])
            if p.dim() == 3:  # classes on the contiguous last dim: the fused norm reads x once
                sq_i[:, lo:hi] = torch.linalg.vector_norm(x, dim=2).square_()
            else:  # (the norm kernel is slow along a strided dim)
                torch.sum(x.mul_(x), 2, out=sq_i[:, lo:hi])
            # Intra-class, along the sample dims, centred by each class's mean.
            torch.sub(pc, mean, out=x)
            dot_c += torch.mul(x[0], x[1], out=q).sum(tuple(d - 1 for d in sample_dims))
            sq_c += x.mul_(x).sum(sample_dims)
        # r = dot / max(|x||y|, eps); dr/dx = a * y - b * x with a = 1/max(|x||y|, eps), b = r/|x|^2
        # (b = 0 where the clamp is active, as autograd through clamp_min gives).
        sq = torch.cat((sq_i.flatten(1), sq_c), 1)
        dot = torch.cat((dot_i.flatten(), dot_c))
        prod = sq[0] * sq[1]
        eps2 = max(eps * eps, torch.finfo(dtype).tiny)
        a = prod.clamp_min(eps2).rsqrt_()
        r = dot * a
        b = torch.where(prod > eps2, r / sq[0], 0.0)
        # L = tau^2 * (beta * (1 - mean r_i) + gamma * (1 - mean r_c)) = tau^2 (beta + gamma) - <w, r>
        n_samples = dot_i.numel()
        weight = torch.empty_like(r)
        weight[:n_samples], weight[n_samples:] = tau**2 * beta / n_samples, tau**2 * gamma / n_cls
        if recording:
            ctx.save_for_backward(p, mean, a, b, weight)
        else:  # no backward will run
            workspace.give_back_probs(p)
        ctx.tau, ctx.in_dtype, ctx.workspace, ctx.chunks = tau, z_s.dtype, workspace, chunks
        ctx.coef_shapes = (dot_i.unsqueeze(1).shape, mean.shape[1:])
        return tau**2 * (beta + gamma) - torch.dot(weight, r)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        p, mean, a, b, weight = ctx.saved_tensors
        # dL/dp_s = sum over both axes of -w * (a * (t - mean t) - b * (s - mean s)):
        #   g = (A_i + A_c) * t - (B_i + B_c) * s + (B_c * mean s - A_c * mean t) + const_i,
        # with A = -w a, B = -w b. const_i is constant along the class dim and is dropped: the
        # softmax backward dz = s * (g - <g, s>) / tau removes it (1/tau is folded into w).
        weight = weight * (grad_out / -ctx.tau)
        coef_a, coef_b = a * weight, b * weight
        shape_i, shape_c = ctx.coef_shapes
        n_samples = shape_i.numel()
        a_i, a_c = coef_a[:n_samples].view(shape_i), coef_a[n_samples:].view(shape_c)
        b_i, b_c = coef_b[:n_samples].view(shape_i), coef_b[n_samples:].view(shape_c)
        const_c = torch.addcmul(b_c * mean[0], a_c, mean[1], value=-1)
        rows = ctx.chunks[0][1]
        scratch = ctx.workspace.scratch(torch.Size((rows, *p.shape[2:])), p.dtype, p.device, 2)
        grad_z = torch.empty(p.shape[1:], dtype=p.dtype, device=p.device)
        for lo, hi in ctx.chunks:
            s, t = p[0, lo:hi], p[1, lo:hi]
            coef, grad = scratch[0, : hi - lo], scratch[1, : hi - lo]
            torch.addcmul(const_c, torch.add(a_i[lo:hi], a_c, out=coef), t, out=grad)
            grad.addcmul_(torch.add(b_i[lo:hi], b_c, out=coef), s, value=-1)
            torch.ops.aten._softmax_backward_data.out(grad, s, 1, s.dtype, grad_input=grad_z[lo:hi])
        ctx.workspace.give_back_probs(p)
        return grad_z.to(ctx.in_dtype), None, None, None, None, None, None, None


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
    return _dist_loss(z_s, z_t, beta, gamma, tau, eps, _Workspace())


def _dist_loss(z_s: Tensor, z_t: Tensor, beta: float, gamma: float, tau: float, eps: float,
               workspace: _Workspace) -> Tensor:
    _check(z_s, z_t, tau)
    if z_t.requires_grad and torch.is_grad_enabled():
        return dist_loss_autograd(z_s, z_t, beta, gamma, tau, eps)
    recording = torch.is_grad_enabled() and z_s.requires_grad
    return _DISTFunction.apply(z_s, z_t.detach(), beta, gamma, tau, eps, workspace, recording)


def dist_loss_autograd(
    z_s: Tensor, z_t: Tensor, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, eps: float = 1e-8
) -> Tensor:
    """The same loss through plain autograd: centre, norm and correlate along each axis."""
    _check(z_s, z_t, tau)
    s, t = _probs(z_s, tau), _probs(z_t, tau)

    def pearson(dims: tuple[int, ...]) -> Tensor:
        xc, yc = s - s.mean(dims, keepdim=True), t - t.mean(dims, keepdim=True)
        norms = torch.linalg.vector_norm(xc, dim=dims) * torch.linalg.vector_norm(yc, dim=dims)
        return (xc * yc).sum(dims) / norms.clamp_min(eps)

    inter, intra = pearson((1,)), pearson(_sample_dims(s.dim()))
    return tau**2 * (beta * (1 - inter.mean()) + gamma * (1 - intra.mean()))


_compiled_loss = None


def _compiled(z_s: Tensor, z_t: Tensor, beta: float, gamma: float, tau: float, eps: float) -> Tensor:
    """``dist_loss_autograd`` through ``torch.compile``; the eager fast path if that fails."""
    global _compiled_loss
    if _compiled_loss is None:
        _compiled_loss = torch.compile(dist_loss_autograd, dynamic=False)
    if _compiled_loss is not False:
        try:
            return _compiled_loss(z_s, z_t.detach(), beta, gamma, tau, eps)
        except Exception as err:  # no compiler toolchain, unsupported backend, ...
            warnings.warn(f"torch.compile of the DIST loss failed ({type(err).__name__}: {err}); "
                          "using the eager implementation", stacklevel=3)
            _compiled_loss = False
    return dist_loss(z_s, z_t, beta, gamma, tau, eps)


class DISTLoss(nn.Module):
    """``nn.Module`` form of :func:`dist_loss`; ``forward(student_logits, teacher_logits)``.

    ``compile=True`` (or the environment variable ``DISTKD_COMPILE=1``) runs the loss through
    ``torch.compile`` with the eager fast path as fallback.
    """

    inputs = "logits"

    def __init__(
        self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, eps: float = 1e-8, compile: bool | None = None
    ) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"DIST temperature tau must be > 0, got {tau}")
        self.beta, self.gamma, self.tau, self.eps = float(beta), float(gamma), float(tau), float(eps)
        if compile is None:
            compile = os.environ.get("DISTKD_COMPILE", "0") not in ("", "0", "false", "False")
        self.compile = bool(compile)
        self._workspace = _Workspace()

    def forward(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        if self.compile and not (z_t.requires_grad and torch.is_grad_enabled()):
            _check(z_s, z_t, self.tau)
            return _compiled(z_s, z_t, self.beta, self.gamma, self.tau, self.eps)
        return _dist_loss(z_s, z_t, self.beta, self.gamma, self.tau, self.eps, self._workspace)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}, tau={self.tau}" + (", compile=True" if self.compile else "")
