"""DIST loss: values against an independent numpy computation, gradients, dtypes, errors."""
from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

from distkd.losses import dist_kd
from distkd.losses.dist_kd import DISTLoss, dist_loss, dist_loss_autograd


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to other jobs stalling a second one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def numpy_dist(z_s: np.ndarray, z_t: np.ndarray, beta: float, gamma: float, tau: float) -> float:
    """DIST from its definition in float64 numpy: per-row and per-column Pearson of softmaxes."""
    def softmax_rows(z: np.ndarray) -> np.ndarray:
        rows = np.moveaxis(z.astype(np.float64) / tau, 1, -1).reshape(-1, z.shape[1])
        e = np.exp(rows - rows.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    s, t = softmax_rows(z_s), softmax_rows(z_t)
    inter = [np.corrcoef(s[i], t[i])[0, 1] for i in range(s.shape[0])]
    intra = [np.corrcoef(s[:, c], t[:, c])[0, 1] for c in range(s.shape[1])]
    return tau**2 * (beta * (1 - np.mean(inter)) + gamma * (1 - np.mean(intra)))


def logits(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32, scale: float = 3.0):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=gen, dtype=torch.float64)).to(dtype)


SHAPES = [(12, 7), (3, 4, 2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tau", [1.0, 4.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_numpy_pearson(shape, tau, dtype):
    z_s, z_t = logits(shape, 0, dtype), logits(shape, 1, dtype)
    expected = numpy_dist(z_s.double().numpy(), z_t.double().numpy(), 0.7, 1.9, tau)
    # 1e-6 absolute in float64; float32 carries ~7 digits, so 1e-6 relative there (losses reach ~40 at tau=4).
    tol = dict(abs=1e-6, rel=0) if dtype == torch.float64 else dict(abs=1e-6, rel=1e-6)
    for loss in (dist_loss(z_s, z_t, 0.7, 1.9, tau), DISTLoss(0.7, 1.9, tau)(z_s, z_t),
                 dist_loss_autograd(z_s, z_t, 0.7, 1.9, tau)):
        assert loss.dtype == dtype
        assert loss.item() == pytest.approx(expected, **tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_gradcheck_float64(shape, tau):
    z_s = logits(shape, 2, torch.float64).requires_grad_()
    z_t = logits(shape, 3, torch.float64)
    assert torch.autograd.gradcheck(lambda z: dist_loss(z, z_t, 0.5, 2.0, tau), (z_s,))
    module = DISTLoss(2.0, 0.5, tau)
    assert torch.autograd.gradcheck(lambda z: module(z, z_t), (z_s,))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_path_agrees_with_autograd(shape, dtype):
    z_t = logits(shape, 5, dtype)
    grads, values = [], []
    for fn in (dist_loss, dist_loss_autograd, DISTLoss(1.5, 0.5, 2.0)):
        z_s = logits(shape, 4, dtype).requires_grad_()
        value = fn(z_s, z_t) if isinstance(fn, DISTLoss) else fn(z_s, z_t, 1.5, 0.5, 2.0)
        value.backward()
        values.append(value.detach())
        grads.append(z_s.grad)
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-13)
    for value, grad in zip(values[1:], grads[1:]):
        torch.testing.assert_close(value, values[0], **tol)
        torch.testing.assert_close(grad, grads[0], **tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_identical_logits_give_zero(shape, tau):
    z = logits(shape, 6)
    z_s = z.clone().requires_grad_()
    loss = dist_loss(z_s, z, tau=tau)
    assert abs(loss.item()) < 1e-5
    loss.backward()
    assert z_s.grad.abs().max() < 1e-4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_low_precision_inputs_compute_in_float32(dtype, shape):
    z_s = logits(shape, 7, dtype).requires_grad_()
    z_t = logits(shape, 8, dtype)
    loss = DISTLoss(tau=4.0)(z_s, z_t)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    expected = dist_loss(z_s.detach().float(), z_t.float(), tau=4.0)
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert z_s.grad.dtype == dtype and torch.isfinite(z_s.grad.float()).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_student_stays_finite_and_agrees(shape):
    """A zero-initialised head gives a constant softmax: the clamped denominator path."""
    z_t = logits(shape, 26, torch.float64)
    grads = []
    for fn in (dist_loss, dist_loss_autograd):
        z_s = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        loss = fn(z_s, z_t, 1.0, 2.0, 1.0)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z_s.grad).all()
        assert loss.item() == pytest.approx(3.0)  # r = 0 on both axes
        grads.append(z_s.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("shape", [(5, 4, 6), (2, 3, 2, 2, 3)])
def test_other_dense_ranks(shape):
    z_s, z_t = logits(shape, 27, torch.float64).requires_grad_(), logits(shape, 28, torch.float64)
    expected = numpy_dist(z_s.detach().numpy(), z_t.numpy(), 1.0, 1.0, 2.0)
    assert dist_loss(z_s, z_t, tau=2.0).item() == pytest.approx(expected, abs=1e-9)
    assert torch.autograd.gradcheck(lambda z: dist_loss(z, z_t, 0.5, 2.0, 2.0), (z_s,))


def test_teacher_with_grad_uses_autograd_through_both():
    z_s, z_t = logits((8, 5), 9).requires_grad_(), logits((8, 5), 10).requires_grad_()
    dist_loss(z_s, z_t).backward()
    assert z_s.grad is not None and z_t.grad is not None and z_t.grad.abs().sum() > 0


def test_channels_last_and_non_contiguous_inputs():
    z_s, z_t = logits((2, 4, 3, 5), 11), logits((2, 4, 3, 5), 12)
    expected = dist_loss(z_s, z_t)
    cl = z_s.contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.testing.assert_close(dist_loss(cl, z_t.contiguous(memory_format=torch.channels_last)), expected)
    z2 = logits((6, 5), 13)
    torch.testing.assert_close(dist_loss(z2.T.contiguous().T, z2.flip(0)), dist_loss(z2, z2.flip(0).contiguous()))


def test_module_workspace_is_safe_across_calls_and_shapes():
    """Two losses built before one backward, then another shape: the reused scratch must not leak."""
    module = DISTLoss(1.0, 2.0, 2.0)
    z_a, z_b, z_t = logits((16, 7), 14).requires_grad_(), logits((16, 7), 15).requires_grad_(), logits((16, 7), 16)
    (module(z_a, z_t) + 3 * module(z_b, z_t)).backward()
    ref_a, ref_b = logits((16, 7), 14).requires_grad_(), logits((16, 7), 15).requires_grad_()
    (dist_loss_autograd(ref_a, z_t, 1.0, 2.0, 2.0) + 3 * dist_loss_autograd(ref_b, z_t, 1.0, 2.0, 2.0)).backward()
    torch.testing.assert_close(z_a.grad, ref_a.grad)
    torch.testing.assert_close(z_b.grad, ref_b.grad)
    z4, t4 = logits((2, 7, 3, 3), 17), logits((2, 7, 3, 3), 18)
    torch.testing.assert_close(module(z4, t4), dist_loss_autograd(z4, t4, 1.0, 2.0, 2.0))
    clone = pickle.loads(pickle.dumps(module))
    torch.testing.assert_close(clone(z4, t4), module(z4, t4))
    torch.testing.assert_close(copy.deepcopy(module)(z4, t4), module(z4, t4))


def test_reused_probabilities_never_feed_a_stale_backward():
    """A retained graph whose saved probabilities were refilled by a later call must raise."""
    module = DISTLoss()
    z_s, z_t = logits((6, 5), 23).requires_grad_(), logits((6, 5), 24)
    with torch.no_grad():
        module(z_s, z_t)
    loss = module(z_s, z_t)
    loss.backward(retain_graph=True)
    module(logits((6, 5), 25).requires_grad_(), z_t)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("bad", [(4, 5), (4, 6, 1)])
def test_shape_mismatch_raises(bad):
    with pytest.raises(ValueError, match="same shape"):
        dist_loss(torch.randn(4, 6), torch.randn(bad))
    with pytest.raises(ValueError, match="same shape"):
        DISTLoss()(torch.randn(4, 6), torch.randn(bad))


def test_one_dimensional_logits_raise():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        dist_loss(torch.randn(5), torch.randn(5))


@pytest.mark.parametrize("tau", [0.0, -1.0])
def test_non_positive_tau_raises(tau):
    with pytest.raises(ValueError, match="tau"):
        dist_loss(torch.randn(4, 6), torch.randn(4, 6), tau=tau)
    with pytest.raises(ValueError, match="tau"):
        dist_loss_autograd(torch.randn(4, 6), torch.randn(4, 6), tau=tau)
    with pytest.raises(ValueError, match="tau"):
        DISTLoss(tau=tau)


def test_compile_falls_back_to_eager_when_compilation_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    def fake_compile(fn, **kwargs):
        return broken

    monkeypatch.setattr(dist_kd, "_compiled_loss", None)
    monkeypatch.setattr(torch, "compile", fake_compile)
    z_s, z_t = logits((8, 5), 19).requires_grad_(), logits((8, 5), 20)
    module = DISTLoss(compile=True)
    assert "compile=True" in repr(module)
    with pytest.warns(UserWarning, match="eager"):
        loss = module(z_s, z_t)
    torch.testing.assert_close(loss, dist_loss(z_s, z_t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, then eager silently
        module(z_s, z_t).backward()
    assert z_s.grad is not None


def test_compile_env_var(monkeypatch):
    monkeypatch.setenv("DISTKD_COMPILE", "1")
    assert DISTLoss().compile
    monkeypatch.setenv("DISTKD_COMPILE", "0")
    assert not DISTLoss().compile
    assert DISTLoss(compile=True).compile


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("shape", SHAPES)
def test_cuda_matches_cpu(shape):
    z_t = logits(shape, 21)
    results = []
    for device in ("cpu", "cuda"):
        z_s = logits(shape, 22).to(device).requires_grad_()
        loss = DISTLoss(1.0, 2.0, 4.0)(z_s, z_t.to(device))
        loss.backward()
        results.append((loss.detach().cpu(), z_s.grad.cpu()))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4, atol=1e-7)
