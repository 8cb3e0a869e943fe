"""Model names of the paper's command line -> models.

- ``tv_<name>``: torchvision (``tv_resnet18/34/50/101/152``, ``tv_mobilenet_v2``, ...);
- ``timm_<name>``: any timm model (``timm_resnet50``, ``timm_tf_efficientnet_b0``, ...);
- everything registered in :data:`MODELS` (``mobilenet_v1`` and the CIFAR family ``cifar_*``).

``pretrained=True`` loads torchvision/timm weights only from the local cache (never downloads).
"""
from __future__ import annotations

import difflib
import os
from typing import Any

import torch
from torch import nn

from distkd.errors import UserError
from distkd.registry import Registry
from distkd.utils.checkpoint import load_weights

MODELS = Registry("model")

_TV_PREFIX, _TIMM_PREFIX = "tv_", "timm_"


def _register_families() -> None:
    # Importing the modules registers their models.
    from classification.models import cifar, mobilenet_v1  # noqa: F401


def model_names() -> list[str]:
    """Registered names (``tv_*`` and ``timm_*`` names are open-ended and not listed)."""
    _register_families()
    return MODELS.names()


def _torchvision(name: str, num_classes: int, pretrained: bool, **kwargs: Any) -> nn.Module:
    import torchvision

    arch = name[len(_TV_PREFIX):]
    if not pretrained:
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    weights = _paper_weights(torchvision.models.get_model_weights(arch))
    if weights.meta.get("categories") and len(weights.meta["categories"]) != num_classes:
        raise UserError(
            f"pretrained weights of '{name}' have {len(weights.meta['categories'])} classes, "
            f"the data has {num_classes}; train from scratch or pass a checkpoint"
        )
    model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    load_weights(model, _cached_file(name, weights.url.rsplit("/", 1)[-1]), f"pretrained weights of '{name}'")
    return model


def _paper_weights(weights_enum: Any) -> Any:
    """The original ImageNet weights (``IMAGENET1K_V1``) where they exist: the paper's torchvision
    teachers are these (ResNet-34 73.31, ResNet-50 76.13); ``DEFAULT`` is V2 for several models."""
    return weights_enum.__members__.get("IMAGENET1K_V1", weights_enum.DEFAULT)


def _cached_file(name: str, filename: str) -> str:
    """Path of a torchvision weight file in the torch hub cache; never downloads."""
    cache = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    if not os.path.isfile(cache):
        raise UserError(
            f"pretrained weights for '{name}' are not in the local cache (expected '{cache}'); "
            "place the file there, or pass the weights with --teacher-ckpt PATH"
        )
    return cache


def _timm(name: str, num_classes: int, pretrained: bool, **kwargs: Any) -> nn.Module:
    import timm

    arch = name[len(_TIMM_PREFIX):]
    if not pretrained:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return timm.create_model(arch, pretrained=True, num_classes=num_classes, **kwargs)
    except Exception as err:  # timm raises many kinds when offline and uncached
        raise UserError(
            f"pretrained weights for '{name}' are not in the local timm/Hugging Face cache "
            f"({type(err).__name__}); place them there, or pass the weights with --teacher-ckpt PATH"
        ) from None


def check_model_name(name: str) -> None:
    """Raise :class:`UserError` (with suggestions) unless ``name`` names a buildable model."""
    if name.startswith(_TV_PREFIX):
        import torchvision

        arch = name[len(_TV_PREFIX):]
        available = torchvision.models.list_models(module=torchvision.models)
        if arch in available:
            return
        close = difflib.get_close_matches(arch, available, n=3)
        hint = f" Did you mean: {', '.join(_TV_PREFIX + c for c in close)}?" if close else ""
        raise UserError(f"unknown torchvision model '{name}'.{hint}")
    if name.startswith(_TIMM_PREFIX):
        import timm

        arch = name[len(_TIMM_PREFIX):]
        if timm.is_model(arch):
            return
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f" Did you mean: {', '.join(_TIMM_PREFIX + c for c in close)}?" if close else ""
        raise UserError(f"unknown timm model '{name}'.{hint}")
    _register_families()
    if name in MODELS:
        return
    import timm
    import torchvision

    prefixed = [p + name for p, ok in ((_TV_PREFIX, name in torchvision.models.list_models(module=torchvision.models)),
                                       (_TIMM_PREFIX, timm.is_model(name))) if ok]
    close = prefixed or difflib.get_close_matches(name, MODELS.names(), n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UserError(f"unknown model '{name}'.{hint} Names: {', '.join(MODELS.names())}, tv_<torchvision name>, "
                    "timm_<timm name>")


def build_model(name: str, num_classes: int, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a model by its command-line name with ``num_classes`` outputs."""
    check_model_name(name)
    if name.startswith(_TV_PREFIX):
        return _torchvision(name, num_classes, pretrained, **kwargs)
    if name.startswith(_TIMM_PREFIX):
        return _timm(name, num_classes, pretrained, **kwargs)
    if pretrained:
        raise UserError(f"no pretrained weights exist for '{name}'; pass a checkpoint with --teacher-ckpt PATH")
    return MODELS.get(name)(num_classes=num_classes, **kwargs)
