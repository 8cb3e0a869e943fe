"""Wide ResNets WRN-d-k of the distillation benchmark (pre-activation blocks, widths 16, 16k, 32k, 64k).

``n = (d - 4) / 6`` blocks per stage at 32x32, 16x16 and 8x8; a final BN-ReLU, global average
pooling and a linear classifier.
"""
from __future__ import annotations

from torch import Tensor, nn

from classification.models.cifar._init import init_conv_kaiming_
from classification.models.factory import MODELS


class BasicBlock(nn.Module):
    """Pre-activation block: ``a = relu(bn1(x))``, ``out = conv2(relu(bn2(conv1(a))))``.

    Returns ``x + out`` when the shape is kept, else ``convShortcut(a) + out``.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.equal_in_out = in_planes == out_planes
        # Named as in the benchmark so its checkpoints load; absent when the shape is kept.
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(activated))))
        return (x if self.equal_in_out else self.convShortcut(activated)) + out


class NetworkBlock(nn.Module):
    """One stage: ``blocks`` basic blocks, the first one changing width and stride."""

    def __init__(self, blocks: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        first = BasicBlock(in_planes, out_planes, stride)
        self.layer = nn.Sequential(first, *(BasicBlock(out_planes, out_planes, 1) for _ in range(blocks - 1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor`` for 32x32 inputs."""

    last_stage = "relu"

    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 (16, 22, 28, 40, ...), got {depth}")
        blocks = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(blocks, widths[0], widths[1], stride=1)
        self.block2 = NetworkBlock(blocks, widths[1], widths[2], stride=2)
        self.block3 = NetworkBlock(blocks, widths[2], widths[3], stride=2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        init_conv_kaiming_(self)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = self.relu(self.bn1(x))
        return self.fc(self.avgpool(x).flatten(1))


@MODELS.register("cifar_wrn_16_1")
def wrn_16_1(num_classes: int = 100, **kwargs) -> nn.Module:
    return WideResNet(16, 1, num_classes, **kwargs)


@MODELS.register("cifar_wrn_16_2")
def wrn_16_2(num_classes: int = 100, **kwargs) -> nn.Module:
    return WideResNet(16, 2, num_classes, **kwargs)


@MODELS.register("cifar_wrn_40_1")
def wrn_40_1(num_classes: int = 100, **kwargs) -> nn.Module:
    return WideResNet(40, 1, num_classes, **kwargs)


@MODELS.register("cifar_wrn_40_2")
def wrn_40_2(num_classes: int = 100, **kwargs) -> nn.Module:
    return WideResNet(40, 2, num_classes, **kwargs)
