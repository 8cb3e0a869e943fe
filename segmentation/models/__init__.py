"""Segmentation model names of the paper's command line -> networks.

``--student-model`` / ``--teacher-model``: ``deeplabv3`` and ``psp`` (any ``--*-backbone``),
``deeplab_mobile`` and ``psp_mobile`` (MobileNetV2 backbone). ResNet models get the auxiliary FCN
head by default, MobileNetV2 models do not (as in the paper's code); ``aux`` overrides that.
The default backbone is the paper's: ``resnet18_v1s`` (``mobilenetv2`` for ``*_mobile``).
"""
from __future__ import annotations

from distkd.errors import UserError
from distkd.registry import Registry
from segmentation.models.backbones import BACKBONES, build_backbone
from segmentation.models.heads import DeepLabV3Head, PSPHead
from segmentation.models.segmentor import Segmentor, WithAux
from segmentation.models.weights import load_backbone_weights, load_segmentor_weights

SEG_MODELS = Registry("segmentation model")  # model name -> head class
SEG_MODELS.register("deeplabv3")(DeepLabV3Head)
SEG_MODELS.register("psp")(PSPHead)
SEG_MODELS.register("deeplab_mobile")(DeepLabV3Head)
SEG_MODELS.register("psp_mobile")(PSPHead)

__all__ = ["BACKBONES", "SEG_MODELS", "Segmentor", "WithAux", "build_segmentor", "default_backbone",
           "load_backbone_weights", "load_segmentor_weights"]


def default_backbone(model: str) -> str:
    """The paper's backbone of ``model``: mobilenetv2 for ``*_mobile``, else resnet18_v1s."""
    return "mobilenetv2" if model.endswith("_mobile") else "resnet18_v1s"


def build_segmentor(
    model: str,
    backbone: str | None = None,
    num_classes: int = 19,
    aux: bool | None = None,
    pretrained_base: str | None = None,
) -> Segmentor:
    """Build ``model`` on ``backbone`` (default: resnet18_v1s, or mobilenetv2 for ``*_mobile``).

    ``pretrained_base`` is a file of ImageNet backbone weights (the paper's ``*-imagenet.pth`` for
    ``*_v1s``, torchvision/timm files for the others).
    """
    if model not in SEG_MODELS:
        raise UserError(SEG_MODELS.unknown_message(model))
    mobile = model.endswith("_mobile")
    backbone = backbone or default_backbone(model)
    if mobile and backbone != "mobilenetv2":
        raise UserError(f"'{model}' is built on the mobilenetv2 backbone, got backbone '{backbone}'")
    net = build_backbone(backbone)
    if pretrained_base:
        load_backbone_weights(net, pretrained_base)
    if aux is None:
        aux = backbone.startswith("resnet")
    head = SEG_MODELS.get(model)(net.out_channels, num_classes)
    return Segmentor(net, head, num_classes, aux)
