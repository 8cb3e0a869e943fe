"""ShuffleNet V2 (1x) for CIFAR of the distillation benchmark (``ShuffleV2``).

1x1 stem conv to 24 channels (no down-sampling), three stages (116, 232, 464 channels) of one
stride-2 down-sampling unit followed by 3, 7, 3 basic units, a 1x1 conv to 1024 channels, global
average pooling and a linear classifier.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classification.models.cifar.shufflenet import channel_shuffle
from classification.models.factory import MODELS


class BasicBlock(nn.Module):
    """Split channels in halves ``(a, b)``; ``shuffle(cat(a, relu(bn3(conv3(bn2(dw(relu(bn1(conv1(b))))))))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: Tensor) -> Tensor:
        kept, branch = x.chunk(2, dim=1)
        branch = F.relu(self.bn1(self.conv1(branch)))
        branch = self.bn2(self.conv2(branch))
        branch = F.relu(self.bn3(self.conv3(branch)))
        return channel_shuffle(torch.cat([kept, branch], 1), 2)


class DownBlock(nn.Module):
    """Two stride-2 branches, each ending with ``out/2`` channels, concatenated and shuffled.

    Left: 3x3 depthwise (s2) -> BN -> 1x1 -> BN-ReLU. Right: 1x1 -> BN-ReLU -> 3x3 depthwise (s2)
    -> BN -> 1x1 -> BN-ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: Tensor) -> Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(nn.Module):
    last_stage = "relu2"

    def __init__(self, out_channels: tuple[int, int, int, int], num_blocks: tuple[int, int, int],
                 num_classes: int = 100) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_channels = 24
        self.layer1 = self._make_layer(out_channels[0], num_blocks[0])
        self.layer2 = self._make_layer(out_channels[1], num_blocks[1])
        self.layer3 = self._make_layer(out_channels[2], num_blocks[2])
        self.conv2 = nn.Conv2d(out_channels[2], out_channels[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(out_channels[3], num_classes)

    def _make_layer(self, out_channels: int, blocks: int) -> nn.Sequential:
        layers = [DownBlock(self.in_channels, out_channels)] + [BasicBlock(out_channels) for _ in range(blocks)]
        self.in_channels = out_channels
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.linear(self.avgpool(x).flatten(1))


@MODELS.register("cifar_ShuffleV2")
def shuffle_v2(num_classes: int = 100, **kwargs) -> nn.Module:
    return ShuffleNetV2((116, 232, 464, 1024), (3, 7, 3), num_classes=num_classes, **kwargs)
