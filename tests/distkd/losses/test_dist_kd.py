"""DIST loss: value and gradient against an independent numpy computation with the paper's eps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distkd.losses.dist_kd import DISTLoss, dist_loss

EPS = 1e-8


def rows(z: np.ndarray) -> np.ndarray:
    """``(N, C, *spatial)`` -> ``(M, C)``: every pixel a row, as the paper's ``transpose(1, 3).reshape``."""
    return np.moveaxis(z.astype(np.float64), 1, -1).reshape(-1, z.shape[1])


def numpy_probs(z: np.ndarray, tau: float, kind: str) -> np.ndarray:
    x = rows(z) / tau
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-x))
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def pearson_and_grad(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ``<a~, b~> / (|a~| |b~| + eps)`` and its gradient with respect to ``a``."""
    ac, bc = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    na, nb = np.linalg.norm(ac, axis=1, keepdims=True), np.linalg.norm(bc, axis=1, keepdims=True)
    dot, den = (ac * bc).sum(1, keepdims=True), na * nb + EPS
    unit_a = np.divide(ac, na, out=np.zeros_like(ac), where=na > 0)
    grad_c = bc / den - dot * nb * unit_a / den**2  # d r / d a~
    return (dot / den)[:, 0], grad_c - grad_c.mean(1, keepdims=True)  # centring is a projection


def numpy_dist(z_s, z_t, beta, gamma, tau, kind="softmax") -> tuple[float, np.ndarray]:
    """The loss and d loss / d z_s, from the definition, in float64 numpy."""
    s, t = numpy_probs(z_s, tau, kind), numpy_probs(z_t, tau, kind)
    r_i, g_i = pearson_and_grad(s, t)
    r_c, g_c = pearson_and_grad(s.T, t.T)
    loss = tau**2 * (beta * (1 - r_i.mean()) + gamma * (1 - r_c.mean()))
    grad_p = -tau**2 * (beta * g_i / len(r_i) + gamma * g_c.T / len(r_c))
    if kind == "sigmoid":
        grad_z = grad_p * s * (1 - s) / tau
    else:
        grad_z = s * (grad_p - (grad_p * s).sum(1, keepdims=True)) / tau
    moved = np.moveaxis(z_s, 1, -1).shape
    return loss, np.moveaxis(grad_z.reshape(moved), -1, 1)


def logits(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64, scale: float = 3.0):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=gen, dtype=torch.float64)).to(dtype)


def confident_teacher(n: int = 32, classes: int = 1000, seed: int = 0) -> torch.Tensor:
    """ImageNet-like teacher logits: each sample's top class has probability > 0.9."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=gen)
    z = 3 * torch.randn(n, classes, generator=gen, dtype=torch.float64)
    z[torch.arange(n), labels] += 20
    assert torch.softmax(z, 1).max(1).values.min() > 0.7
    return z


def check_against_numpy(z_s: torch.Tensor, z_t: torch.Tensor, beta, gamma, tau, kind="softmax"):
    z_s = z_s.clone().requires_grad_()
    loss = dist_loss(z_s, z_t, beta, gamma, tau, probs=kind)
    loss.backward()
    expected, grad = numpy_dist(z_s.detach().numpy(), z_t.numpy(), beta, gamma, tau, kind)
    assert loss.item() == pytest.approx(expected, abs=1e-6, rel=1e-6)
    relative = np.linalg.norm(z_s.grad.numpy() - grad) / np.linalg.norm(grad)
    assert relative < 1e-5


SHAPES = [(12, 7), (3, 4, 2, 3), (5, 4, 6), (2, 3, 2, 2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_matches_numpy_on_random_logits(shape, tau):
    check_against_numpy(logits(shape, 0), logits(shape, 1), 0.7, 1.9, tau)


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_matches_numpy_on_confident_imagenet_logits(tau):
    z_t = confident_teacher()
    check_against_numpy(logits(z_t.shape, 2), z_t, 1.0, 1.0, tau)


def test_eps_is_added_to_the_norm_product_not_clamped():
    """On confident logits the clamp form ``max(|a||b|, eps)`` gives another gradient (the test discriminates)."""
    z_t = confident_teacher()
    z_s = logits(z_t.shape, 2).requires_grad_()
    grad, = torch.autograd.grad(dist_loss(z_s, z_t), z_s)
    s, t = torch.softmax(z_s, 1), torch.softmax(z_t, 1)

    def clamped(dim: int) -> torch.Tensor:
        a, b = s - s.mean(dim, keepdim=True), t - t.mean(dim, keepdim=True)
        return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim)).clamp_min(EPS)

    grad_clamped, = torch.autograd.grad(2 - clamped(1).mean() - clamped(0).mean(), z_s)
    assert (grad - grad_clamped).norm() / grad.norm() > 0.1


@pytest.mark.parametrize("shape", [(12, 720), (2, 720, 3, 4)])
def test_sigmoid_probabilities_match_numpy(shape):
    check_against_numpy(logits(shape, 3), logits(shape, 4), 1.0, 1.0, 1.0, kind="sigmoid")


@pytest.mark.parametrize("shape", SHAPES[:2])
@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_gradcheck_float64(shape, kind):
    z_s, z_t = logits(shape, 5).requires_grad_(), logits(shape, 6)
    assert torch.autograd.gradcheck(lambda z: dist_loss(z, z_t, 0.5, 2.0, 2.0, probs=kind), (z_s,))


@pytest.mark.parametrize("shape", SHAPES[:2])
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_identical_logits_give_zero(shape, tau):
    z = logits(shape, 7)
    z_s = z.clone().requires_grad_()
    loss = dist_loss(z_s, z, tau=tau)
    assert abs(loss.item()) < 1e-4  # not exactly 0: eps in the denominators (3e-6 here at tau 4)
    loss.backward()
    assert z_s.grad.abs().max() < 1e-5


def test_uniform_student_stays_finite():
    """A zero-initialised head gives a constant softmax: zero centred norms, r = 0 on both axes."""
    z_s = torch.zeros(6, 5, dtype=torch.float64, requires_grad=True)
    loss = dist_loss(z_s, logits((6, 5), 8), 1.0, 2.0, 1.0)
    loss.backward()
    assert loss.item() == pytest.approx(3.0) and torch.isfinite(z_s.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_compute_in_float32(dtype):
    z_s, z_t = logits((4, 6, 3, 3), 9, dtype).requires_grad_(), logits((4, 6, 3, 3), 10, dtype)
    loss = DISTLoss(tau=4.0)(z_s, z_t)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.detach(), dist_loss(z_s.detach().float(), z_t.float(), tau=4.0))
    loss.backward()
    assert z_s.grad.dtype == dtype and torch.isfinite(z_s.grad.float()).all()


def test_module_equals_function_and_teacher_grad_flows_when_asked():
    z_s, z_t = logits((8, 5), 11).requires_grad_(), logits((8, 5), 12).requires_grad_()
    module = DISTLoss(1.5, 0.5, 2.0)
    assert "tau=2.0" in repr(module)
    loss = module(z_s, z_t)
    torch.testing.assert_close(loss, dist_loss(z_s, z_t, 1.5, 0.5, 2.0))
    loss.backward()
    assert z_t.grad is not None and z_t.grad.abs().sum() > 0


def test_channels_last_and_non_contiguous_inputs():
    z_s, z_t = logits((2, 4, 3, 5), 13), logits((2, 4, 3, 5), 14)
    expected = dist_loss(z_s, z_t)
    channels_last = [z.contiguous(memory_format=torch.channels_last) for z in (z_s, z_t)]
    torch.testing.assert_close(dist_loss(*channels_last), expected)
    z2 = logits((6, 5), 15)
    torch.testing.assert_close(dist_loss(z2.T.contiguous().T, z2.flip(0)), dist_loss(z2, z2.flip(0).contiguous()))


@pytest.mark.parametrize("bad", [(4, 5), (4, 6, 1)])
def test_shape_mismatch_raises(bad):
    with pytest.raises(ValueError, match="same shape"):
        DISTLoss()(torch.randn(4, 6), torch.randn(bad))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        dist_loss(torch.randn(5), torch.randn(5))
    for tau in (0.0, -1.0):
        with pytest.raises(ValueError, match="tau"):
            DISTLoss(tau=tau)
    with pytest.raises(ValueError, match="probs"):
        DISTLoss(probs="tanh")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    z_t = logits((16, 10, 4, 4), 16, torch.float32)
    results = []
    for device in ("cpu", "cuda"):
        z_s = logits((16, 10, 4, 4), 17, torch.float32).to(device).requires_grad_()
        loss = DISTLoss(1.0, 2.0, 4.0)(z_s, z_t.to(device))
        loss.backward()
        results.append((loss.detach().cpu(), z_s.grad.cpu()))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4, atol=1e-7)
