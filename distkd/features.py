"""Capture a module's output by its dotted name (for feature-based KD), without editing models."""
from __future__ import annotations

from torch import Tensor, nn


class FeatureRecorder:
    """Keeps the latest output of ``model.get_submodule(name)`` through a forward hook."""

    def __init__(self, model: nn.Module, name: str) -> None:
        self.name = name
        self._output: Tensor | None = None
        self._handle = model.get_submodule(name).register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: object, output: Tensor) -> None:
        self._output = output

    def pop(self) -> Tensor:
        if self._output is None:
            raise RuntimeError(f"no output was recorded from '{self.name}' (was the model run?)")
        out, self._output = self._output, None
        return out

    def remove(self) -> None:
        self._handle.remove()


def last_stage_name(model: nn.Module) -> str:
    """Dotted name of the module whose output is the model's last feature map (before pooling).

    Models may declare it as a ``last_stage`` attribute; torchvision ResNets use ``layer4``,
    torchvision MobileNets ``features``, timm models the last entry of ``feature_info``.
    """
    declared = getattr(model, "last_stage", None)
    if isinstance(declared, str):
        return declared
    info = getattr(model, "feature_info", None)
    if info is not None:
        entries = info.get_dicts() if hasattr(info, "get_dicts") else info
        return entries[-1]["module"]
    names = dict(model.named_children())
    for candidate in ("layer4", "features", "stages", "layer3"):
        if candidate in names:
            return candidate
    raise ValueError(
        f"cannot tell the last feature stage of {type(model).__name__}: give the model a "
        "'last_stage' attribute naming that submodule"
    )
