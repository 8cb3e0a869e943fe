"""Dilated backbones with output stride 8, built with timm.

``backbone(x)`` returns ``(c3, c4)``: the stage-3 features (for the auxiliary head) and the
stage-4 features (for the main head), both at 1/8 of the input resolution. The strides of the
last two stages are replaced by dilation (2 and 4), for BasicBlock ResNets too (timm writes the
dilation into every 3x3 conv of the block).

Names:

- ``resnet18/34/50/101/152``: torchvision layout (7x7 stem); loads torchvision or timm weights.
- ``resnet18_v1s/resnet50_v1s/resnet101_v1s``: deep stem (three 3x3 convs, 64-64-128 wide), the
  backbones of the paper's segmentation code; loads timm ``resnet50s``-style weights, or files
  whose keys differ only by name (see :mod:`segmentation.models.weights`).
- ``mobilenetv2``: MobileNetV2 1.0 (timm ``mobilenetv2_100``) up to the 320-channel stage.
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
    "resnet18_v1s": ("resnet18", {"stem_type": "deep", "stem_width": 64}),
    "resnet50_v1s": ("resnet50", {"stem_type": "deep", "stem_width": 64}),
    "resnet101_v1s": ("resnet101", {"stem_type": "deep", "stem_width": 64}),
    "mobilenetv2": ("mobilenetv2_100", {}),
}


class DilatedBackbone(nn.Module):
    """A timm ``features_only`` network returning the last two stages at output stride 8."""

    def __init__(self, arch: str, **timm_kwargs) -> None:
        super().__init__()
        import timm

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


_register()


def build_backbone(name: str) -> DilatedBackbone:
    if name not in BACKBONES:
        raise UserError(BACKBONES.unknown_message(name))
    return BACKBONES.get(name)()
