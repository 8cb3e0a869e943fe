"""Dilated backbones with output stride 8.

``backbone(x)`` returns ``(c3, c4)``: the stage-3 features (for the auxiliary head) and the
stage-4 features (for the main head), both at 1/8 of the input resolution. The strides of the
last two stages are replaced by dilation (2 and 4); the first block of each dilated stage keeps
the previous dilation in its first 3x3 conv, as in the paper's code and torchvision.

Names:

- ``resnet18_v1s/resnet50_v1s/resnet101_v1s``: the paper's ``resnet18`` / ``resnet101`` (its
  ``ResNetV1b(deep_stem=True)``): a deep stem of three 3x3 convs 64-64-128 wide. Modules carry the
  paper code's names (``conv1 bn1 conv2 bn2 conv3 bn3 layer1..4``), so its ``*-imagenet.pth`` files
  load by name.
- ``resnet18/34/50/101/152``: torchvision layout (7x7 stem); loads torchvision or timm weights.
  Not the paper's network (see "Departures" in segmentation/README.md).
- ``mobilenetv2``: MobileNetV2 1.0 (timm ``mobilenetv2_100``) up to the 320-channel stage.

The blocks are timm's (which dilate BasicBlocks too); only the deep stem is re-exposed under the
paper's module names, which timm does not offer.
"""
from __future__ import annotations

from torch import Tensor, nn

from distkd.errors import UserError
from distkd.registry import Registry

BACKBONES = Registry("backbone")

# name -> (timm architecture, extra timm kwargs)
_SPECS = {
    "resnet18": ("resnet18", {}),
    "resnet34": ("resnet34", {}),
    "resnet50": ("resnet50", {}),
    "resnet101": ("resnet101", {}),
    "resnet152": ("resnet152", {}),
    "mobilenetv2": ("mobilenetv2_100", {}),
}
DEEP_STEM = {"resnet18_v1s": "resnet18", "resnet50_v1s": "resnet50", "resnet101_v1s": "resnet101"}


class ResNetV1s(nn.Module):
    """Dilated deep-stem ResNet (output stride 8) with the paper code's module names.

    ``conv1-bn1-relu1-conv2-bn2-relu2-conv3-bn3-relu3`` (3x3 convs, 64-64-128, the first of stride
    2), max pool, ``layer1..layer4``; no classifier. Returns ``(c3, c4)``.
    """

    def __init__(self, arch: str) -> None:
        super().__init__()
        import timm

        net = timm.create_model(arch, pretrained=False, stem_type="deep", stem_width=64, output_stride=8,
                                num_classes=0, global_pool="")  # fmt: skip
        self.conv1, self.bn1, self.relu1, self.conv2, self.bn2, self.relu2, self.conv3 = net.conv1
        self.bn3, self.relu3, self.maxpool = net.bn1, net.act1, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.channels = net.feature_info[-2]["num_chs"], net.feature_info[-1]["num_chs"]  # (c3, c4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.maxpool(self.relu3(self.bn3(self.conv3(x))))
        c3 = self.layer3(self.layer2(self.layer1(x)))
        return c3, self.layer4(c3)


class DilatedBackbone(nn.Module):
    """``body`` (a timm ``features_only`` network or :class:`ResNetV1s`) returning ``(c3, c4)``."""

    def __init__(self, arch: str, deep_stem: bool = False, **timm_kwargs) -> None:
        super().__init__()
        import timm

        if deep_stem:
            self.body = ResNetV1s(arch)
            self.aux_channels, self.out_channels = self.body.channels
        else:
            self.body = timm.create_model(
                arch, pretrained=False, features_only=True, output_stride=8, out_indices=(3, 4), **timm_kwargs
            )
            self.aux_channels, self.out_channels = self.body.feature_info.channels()
        self.output_stride = 8

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c3, c4 = self.body(x)
        return c3, c4


def _register() -> None:
    for name, (arch, kwargs) in _SPECS.items():
        BACKBONES.register(name)(lambda arch=arch, kwargs=kwargs: DilatedBackbone(arch, **kwargs))
    for name, arch in DEEP_STEM.items():
        BACKBONES.register(name)(lambda arch=arch: DilatedBackbone(arch, deep_stem=True))


_register()


def build_backbone(name: str) -> DilatedBackbone:
    if name not in BACKBONES:
        raise UserError(BACKBONES.unknown_message(name))
    return BACKBONES.get(name)()
