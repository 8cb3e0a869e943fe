"""The ``--kd`` method names: every method registered in :data:`KD_METHODS`, plus a temperature.

``NAME`` builds the registered method with its defaults (``kd``: KL, T=4; ``dist``: DIST,
beta=gamma=tau=1; ``mse``: last-stage feature MSE through a 1x1 aligner); ``NAMEtN`` or
``NAME_tN`` (the paper's ``kdt4``, ``dist_t4``) sets ``tau=N``; ``N`` may be a decimal. A new method
is one file and one ``KD_METHODS.register("name")`` line below (or in your own code).
"""
from __future__ import annotations

import inspect
import re
from typing import Any

from torch import nn

from distkd.losses.dist_kd import DISTLoss
from distkd.losses.feature_mse import FeatureMSE
from distkd.losses.kl_kd import KLDivKD
from distkd.registry import Registry

KD_METHODS = Registry("KD method")
KD_METHODS.register("kd")(KLDivKD)
KD_METHODS.register("dist")(DISTLoss)
KD_METHODS.register("mse")(FeatureMSE)

_WITH_TAU = re.compile(r"(?P<method>.+?)_?t(?P<tau>\d+(?:\.\d+)?)")


def valid_names() -> str:
    return ", ".join(KD_METHODS.names()) + " (NAMEtN / NAME_tN set the temperature, e.g. kdt4, dist_t4)"


def _tau(method: str) -> inspect.Parameter | None:
    return inspect.signature(KD_METHODS.get(method)).parameters.get("tau")


def parse_kd_name(name: str) -> tuple[str, dict[str, Any]]:
    """``'dist_t4'`` -> ``('dist', {'tau': 4.0})``, ``'kd'`` -> ``('kd', {'tau': 4.0})`` (a method's
    own default temperature is spelled out, so equal settings compare equal); unknown names raise
    ``ValueError``."""
    if name in KD_METHODS:
        tau = _tau(name)
        return name, ({} if tau is None or tau.default is inspect.Parameter.empty else {"tau": float(tau.default)})
    match = _WITH_TAU.fullmatch(name)
    if match and match["method"] in KD_METHODS and _tau(match["method"]) is not None:
        return match["method"], {"tau": float(match["tau"])}
    raise ValueError(f"unknown --kd method '{name}'. Valid names: {valid_names()}")


def build_kd_loss(name: str, **overrides: Any) -> nn.Module:
    """Build the KD loss for a ``--kd`` name; ``overrides`` (``--kd-loss-kwargs``) win."""
    method, kwargs = parse_kd_name(name)
    kwargs.update(overrides)
    try:
        return KD_METHODS.get(method)(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad --kd-loss-kwargs for '{name}': {err}") from None
