"""The KD methods by name, and the one ``kd`` configuration every task builds its method from.

Registered methods (:data:`KD_METHODS`), with their defaults:

- ``kd``: KL divergence, T=4 (Hinton et al.); ``ls`` (logit standardisation)
- ``dkd``: decoupled KD, alpha=1, beta=8, T=4, warm-up 20 epochs (Zhao et al., mdistiller); ``ls``
- ``dist``: DIST, beta=gamma=tau=1 (the paper); ``ls``
- ``dist_sigmoid``: the paper's RetinaNet DIST (element-wise sigmoid); ``dist_anchor``: this project's
  per-anchor alternative for sigmoid classifiers
- ``mse``: last-stage feature MSE through a 1x1 aligner

A method is an ``nn.Module`` called ``method(student_outputs, teacher_outputs[, ctx])`` that returns a
loss or a dict of named losses; it receives the batch's :class:`~distkd.context.BatchContext` when its
``forward`` has a ``ctx`` parameter. Class attributes say what it accepts: ``inputs`` (``"logits"``
or ``"features"``), ``dense`` (``False``: ``(N, C)`` logits only; default ``True``, per-pixel
logits ``(N, C, H, W)`` too) and ``needs_targets`` (default ``False``). A new method is one class and
one ``KD_METHODS.register("name")`` line (here or in your own code); every task then builds it.

The ``kd`` configuration (:func:`kd_config` -> :class:`KDConfig`): a name (``NAMEtN`` / ``NAME_tN``,
the paper's ``kdt4``, ``dist_t4``, set ``tau=N``; ``N`` may be a decimal), a weight, and the method's
keyword options (``tau``, ``beta``, ``gamma`` and its own keys, e.g. DKD's ``alpha``, ``warmup``,
``ls``), parsed, defaulted from the method's signature and validated here, once, for every task.
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

from distkd.context import BatchContext
from distkd.losses.dist_kd import DISTLoss
from distkd.losses.dist_variants import PerAnchorDIST, SigmoidDIST
from distkd.losses.dkd import DKD
from distkd.losses.feature_mse import FeatureMSE
from distkd.losses.kl_kd import KLDivKD
from distkd.registry import Registry

KD_METHODS = Registry("KD method")
KD_METHODS.register("kd")(KLDivKD)
KD_METHODS.register("dkd")(DKD)
KD_METHODS.register("dist")(DISTLoss)
KD_METHODS.register("dist_sigmoid")(SigmoidDIST)
KD_METHODS.register("dist_anchor")(PerAnchorDIST)
KD_METHODS.register("mse")(FeatureMSE)

_WITH_TAU = re.compile(r"(?P<method>.+?)_?t(?P<tau>\d+(?:\.\d+)?)")


def valid_names() -> str:
    return ", ".join(KD_METHODS.names()) + " (NAMEtN / NAME_tN set the temperature, e.g. kdt4, dist_t4)"


def _parameters(method: str) -> dict[str, inspect.Parameter]:
    """The keyword options of a registered method (its constructor's named parameters)."""
    params = inspect.signature(KD_METHODS.get(method)).parameters
    return {k: p for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _default_tau(method: str) -> dict[str, float]:
    tau = _parameters(method).get("tau")
    return {} if tau is None or tau.default is inspect.Parameter.empty else {"tau": float(tau.default)}


def parse_kd_name(name: str) -> tuple[str, dict[str, Any]]:
    """``'dist_t4'`` -> ``('dist', {'tau': 4.0})``, ``'kd'`` -> ``('kd', {'tau': 4.0})`` (a method's
    own default temperature is spelled out, so equal settings compare equal); unknown names raise
    ``ValueError`` listing the close matches and the valid names."""
    if name in KD_METHODS:
        return name, _default_tau(name)
    match = _WITH_TAU.fullmatch(name)
    if match and match["method"] in KD_METHODS and "tau" in _parameters(match["method"]):
        return match["method"], {"tau": float(match["tau"])}
    candidates = [name] + ([match["method"]] if match else [])
    close = list(dict.fromkeys(c for n in candidates
                               for c in difflib.get_close_matches(n, KD_METHODS.names(), n=3, cutoff=0.6)))
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown --kd method '{name}'.{hint} Valid names: {valid_names()}")


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    """A config value in its default's type (YAML / ``key=value`` give ``ls=1``, ``warmup=20.0``)."""
    where = f"--kd-loss-kwargs {key}={value!r} for '{method}'"
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        if value in (0, 1):
            return bool(value)
        raise ValueError(f"{where}: expected 0/1 or true/false")
    if isinstance(default, int) and not isinstance(value, bool) and isinstance(value, (int, float)):
        if float(value).is_integer():
            return int(value)
        raise ValueError(f"{where}: expected a whole number")
    if isinstance(default, float) and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a number") from None
    return value


def _unknown_option(method: str, key: str, known: Mapping[str, Any]) -> str:
    cls = KD_METHODS.get(method)
    if key == "ls" and getattr(cls, "inputs", "logits") == "features":
        return (f"--kd-loss-kwargs ls: logit standardisation standardises logits over the classes; "
                f"'{method}' distils feature maps")
    close = difflib.get_close_matches(key, list(known), n=2, cutoff=0.6)
    if key.lower() in ("t", "temp", "temperature") and "tau" in known:
        close = ["tau"]
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    options = ", ".join(sorted(known)) or "none"
    return f"bad --kd-loss-kwargs: method '{method}' has no option '{key}'{hint}; its options: {options}"


@dataclass(frozen=True)
class KDConfig:
    """A KD method by registered name, its loss weight and every keyword option (defaults filled in).

    Built by :func:`kd_config` (validated there); :meth:`build` makes the method's module."""

    method: str
    weight: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tau(self) -> float | None:
        return self.options.get("tau")

    @property
    def beta(self) -> float | None:
        return self.options.get("beta")

    @property
    def gamma(self) -> float | None:
        return self.options.get("gamma")

    @property
    def inputs(self) -> str:
        return getattr(KD_METHODS.get(self.method), "inputs", "logits")

    @property
    def dense(self) -> bool:
        return bool(getattr(KD_METHODS.get(self.method), "dense", True))

    @property
    def needs_targets(self) -> bool:
        return bool(getattr(KD_METHODS.get(self.method), "needs_targets", False))

    def build(self) -> nn.Module:
        return KD_METHODS.get(self.method)(**self.options)

    def refusal(self, task: str, *, dense: bool = False, targets: bool = True, features: bool = True,
                subject: str | None = None) -> str | None:
        """Why ``task`` cannot run this method (one line), or None. ``dense``: the task's KD outputs are
        per-pixel logits ``(N, C, H, W)``; ``targets``: it gives class indices per sample;
        ``features``: it can give feature maps. ``subject``: how the method was named (``--kd NAME``)."""
        subject = subject or f"--kd {self.method}"
        if self.inputs == "features" and not features:
            return f"{subject} distils feature maps; {task} gives its KD loss logits only"
        if dense and not self.dense:
            return f"{subject} takes (N, C) logits; {task} distils per-pixel logits (N, C, H, W)"
        if self.needs_targets and not targets:
            return f"{subject} needs one class target per sample, which {task} does not give its KD loss"
        return None

    def __str__(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.method}({options}) x {self.weight:g}"


def kd_config(name: str, options: Mapping[str, Any] | None = None, weight: float = 1.0) -> KDConfig:
    """Parse, default and validate a ``kd`` configuration: ``name`` (``dist``, ``dist_t4``, ``dkd``, ...),
    ``options`` (``--kd-loss-kwargs``, which win over the name's temperature) and ``weight``. Bad
    input raises ``ValueError`` with one line: an unknown method (close matches listed), an option
    the method lacks, a bad value."""
    method, named = parse_kd_name(name)
    params = _parameters(method)
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    given = dict(options or {})
    for key in given:
        if key not in params:
            raise ValueError(_unknown_option(method, key, params))
    merged = {**defaults, **named}
    merged.update({k: _coerce(method, k, v, defaults.get(k)) for k, v in given.items()})
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"KD weight must be a number, got {weight!r}") from None
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"KD weight must be a finite number >= 0, got {weight}")
    config = KDConfig(method, weight, MappingProxyType(merged))
    try:
        config.build()  # the method's own checks (tau > 0, ...)
    except TypeError as err:
        raise ValueError(f"bad --kd-loss-kwargs for '{name}': {err}") from None
    except ValueError as err:
        raise ValueError(f"--kd {name}: {err}") from None
    return config


def build_kd_loss(name: str, **overrides: Any) -> nn.Module:
    """Build the KD loss for a ``--kd`` name; ``overrides`` (``--kd-loss-kwargs``) win."""
    return kd_config(name, overrides).build()


def takes_context(method: nn.Module) -> bool:
    """True when ``method.forward`` has a ``ctx`` parameter (it is then given the batch's context)."""
    return "ctx" in inspect.signature(method.forward).parameters


def apply_kd(method: nn.Module, student_outputs: Any, teacher_outputs: Any, ctx: BatchContext | None,
             with_context: bool | None = None):
    """``method(student, teacher[, ctx=ctx])``: the context only to methods that take one."""
    if with_context if with_context is not None else takes_context(method):
        return method(student_outputs, teacher_outputs, ctx=ctx)
    return method(student_outputs, teacher_outputs)
