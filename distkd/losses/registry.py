"""The KD methods by name (:data:`KD_METHODS`) and the one ``kd`` configuration every task builds from.

``kd`` (KL, T 4), ``dkd`` (alpha 1, beta 8, T 4, warm-up 20), ``dist`` (beta = gamma = tau = 1),
``mse`` (last-stage features); ``ls=1`` standardises the logits of kd, dkd, dist. ``NAMEtN`` /
``NAME_tN`` (the paper's ``kdt4``, ``dist_t4``) set ``tau=N``. A method is an ``nn.Module`` called
``method(student, teacher[, ctx])`` (``ctx``: :class:`~distkd.context.BatchContext`, given when its
``forward`` takes one) returning a loss or a dict of losses; class attributes say what it accepts:
``inputs`` ("logits" / "features"), ``dense`` (False: ``(N, C)`` only), ``needs_targets``. A new
method is one class and one ``KD_METHODS.register("name")``; every task then builds it by name.
"""
from __future__ import annotations

import difflib
import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from distkd.losses.dist_kd import DISTLoss
from distkd.losses.dkd import DKD
from distkd.losses.feature_mse import FeatureMSE
from distkd.losses.kl_kd import KLDivKD
from distkd.registry import Registry

KD_METHODS = Registry("KD method")
for _name, _cls in (("kd", KLDivKD), ("dkd", DKD), ("dist", DISTLoss), ("mse", FeatureMSE)):
    KD_METHODS.register(_name)(_cls)

_WITH_TAU = re.compile(r"(?P<method>.+?)_?t(?P<tau>\d+(?:\.\d+)?)")


def valid_names() -> str:
    return ", ".join(KD_METHODS.names()) + " (NAMEtN / NAME_tN set the temperature, e.g. kdt4, dist_t4)"


def _parameters(method: str) -> dict[str, inspect.Parameter]:
    params = inspect.signature(KD_METHODS.get(method)).parameters.values()
    return {p.name: p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def parse_kd_name(name: str) -> tuple[str, dict[str, Any]]:
    """``'dist_t4'`` -> ``('dist', {'tau': 4.0})``, ``'kd'`` -> ``('kd', {'tau': 4.0})`` (the default
    temperature spelled out); an unknown name raises ``ValueError`` listing close and valid names."""
    match = _WITH_TAU.fullmatch(name)
    if name in KD_METHODS:
        tau = _parameters(name).get("tau")
        return name, {} if tau is None or tau.default is tau.empty else {"tau": float(tau.default)}
    if match and match["method"] in KD_METHODS and "tau" in _parameters(match["method"]):
        return match["method"], {"tau": float(match["tau"])}
    close = {c for n in (name, match and match["method"]) if n for c in difflib.get_close_matches(n, KD_METHODS)}
    hint = f" Did you mean: {', '.join(sorted(close))}?" if close else ""
    raise ValueError(f"unknown --kd method '{name}'.{hint} Valid names: {valid_names()}")


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    """A value in its default's type (``key=value`` and YAML give ``ls=1``, ``warmup=20.0``)."""
    bad = f"--kd-loss-kwargs {key}={value!r} for '{method}': expected "
    if isinstance(default, bool):
        if str(value).lower() not in ("0", "1", "true", "false"):
            raise ValueError(bad + "0/1 or true/false")
        return str(value).lower() in ("1", "true")
    if isinstance(default, (int, float)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(bad + "a number") from None
        if isinstance(default, int) and not number.is_integer():
            raise ValueError(bad + "a whole number")
        return int(number) if isinstance(default, int) else number
    return value


@dataclass(frozen=True)
class KDConfig:
    """A method by registered name, its loss weight and all its options (defaults filled in)."""

    method: str
    weight: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict)
    tau = property(lambda self: self.options.get("tau"))  # None where the method has no such option
    beta = property(lambda self: self.options.get("beta"))
    gamma = property(lambda self: self.options.get("gamma"))

    def accepts(self, name: str, default: Any) -> Any:  # what its class declares: inputs, dense, needs_targets
        return getattr(KD_METHODS.get(self.method), name, default)

    def build(self) -> nn.Module:
        return KD_METHODS.get(self.method)(**self.options)

    def refusal(self, task: str, *, dense: bool = False, targets: bool = True, features: bool = True,
                subject: str | None = None) -> str | None:
        """Why ``task`` (giving per-pixel logits, class targets, feature maps or not) cannot run it, or None."""
        subject = subject or f"--kd {self.method}"
        if self.accepts("inputs", "logits") == "features" and not features:
            return f"{subject} distils feature maps; {task} gives its KD loss logits only"
        if dense and not self.accepts("dense", True):
            return f"{subject} takes (N, C) logits; {task} distils per-pixel logits (N, C, H, W)"
        if self.accepts("needs_targets", False) and not targets:
            return f"{subject} needs one class target per sample, which {task} does not give its KD loss"
        return None

    def __str__(self) -> str:
        return f"{self.method}({', '.join(f'{k}={v}' for k, v in self.options.items())}) x {self.weight:g}"


def kd_config(name: str, options: Mapping[str, Any] | None = None, weight: float = 1.0) -> KDConfig:
    """Parse, default and validate: ``name`` (``dist_t4``, ``dkd``, ...), ``options`` (``--kd-loss-kwargs``,
    winning over the name's temperature), ``weight``. Bad input raises ``ValueError``, one line."""
    method, merged = parse_kd_name(name)
    params = _parameters(method)
    for key, value in (options or {}).items():
        if key not in params:
            close = ["tau"] if key.lower() in ("t", "temp", "temperature") else difflib.get_close_matches(key, params)
            if key == "ls" and getattr(KD_METHODS.get(method), "inputs", "logits") == "features":
                raise ValueError(f"--kd-loss-kwargs ls: logit standardisation standardises logits over the classes; "
                                 f"'{method}' distils feature maps")
            raise ValueError(f"bad --kd-loss-kwargs: method '{method}' has no option '{key}'"
                             + (f" (did you mean {' or '.join(close)}?)" if close else "")
                             + f"; its options: {', '.join(sorted(params)) or 'none'}")
        merged[key] = _coerce(method, key, value, params[key].default)
    defaults = {k: p.default for k, p in params.items() if p.default is not p.empty}
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        weight = math.nan
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"KD weight must be a finite number >= 0, got {weight!r}")
    config = KDConfig(method, weight, MappingProxyType({**defaults, **merged}))
    try:
        config.build()  # the method's own checks (tau > 0, ...)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--kd {name}: {err}") from None
    return config


def build_kd_loss(name: str, **overrides: Any) -> nn.Module:
    """The KD loss of a ``--kd`` name; ``overrides`` (``--kd-loss-kwargs``) win."""
    return kd_config(name, overrides).build()


def takes_context(method: nn.Module) -> bool:
    return "ctx" in inspect.signature(method.forward).parameters


def apply_kd(method: nn.Module, student: Any, teacher: Any, ctx: Any, with_context: bool | None = None):
    """``method(student, teacher[, ctx=ctx])``: the context only to methods that take one."""
    if takes_context(method) if with_context is None else with_context:
        return method(student, teacher, ctx=ctx)
    return method(student, teacher)
