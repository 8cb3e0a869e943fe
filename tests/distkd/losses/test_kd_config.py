"""The one ``kd`` configuration: parsed, defaulted and validated in one place; one-line errors."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from distkd.losses import DKD, DISTLoss, KDConfig, KLDivKD, kd_config


def test_defaults_are_filled_in_from_the_method():
    dist = kd_config("dist")
    assert (dist.method, dist.weight, dist.tau, dist.beta, dist.gamma) == ("dist", 1.0, 1.0, 1.0, 1.0)
    assert dict(dist.options) == {"beta": 1.0, "gamma": 1.0, "tau": 1.0, "eps": 1e-8, "probs": "softmax", "ls": False}
    dkd = kd_config("dkd", weight=1.0)
    assert dict(dkd.options) == {"alpha": 1.0, "beta": 8.0, "tau": 4.0, "warmup": 20, "ls": False}
    assert dkd.gamma is None and kd_config("mse").tau is None


def test_the_papers_names_keep_working():
    assert kd_config("dist_t4").tau == 4.0 and kd_config("kdt4").tau == 4.0 and kd_config("kd").tau == 4.0
    assert kd_config("dist_t4") == kd_config("dist", {"tau": 4})  # equal settings compare equal
    assert isinstance(kd_config("kdt4").build(), KLDivKD) and isinstance(kd_config("dist_t4").build(), DISTLoss)


def test_options_are_coerced_and_override_the_name():
    config = kd_config("dkd_t4", {"tau": 2, "beta": "72", "warmup": 20.0, "ls": 1}, weight="2")
    assert (config.tau, config.beta, config.options["warmup"], config.options["ls"], config.weight) == (
        2.0, 72.0, 20, True, 2.0)
    method = config.build()
    assert isinstance(method, DKD) and (method.tau, method.beta, method.warmup, method.ls) == (2.0, 72.0, 20, True)
    assert kd_config("dist", {"ls": "true"}).build().ls is True
    assert kd_config("kd", {"ls": False}).build().ls is False


def test_the_configuration_is_frozen():
    config = kd_config("dist")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.weight = 3.0
    with pytest.raises(TypeError):
        config.options["tau"] = 3.0


@pytest.mark.parametrize(("name", "close"), [("dkdd", "dkd"), ("dsit", "dist"), ("distt", "dist"),
                                              ("dk_t4", "dkd")])
def test_unknown_method_lists_close_matches(name, close):
    with pytest.raises(ValueError) as err:
        kd_config(name)
    message = str(err.value)
    assert "\n" not in message and f"Did you mean: {close}" in message.replace(f"{close},", close)
    assert "Valid names:" in message and "dkd" in message


@pytest.mark.parametrize(("name", "key"), [("dist", "alpha"), ("kd", "gamma"), ("dkd", "gamma"), ("mse", "tau")])
def test_a_key_the_method_lacks(name, key):
    with pytest.raises(ValueError, match=f"method '{name}' has no option '{key}'; its options: ") as err:
        kd_config(name, {key: 1})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="did you mean tau"):
        kd_config("dist", {"temp": 2})


def test_standardisation_on_features():
    with pytest.raises(ValueError, match="logit standardisation standardises logits over the classes; 'mse' distils "
                                         "feature maps"):
        kd_config("mse", {"ls": 1})


@pytest.mark.parametrize(("options", "message"), [
    ({"ls": 2}, "expected 0/1 or true/false"), ({"tau": 0}, "tau must be > 0"), ({"tau": "hot"}, "expected a number"),
])
def test_bad_values(options, message):
    with pytest.raises(ValueError, match=message):
        kd_config("dist", options)
    with pytest.raises(ValueError, match="whole number"):
        kd_config("dkd", {"warmup": 2.5})
    for weight in (-1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="KD weight"):
            kd_config("dist", weight=weight)


def test_refusals_say_why_a_task_cannot_run_a_method():
    assert kd_config("dist").refusal("segmentation", dense=True, targets=False, features=False) is None
    assert kd_config("kd", {"ls": 1}).refusal("segmentation", dense=True, targets=False, features=False) is None
    dkd = kd_config("dkd")
    assert dkd.refusal("classification") is None
    assert dkd.refusal("segmentation", dense=True, targets=False) == (
        "--kd dkd takes (N, C) logits; segmentation distils per-pixel logits (N, C, H, W)")
    assert dkd.refusal("detection", targets=False) == (
        "--kd dkd needs one class target per sample, which detection does not give its KD loss")
    assert kd_config("mse").refusal("segmentation", dense=True, features=False) == (
        "--kd mse distils feature maps; segmentation gives its KD loss logits only")


def test_a_method_outside_the_package(monkeypatch):
    """One class and one registration: parsed, defaulted, validated and built like the others."""
    from distkd.losses.registry import KD_METHODS

    class Scaled(torch.nn.Module):
        dense = False

        def __init__(self, tau: float = 2.0, scale: float = 1.0) -> None:
            super().__init__()
            self.tau, self.scale = tau, scale

        def forward(self, z_s, z_t, ctx=None):
            return {"a": self.scale * (z_s - z_t).pow(2).mean(), "b": ctx.epoch * z_s.sum() * 0}

    monkeypatch.setattr(KD_METHODS, "_items", {**KD_METHODS._items})
    KD_METHODS.register("scaled")(Scaled)
    config = kd_config("scaled_t3", {"scale": 2})
    assert isinstance(config, KDConfig) and dict(config.options) == {"tau": 3.0, "scale": 2.0}
    assert "takes (N, C) logits" in config.refusal("segmentation", dense=True)
    with pytest.raises(ValueError, match="has no option 'beta'"):
        kd_config("scaled", {"beta": 1})
