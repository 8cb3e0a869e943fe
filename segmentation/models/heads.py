"""Segmentation heads: DeepLabV3 (ASPP), PSPNet (pyramid pooling) and the auxiliary FCN head.

Structure, widths and module names follow the paper's segmentation code, so its checkpoints
(``head.*``, ``auxlayer.*``) load by name:

- DeepLabV3: ASPP ``b0`` (1x1), ``b1..b3`` (3x3, rates 12, 24, 36; ``bK.block``), ``b4`` (image
  pooling, ``b4.gap``), ``project`` (1x1 + dropout 0.5); then ``block`` = 3x3 conv, BN, ReLU,
  dropout 0.1 and the 1x1 classifier (``block.4``). 128 wide on 512-channel backbones, 256 on
  2048-channel ones.
- PSPNet: pyramid pooling over 1, 2, 3, 6 bins (``psp.conv1..conv4``, C/4 wide each), ``block`` =
  3x3 conv, BN, ReLU, dropout 0.1; ``classifier``. 128 wide on 512 (and 320) channels, 512 on 2048.
- FCN (aux, on stage 3): ``block`` = 3x3 conv (C/4 wide), BN, ReLU, dropout 0.1, 1x1 classifier.

All heads return logits at the resolution of their input (1/8).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def upsample(x: Tensor, size) -> Tensor:
    """Bilinear resize with ``align_corners=True`` (as in the paper's code)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class ASPPConv(nn.Module):
    def __init__(self, cin: int, cout: int, rate: int) -> None:
        super().__init__()
        self.block = conv_bn_relu(cin, cout, 3, rate)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class ImagePool(nn.Module):
    """Global average pool -> 1x1 conv -> broadcast back to the input size."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(cin, cout))

    def forward(self, x: Tensor) -> Tensor:
        return upsample(self.gap(x), x.shape[-2:])


class ASPP(nn.Module):
    """1x1 conv, three 3x3 atrous convs and image pooling, concatenated and projected."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, int, int] = (12, 24, 36)) -> None:
        super().__init__()
        self.b0 = conv_bn_relu(cin, cout)
        self.b1, self.b2, self.b3 = (ASPPConv(cin, cout, r) for r in rates)
        self.b4 = ImagePool(cin, cout)
        self.project = nn.Sequential(*conv_bn_relu(5 * cout, cout), nn.Dropout(0.5))

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.b0, self.b1, self.b2, self.b3, self.b4)
        return self.project(torch.cat([b(x) for b in branches], dim=1))


class DeepLabV3Head(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        width = 256 if in_channels >= 2048 else 128
        self.aspp = ASPP(in_channels, width)
        self.block = nn.Sequential(*conv_bn_relu(width, width, 3), nn.Dropout(0.1), nn.Conv2d(width, num_classes, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.aspp(x))


class PyramidPooling(nn.Module):
    """Concatenate ``x`` with its average pools over 1x1, 2x2, 3x3 and 6x6 bins (each C/4 wide)."""

    def __init__(self, in_channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.bins = bins
        for index in range(len(bins)):  # conv1..conv4, as named in the paper's code
            self.add_module(f"conv{index + 1}", conv_bn_relu(in_channels, in_channels // 4))

    def forward(self, x: Tensor) -> Tensor:
        pooled = [
            upsample(getattr(self, f"conv{i + 1}")(F.adaptive_avg_pool2d(x, b)), x.shape[-2:])
            for i, b in enumerate(self.bins)
        ]
        return torch.cat([x, *pooled], dim=1)


class PSPHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        width = 512 if in_channels >= 2048 else 128
        self.psp = PyramidPooling(in_channels)
        self.block = nn.Sequential(*conv_bn_relu(2 * in_channels, width, 3), nn.Dropout(0.1))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.block(self.psp(x)))


class FCNHead(nn.Module):
    """The auxiliary head on stage 3: 3x3 conv (C/4 wide), BN, ReLU, dropout, 1x1 classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        width = in_channels // 4
        self.block = nn.Sequential(
            *conv_bn_relu(in_channels, width, 3), nn.Dropout(0.1), nn.Conv2d(width, num_classes, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)
