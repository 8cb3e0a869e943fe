"""VGG-BN for CIFAR of the distillation benchmark: five conv blocks, no FC layers but the classifier.

Blocks 0-2 are each followed by 2x2 max pooling (32 -> 16 -> 8 -> 4); block 4 runs at 4x4 for
32x32 inputs (``pool3`` is applied only to 64x64 inputs, as the benchmark does), then global
average pooling and ``Linear(512, num_classes)``. Names: vgg8/11/13/16/19 (configs S/A/B/D/E).
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from classification.models.cifar._init import init_conv_kaiming_, init_linear_normal_
from classification.models.factory import MODELS

# Output channels of the 3x3 convs in each of the five blocks.
CONFIGS: dict[str, list[list[int]]] = {
    "S": [[64], [128], [256], [512], [512]],
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "E": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def conv_bn_block(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """``[Conv3x3(bias) -> BN -> ReLU] * len(widths)``."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers)


class CifarVGG(nn.Module):
    """VGG with batch norm; ``cfg`` lists the conv widths of the five blocks."""

    last_stage = "block4"

    def __init__(self, cfg: Sequence[Sequence[int]], num_classes: int = 100) -> None:
        super().__init__()
        in_channels = [3] + [widths[-1] for widths in cfg[:-1]]
        for i, (cin, widths) in enumerate(zip(in_channels, cfg)):
            setattr(self, f"block{i}", conv_bn_block(cin, widths))
        self.pool0 = nn.MaxPool2d(2, 2)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.pool4 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cfg[-1][-1], num_classes)
        init_conv_kaiming_(self)
        init_linear_normal_(self, std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        height = x.shape[2]
        x = self.pool0(self.block0(x))
        x = self.pool1(self.block1(x))
        x = self.pool2(self.block2(x))
        x = self.block3(x)
        if height == 64:
            x = self.pool3(x)
        x = self.block4(x)
        return self.classifier(self.pool4(x).flatten(1))


@MODELS.register("cifar_vgg8")
def vgg8(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarVGG(CONFIGS["S"], num_classes, **kwargs)


@MODELS.register("cifar_vgg11")
def vgg11(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarVGG(CONFIGS["A"], num_classes, **kwargs)


@MODELS.register("cifar_vgg13")
def vgg13(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarVGG(CONFIGS["B"], num_classes, **kwargs)


@MODELS.register("cifar_vgg16")
def vgg16(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarVGG(CONFIGS["D"], num_classes, **kwargs)


@MODELS.register("cifar_vgg19")
def vgg19(num_classes: int = 100, **kwargs) -> nn.Module:
    return CifarVGG(CONFIGS["E"], num_classes, **kwargs)
