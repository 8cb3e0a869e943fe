"""CIFAR ResNets of the distillation benchmark (CRD / RepDistiller): depth ``6n+2``, three stages.

A 3x3 stem conv, then three stages of ``n`` basic blocks at 32x32, 16x16 and 8x8, global
average pooling and a linear classifier. ``resnetN`` uses widths (stem, stages) = 16, (16, 32, 64);
the ``x4`` variants use 32, (64, 128, 256).
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from classification.models.cifar._init import init_conv_kaiming_
from classification.models.factory import MODELS


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; 1x1 conv + BN shortcut on shape change."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class CifarResNet(nn.Module):
    """ResNet-``depth`` for 32x32 inputs; ``widths`` = (stem, stage1, stage2, stage3)."""

    last_stage = "layer3"

    def __init__(self, depth: int, widths: Sequence[int], num_classes: int = 100) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (8, 14, 20, 32, ...), got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.in_planes = widths[0]
        self.layer1 = self._make_layer(widths[1], blocks, stride=1)
        self.layer2 = self._make_layer(widths[2], blocks, stride=2)
        self.layer3 = self._make_layer(widths[3], blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        init_conv_kaiming_(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            layers.append(BasicBlock(self.in_planes, planes, stride if i == 0 else 1))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


_NARROW, _WIDE = (16, 16, 32, 64), (32, 64, 128, 256)


@MODELS.register("cifar_resnet8")
def resnet8(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(8, _NARROW, num_classes, **kwargs)


@MODELS.register("cifar_resnet14")
def resnet14(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(14, _NARROW, num_classes, **kwargs)


@MODELS.register("cifar_resnet20")
def resnet20(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(20, _NARROW, num_classes, **kwargs)


@MODELS.register("cifar_resnet32")
def resnet32(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(32, _NARROW, num_classes, **kwargs)


@MODELS.register("cifar_resnet44")
def resnet44(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(44, _NARROW, num_classes, **kwargs)


@MODELS.register("cifar_resnet56")
def resnet56(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(56, _NARROW, num_classes, **kwargs)


@MODELS.register("cifar_resnet110")
def resnet110(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(110, _NARROW, num_classes, **kwargs)


@MODELS.register("cifar_resnet8x4")
def resnet8x4(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(8, _WIDE, num_classes, **kwargs)


@MODELS.register("cifar_resnet32x4")
def resnet32x4(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarResNet(32, _WIDE, num_classes, **kwargs)
