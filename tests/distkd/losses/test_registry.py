"""The ``--kd`` method names: parsing, defaults, overrides and errors."""
from __future__ import annotations

import pytest
import torch

from distkd.losses import DISTLoss, FeatureMSE, KLDivKD, build_kd_loss, parse_kd_name
from distkd.losses.registry import KD_METHODS


@pytest.mark.parametrize(
    ("name", "method", "kwargs"),
    [("kd", "kd", {"tau": 4.0}), ("kdt2", "kd", {"tau": 2.0}), ("kdt1.5", "kd", {"tau": 1.5}),
     ("dist", "dist", {"tau": 1.0}), ("dist_t4", "dist", {"tau": 4.0}), ("dist_t0.5", "dist", {"tau": 0.5}),
     ("mse", "mse", {})],
)
def test_parse(name, method, kwargs):
    assert parse_kd_name(name) == (method, kwargs)


def test_built_losses_and_their_defaults():
    kd = build_kd_loss("kd")
    assert isinstance(kd, KLDivKD) and kd.tau == 4.0
    assert build_kd_loss("kdt2").tau == 2.0
    dist = build_kd_loss("dist")
    assert isinstance(dist, DISTLoss) and (dist.beta, dist.gamma, dist.tau) == (1.0, 1.0, 1.0)
    assert build_kd_loss("dist_t4").tau == 4.0
    assert isinstance(build_kd_loss("mse"), FeatureMSE)
    assert dist.inputs == "logits" and build_kd_loss("mse").inputs == "features"


def test_kwargs_override_the_name():
    loss = build_kd_loss("dist_t4", tau=2.0, beta=2.0, gamma=0.5)
    assert (loss.beta, loss.gamma, loss.tau) == (2.0, 0.5, 2.0)
    assert build_kd_loss("kd", tau=1.0).tau == 1.0


def test_bad_kwargs_raise_value_error():
    with pytest.raises(ValueError, match="kd-loss-kwargs"):
        build_kd_loss("dist", alpha=3.0)


@pytest.mark.parametrize("name", ["", "dist4", "dist_t", "kdt", "KD", "dist_tx", "kl", "dist_t4 ", "mset2"])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError) as err:
        build_kd_loss(name)
    for valid in ("kd", "dist", "mse", "NAMEtN", "kdt4", "dist_t4"):
        assert valid in str(err.value)


class ToyKD(torch.nn.Module):
    """A method defined outside the package: one class and one registration."""

    inputs = "logits"

    def __init__(self, tau: float = 2.0, scale: float = 1.0) -> None:
        super().__init__()
        self.tau, self.scale = tau, scale

    def forward(self, z_s, z_t):
        return self.scale * (z_s / self.tau - z_t / self.tau).pow(2).mean()


def test_a_newly_registered_method_reaches_every_kd_name(monkeypatch):
    monkeypatch.setattr(KD_METHODS, "_items", {**KD_METHODS._items})  # the registration is undone afterwards
    KD_METHODS.register("toy")(ToyKD)
    assert parse_kd_name("toy") == ("toy", {"tau": 2.0})
    assert build_kd_loss("toy_t8").tau == 8.0 and build_kd_loss("toyt3", scale=0.5).scale == 0.5
    assert "toy" in str(pytest.raises(ValueError, build_kd_loss, "toyy").value)
