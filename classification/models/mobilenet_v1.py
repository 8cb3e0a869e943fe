"""MobileNet V1 (width 1.0) for ImageNet, the student of the paper's ImageNet table (~4.2M params).

A 3x3 stride-2 conv (32 channels) and 13 depthwise-separable units
``[dw3x3 -> BN-ReLU -> pw1x1 -> BN-ReLU]`` to 1024 channels (total stride 32), global average
pooling and ``Linear(1024, num_classes)``. Layer names follow the common KD implementations
(``model.<i>``, ``fc``).
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from classification.models.factory import MODELS

# (output channels, stride) of the 13 depthwise-separable units.
UNITS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
         (512, 1), (1024, 2), (1024, 1)]


def conv_bn(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def conv_dw(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 (stride) -> BN-ReLU -> pointwise 1x1 -> BN-ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    last_stage = "model"

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers, channels = [conv_bn(3, 32, 2)], 32
        for out_channels, stride in UNITS:
            layers.append(conv_dw(channels, out_channels, stride))
            channels = out_channels
        self.model = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Conv: He-normal (fan-out); BN: 1, 0; FC: ``U(-1/sqrt(num_classes), 1/sqrt(num_classes))``, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(self.model(x)).flatten(1))


@MODELS.register("mobilenet_v1")
def mobilenet_v1(num_classes: int = 1000, **kwargs) -> nn.Module:
    return MobileNetV1(num_classes, **kwargs)
