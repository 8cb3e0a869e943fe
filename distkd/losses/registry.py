"""The ``--kd`` method names of the paper's command line.

``kd`` (KL, T=4), ``kdtN`` (KL with T=N), ``dist`` (DIST, beta=gamma=1, tau=1), ``dist_tN`` (DIST
with tau=N), ``mse`` (last-stage feature MSE through a 1x1 aligner). ``N`` may be a decimal.
"""
from __future__ import annotations

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

_NUM = r"(\d+(?:\.\d+)?)"
_PATTERNS = (
    (re.compile(rf"kdt{_NUM}"), "kd", "tau"),
    (re.compile(rf"dist_t{_NUM}"), "dist", "tau"),
)
VALID_NAMES = "kd, kdtN (e.g. kdt4), dist, dist_tN (e.g. dist_t4), mse"


def parse_kd_name(name: str) -> tuple[str, dict[str, Any]]:
    """``'dist_t4'`` -> ``('dist', {'tau': 4.0})``; unknown names raise ``ValueError``."""
    if name in ("kd", "dist", "mse"):
        return name, ({"tau": 4.0} if name == "kd" else {})
    for pattern, method, key in _PATTERNS:
        match = pattern.fullmatch(name)
        if match:
            return method, {key: float(match.group(1))}
    raise ValueError(f"unknown --kd method '{name}'. Valid names: {VALID_NAMES}")


def build_kd_loss(name: str, **overrides: Any) -> nn.Module:
    """Build the KD loss for a ``--kd`` name; ``overrides`` (``--kd-loss-kwargs``) win."""
    method, kwargs = parse_kd_name(name)
    kwargs.update(overrides)
    try:
        return KD_METHODS.get(method)(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad --kd-loss-kwargs for '{name}': {err}") from None
