"""Weight initialisation shared by the CIFAR benchmark models."""
from __future__ import annotations

from torch import nn


def init_conv_kaiming_(model: nn.Module) -> None:
    """He-normal conv weights, ``std = sqrt(2 / (k*k*C_out))`` (fan-out), zero conv biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_linear_normal_(model: nn.Module, std: float = 0.01) -> None:
    """Classifier weights ``N(0, std^2)`` and zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
