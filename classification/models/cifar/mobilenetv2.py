"""MobileNetV2 for CIFAR of the distillation benchmark (``mobile_half``: expansion 6, width 0.5).

Stem 3x3 conv stride 2 (32 -> 16), seven stages of inverted residual blocks
(t, c, n, s) = (1,16,1,1), (T,24,2,1), (T,32,3,2), (T,64,4,2), (T,96,3,1), (T,160,3,2), (T,320,1,1)
with channels ``int(c * width)``, a 1x1 conv to 1280 channels, global average pooling, linear.
"""
from __future__ import annotations

from torch import Tensor, nn

from classification.models.cifar._init import init_conv_kaiming_, init_linear_normal_
from classification.models.factory import MODELS

# (channels, blocks, stride) per stage; the first stage has expansion 1, the others T.
STAGES = [(16, 1, 1), (24, 2, 1), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)]


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand -> BN-ReLU -> 3x3 depthwise -> BN-ReLU -> 1x1 project -> BN (+ x when shapes match)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class CifarMobileNetV2(nn.Module):
    """MobileNetV2 with expansion ``expansion`` (T) and width multiplier ``width``."""

    last_stage = "conv2"

    def __init__(self, expansion: int, width: float, num_classes: int = 100) -> None:
        super().__init__()
        channels = int(32 * width)
        self.conv1 = conv_bn_relu(3, channels, 3, stride=2)
        self.blocks = nn.ModuleList()
        for index, (c, n, s) in enumerate(STAGES):
            out_channels, t = int(c * width), 1 if index == 0 else expansion
            stage = []
            for i in range(n):
                stage.append(InvertedResidual(channels, out_channels, s if i == 0 else 1, t))
                channels = out_channels
            self.blocks.append(nn.Sequential(*stage))
        last_channels = int(1280 * width) if width > 1.0 else 1280
        self.conv2 = conv_bn_relu(channels, last_channels, 1, stride=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last_channels, num_classes))
        init_conv_kaiming_(self)
        init_linear_normal_(self, std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        x = self.conv2(x)
        return self.classifier(self.avgpool(x).flatten(1))


@MODELS.register("cifar_mobile_half")
def mobile_half(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarMobileNetV2(expansion=6, width=0.5, num_classes=num_classes, **kwargs)


MODELS.register("cifar_MobileNetV2")(mobile_half)
