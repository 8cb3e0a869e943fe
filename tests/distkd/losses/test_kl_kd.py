"""KL KD loss against a numpy computation, with the T^2 scaling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distkd.losses.kl_kd import KLDivKD, kl_kd_loss


def numpy_kl_kd(z_s: np.ndarray, z_t: np.ndarray, tau: float) -> float:
    """T^2 * mean over samples of sum_c p_t (log p_t - log p_s), p = softmax(z / T) on axis 1."""
    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z.astype(np.float64) / tau
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    log_s, log_t = log_softmax(z_s), log_softmax(z_t)
    kl = (np.exp(log_t) * (log_t - log_s)).sum(1)  # per sample (and per pixel)
    return tau**2 * kl.mean()


@pytest.mark.parametrize("shape", [(16, 10), (3, 5, 4, 2)])
@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_matches_numpy(shape, tau):
    gen = torch.Generator().manual_seed(0)
    z_s, z_t = 3 * torch.randn(shape, generator=gen), 3 * torch.randn(shape, generator=gen)
    expected = numpy_kl_kd(z_s.numpy(), z_t.numpy(), tau)
    assert kl_kd_loss(z_s, z_t, tau).item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert KLDivKD(tau)(z_s, z_t).item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_tau_squared_scaling():
    """At a high temperature the KL shrinks like 1/T^2, so T^2 * KL tends to a constant."""
    gen = torch.Generator().manual_seed(1)
    z_s, z_t = torch.randn(32, 10, generator=gen), torch.randn(32, 10, generator=gen)
    unscaled = {tau: kl_kd_loss(z_s, z_t, tau).item() / tau**2 for tau in (50.0, 100.0)}
    assert unscaled[50.0] / unscaled[100.0] == pytest.approx(4.0, rel=1e-2)
    assert kl_kd_loss(z_s, z_t, 100.0).item() == pytest.approx(kl_kd_loss(z_s, z_t, 50.0).item(), rel=1e-2)


def test_identical_logits_and_gradient_flow():
    z = torch.randn(8, 5)
    assert kl_kd_loss(z, z).abs().item() < 1e-6
    z_s = torch.randn(8, 5, requires_grad=True)
    kl_kd_loss(z_s, z).backward()
    assert torch.isfinite(z_s.grad).all() and z_s.grad.abs().sum() > 0


def test_low_precision_inputs_give_float32():
    z_s, z_t = torch.randn(8, 5).bfloat16(), torch.randn(8, 5).bfloat16()
    loss = kl_kd_loss(z_s, z_t)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_errors():
    with pytest.raises(ValueError, match="same shape"):
        kl_kd_loss(torch.randn(4, 5), torch.randn(4, 6))
    with pytest.raises(ValueError, match="temperature"):
        kl_kd_loss(torch.randn(4, 5), torch.randn(4, 5), tau=0)
    with pytest.raises(ValueError, match="temperature"):
        KLDivKD(tau=-1)
