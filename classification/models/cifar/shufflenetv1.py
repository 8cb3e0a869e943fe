"""ShuffleNet V1 (groups 3) for CIFAR of the distillation benchmark (``ShuffleV1``).

1x1 stem conv to 24 channels (no down-sampling), three stages of 4, 8, 4 bottlenecks with outputs
240, 480, 960; each stage opens with a stride-2 unit that concatenates a 3x3 average-pooled shortcut.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classification.models.cifar.shufflenet import channel_shuffle
from classification.models.factory import MODELS


class Bottleneck(nn.Module):
    """1x1 group conv -> BN-ReLU -> shuffle -> 3x3 depthwise -> BN-ReLU -> 1x1 group conv -> BN.

    Stride 1: ``relu(out + x)``; stride 2: ``relu(cat(out, avgpool3x3(x)))``.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int) -> None:
        super().__init__()
        mid_planes = out_planes // 4
        self.first_groups = 1 if in_planes == 24 else groups  # the stem output is not grouped
        self.stride = stride
        self.conv1 = nn.Conv2d(in_planes, mid_planes, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.conv2 = nn.Conv2d(mid_planes, mid_planes, 3, stride, 1, groups=mid_planes, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)

    def forward(self, x: Tensor) -> Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, stride=2, padding=1)], 1))
        return F.relu(out + x)


class ShuffleNetV1(nn.Module):
    last_stage = "layer3"

    def __init__(self, out_planes: tuple[int, int, int], num_blocks: tuple[int, int, int], groups: int,
                 num_classes: int = 100) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_planes = 24
        self.layer1 = self._make_layer(out_planes[0], num_blocks[0], groups)
        self.layer2 = self._make_layer(out_planes[1], num_blocks[1], groups)
        self.layer3 = self._make_layer(out_planes[2], num_blocks[2], groups)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(out_planes[2], num_classes)

    def _make_layer(self, out_planes: int, blocks: int, groups: int) -> nn.Sequential:
        # The stride-2 unit concatenates its input, so its branch makes only the missing channels.
        layers = [Bottleneck(self.in_planes, out_planes - self.in_planes, stride=2, groups=groups)]
        layers += [Bottleneck(out_planes, out_planes, stride=1, groups=groups) for _ in range(blocks - 1)]
        self.in_planes = out_planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.avgpool(x).flatten(1))


@MODELS.register("cifar_ShuffleV1")
def shuffle_v1(num_classes: int = 100, **kwargs) -> nn.Module:
    return ShuffleNetV1((240, 480, 960), (4, 8, 4), groups=3, num_classes=num_classes, **kwargs)
