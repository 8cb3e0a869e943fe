"""DKD, logit standardisation and their combinations with KD and DIST, against independent float64
NumPy implementations written from the authors' code (tests/distkd/losses/numpy_reference.py):
value and gradient to 1e-6 relative, on random and on confident 1000-class logits; the DKD warm-up."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distkd.context import BatchContext
from distkd.losses import DKD, DISTLoss, KLDivKD, build_kd_loss, dist_loss, dkd_loss, kl_kd_loss, standardize
from tests.distkd.losses import numpy_reference as ref
from tests.distkd.losses.test_dist_kd import numpy_dist

REL = 1e-6


def random_logits(n: int = 32, classes: int = 1000, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, classes, generator=gen, dtype=torch.float64)


def confident(n: int = 32, classes: int = 1000, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher logits whose top-1 probability exceeds 0.9 on every sample, and their top classes."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=gen)
    z = 2 * torch.randn(n, classes, generator=gen, dtype=torch.float64)
    z[torch.arange(n), labels] += 20
    assert torch.softmax(z, 1).max(1).values.min() > 0.9
    return z, labels


def targets(n: int = 32, classes: int = 1000, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed))


def cases():
    """(student, teacher, targets): random logits; a confident teacher with its own top-1 as targets;
    a confident teacher with other targets (the teacher is wrong on them)."""
    z_t, labels = confident()
    return {
        "random": (random_logits(seed=3), random_logits(seed=4), targets()),
        "confident": (random_logits(seed=5), z_t, labels),
        "confident-wrong": (random_logits(seed=6), z_t, targets(seed=7)),
    }


CASES = cases()


def check(loss_fn, numpy_fn, z_s: torch.Tensor) -> None:
    """``loss_fn(z_s)`` (torch, float64) and its autograd gradient against ``numpy_fn(z_s) -> (loss, grad)``."""
    z = z_s.clone().requires_grad_()
    loss = loss_fn(z)
    loss.backward()
    expected, grad = numpy_fn(z_s.numpy())
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(expected, rel=REL, abs=1e-12)
    assert np.linalg.norm(z.grad.numpy() - grad) <= REL * np.linalg.norm(grad)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("alpha", "beta", "tau"), [(1.0, 8.0, 4.0), (1.0, 0.5, 1.0), (9.0, 72.0, 2.0)])
def test_dkd_matches_numpy(case, alpha, beta, tau):
    z_s, z_t, y = CASES[case]
    check(lambda z: dkd_loss(z, z_t, y, alpha, beta, tau),
          lambda z: ref.dkd(z, z_t.numpy(), y.numpy(), alpha, beta, tau), z_s)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("alpha", "beta", "tau"), [(1.0, 8.0, 4.0), (9.0, 72.0, 2.0)])
def test_dkd_with_standardization_matches_numpy(case, alpha, beta, tau):
    z_s, z_t, y = CASES[case]
    method = DKD(alpha, beta, tau, warmup=0, ls=True)
    check(lambda z: method(z, z_t, BatchContext(targets=y)),
          lambda z: ref.with_standardization(ref.dkd, z, z_t.numpy(), y.numpy(), alpha, beta, tau), z_s)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_kd_with_and_without_standardization_matches_numpy(case, tau):
    z_s, z_t, _ = CASES[case]
    check(lambda z: kl_kd_loss(z, z_t, tau), lambda z: ref.kd(z, z_t.numpy(), tau), z_s)
    check(lambda z: KLDivKD(tau, ls=True)(z, z_t),
          lambda z: ref.with_standardization(ref.kd, z, z_t.numpy(), tau), z_s)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_dist_with_standardization_matches_numpy(case, tau):
    z_s, z_t, _ = CASES[case]
    check(lambda z: DISTLoss(1.0, 2.0, tau, ls=True)(z, z_t),
          lambda z: ref.with_standardization(lambda s, t: numpy_dist(s, t, 1.0, 2.0, tau), z, z_t.numpy()), z_s)


@pytest.mark.parametrize("case", sorted(CASES))
def test_standardize_matches_numpy_and_its_gradient(case):
    z_s = CASES[case][1]
    weights = random_logits(seed=8)  # L = sum(w * standardize(z)): d L / d y = w
    check(lambda z: (weights * standardize(z)).sum(),
          lambda z: ((weights.numpy() * ref.standardize(z)).sum(), ref.standardize_backward(z, weights.numpy())), z_s)


def test_standardize_is_the_authors_formula():
    """Mean 0 and unbiased std 1 - 1e-7 relative (the eps is added to the std, not to the variance)."""
    z = random_logits(4, 10, seed=9)
    y = standardize(z)
    torch.testing.assert_close(y.mean(1), torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)
    std = z.std(1)
    torch.testing.assert_close(y.std(1), std / (std + 1e-7))
    assert not torch.allclose(y.std(1, unbiased=False), torch.ones(4, dtype=torch.float64))  # ddof 1, not 0
    tiny = 1e-6 * z  # std 3e-6: the 1e-7 added to it shows (3 %)
    expected = (tiny - tiny.mean(1, keepdim=True)) / (1e-7 + tiny.std(1, keepdim=True))
    torch.testing.assert_close(standardize(tiny), expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(standardize(tiny).numpy(), ref.standardize(tiny.numpy()), rtol=1e-12)
    assert standardize(tiny).std(1).max() < 0.98
    dense = random_logits(2 * 3 * 5, 7, seed=10).reshape(2, 5, 3, 7).permute(0, 3, 1, 2)  # (N, C, H, W)
    per_pixel = standardize(dense).permute(0, 2, 3, 1).reshape(-1, 7)
    torch.testing.assert_close(per_pixel, standardize(dense.permute(0, 2, 3, 1).reshape(-1, 7)))


def test_dkd_gradcheck_with_standardization():
    z_s, z_t, y = random_logits(6, 5, seed=11).requires_grad_(), random_logits(6, 5, seed=12), targets(6, 5)
    method = DKD(1.0, 8.0, 2.0, warmup=0, ls=True)
    assert torch.autograd.gradcheck(lambda z: method(z, z_t, BatchContext(targets=y)), (z_s,))


def test_dkd_target_class_masking():
    """The non-target term ignores the target logit entirely; the target term sees only p_target."""
    z_s, z_t, y = random_logits(8, 10, seed=13), random_logits(8, 10, seed=14), targets(8, 10)
    nckd = dkd_loss(z_s, z_t, y, alpha=0.0, beta=1.0, tau=4.0)
    moved = z_t.clone()
    moved[torch.arange(8), y] += 5.0  # the teacher's target logit changes: NCKD does not
    torch.testing.assert_close(dkd_loss(z_s, moved, y, alpha=0.0, beta=1.0, tau=4.0), nckd)
    assert dkd_loss(z_s, moved, y, alpha=1.0, beta=0.0, tau=4.0) != dkd_loss(z_s, z_t, y, alpha=1.0, beta=0.0, tau=4.0)
    assert float(dkd_loss(z_t, z_t, y, 1.0, 8.0, 4.0)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("epoch", "warmup", "factor"), [
    (0, 20, 1 / 20), (1, 20, 2 / 20), (9, 20, 0.5), (18, 20, 19 / 20), (19, 20, 1.0), (20, 20, 1.0), (239, 20, 1.0),
    (0, 1, 1.0), (5, 1, 1.0), (0, 0, 1.0), (0, 5, 0.2), (3, 5, 0.8),
])
def test_dkd_warmup_factor(epoch, warmup, factor):
    """mdistiller's min(epoch / WARMUP, 1) with its epochs counted from 1: this trainer's epoch e is their e + 1."""
    z_s, z_t, y = random_logits(8, 10, seed=15), random_logits(8, 10, seed=16), targets(8, 10)
    method = DKD(1.0, 8.0, 4.0, warmup=warmup)
    loss = method(z_s, z_t, BatchContext(targets=y, epoch=epoch))
    assert loss.item() == pytest.approx(factor * dkd_loss(z_s, z_t, y, 1.0, 8.0, 4.0).item(), rel=1e-12)


def test_registered_dkd_defaults_are_mdistillers():
    method = build_kd_loss("dkd")
    assert (method.alpha, method.beta, method.tau, method.warmup, method.ls) == (1.0, 8.0, 4.0, 20, False)
    imagenet = build_kd_loss("dkd", beta=0.5, tau=1.0, warmup=1)
    assert (imagenet.beta, imagenet.tau, imagenet.warmup) == (0.5, 1.0, 1)
    assert build_kd_loss("dkdt2", ls=1).tau == 2.0 and build_kd_loss("dkdt2", ls=1).ls is True


def test_low_precision_dkd_computes_in_float32():
    z_s, z_t, y = random_logits(8, 10, seed=17), random_logits(8, 10, seed=18), targets(8, 10)
    loss = dkd_loss(z_s.half(), z_t.half(), y)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, dkd_loss(z_s.half().float(), z_t.half().float(), y))


def test_dkd_bad_inputs_are_one_line_errors():
    z, y = random_logits(4, 5, seed=19), targets(4, 5)
    with pytest.raises(ValueError, match="needs the batch's class targets"):
        DKD()(z, z)
    with pytest.raises(ValueError, match="needs the batch's class targets"):
        DKD()(z, z, BatchContext(epoch=3))
    with pytest.raises(ValueError, match="soft targets"):
        DKD()(z, z, BatchContext(targets=torch.softmax(z, 1)))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        dkd_loss(z.reshape(4, 5, 1, 1), z.reshape(4, 5, 1, 1), y)
    with pytest.raises(ValueError, match="same shape"):
        dkd_loss(z, z[:, :4], y)
    for bad in ({"tau": 0.0}, {"warmup": -1}):
        with pytest.raises(ValueError):
            DKD(**bad)
    with pytest.raises(ValueError, match="sigmoid"):
        dist_loss(z, z, probs="sigmoid", ls=True)
