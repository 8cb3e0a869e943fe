"""Model names of the paper's command line -> models.

- ``tv_<name>``: torchvision (``tv_resnet18/34/50/101/152``, ``tv_mobilenet_v2``, ...); pretrained,
  the paper's ``IMAGENET1K_V1`` weights, or the version the name gives: ``tv_resnet50.IMAGENET1K_V2``;
- ``timm_<name>``: any timm model (``timm_resnet50``, ``timm_tf_efficientnet_b0``, ...), with timm's
  pretrained tags (``timm_resnet50.a1_in1k``);
- everything registered in :data:`MODELS` (``mobilenet_v1`` and the CIFAR family ``cifar_*``).

``pretrained=True`` loads the torchvision / timm weights: from the local cache when there, else
downloaded through torchvision's / timm's own mechanisms (with their progress bars and, for
torchvision, the hash check of the file name). ``offline=True`` (``--offline``, ``HF_HUB_OFFLINE=1``)
never downloads: an uncached file is an error naming where to place it.
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
from distkd_cli.download import is_offline

MODELS = Registry("model")

_TV_PREFIX, _TIMM_PREFIX = "tv_", "timm_"


def _register_families() -> None:
    # Importing the modules registers their models.
    from classification.models import cifar, mobilenet_v1  # noqa: F401


def model_names() -> list[str]:
    """Registered names (``tv_*`` and ``timm_*`` names are open-ended and not listed)."""
    _register_families()
    return MODELS.names()


TEACHER_INSTEAD = "pass the weights with --teacher-ckpt PATH"
STUDENT_INSTEAD = "drop --pretrained (or start from a weight file: --initial-checkpoint PATH)"


def split_tv_name(name: str) -> tuple[str, str | None]:
    """``tv_resnet50.IMAGENET1K_V2`` -> (``resnet50``, ``IMAGENET1K_V2``); no version -> None."""
    arch, _, version = name[len(_TV_PREFIX):].partition(".")
    return arch, version or None


def tv_weights(name: str) -> Any:
    """The torchvision weights a ``tv_*`` name loads: the version it names (``.IMAGENET1K_V2``,
    ``.DEFAULT``), else the paper's ``IMAGENET1K_V1`` where it exists."""
    import torchvision

    arch, version = split_tv_name(name)
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (KeyError, ValueError):
        raise UserError(f"torchvision publishes no weights for '{name}'; train it from scratch") from None
    if version is None:
        return _paper_weights(enum)
    if version not in enum.__members__:
        close = difflib.get_close_matches(version, list(enum.__members__), n=1)
        hint = f" (did you mean: {close[0]}?)" if close else ""
        raise UserError(f"unknown weight version '{version}' of tv_{arch}{hint}; choose from "
                        f"{', '.join(enum.__members__)}")
    return enum[version]


def _torchvision(name: str, num_classes: int, pretrained: bool, offline: bool = False,
                 instead: str = TEACHER_INSTEAD, **kwargs: Any) -> nn.Module:
    import torchvision

    arch, _ = split_tv_name(name)
    if not pretrained:
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    weights = tv_weights(name)
    if weights.meta.get("categories") and len(weights.meta["categories"]) != num_classes:
        raise UserError(
            f"pretrained weights of '{name}' have {len(weights.meta['categories'])} classes, "
            f"the data has {num_classes}; train from scratch or pass a checkpoint"
        )
    model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    filename = weights.url.rsplit("/", 1)[-1]
    cache = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    if os.path.isfile(cache) or is_offline(offline):
        load_weights(model, _cached_file(name, filename, instead), f"pretrained weights of '{name}'")
        return model
    try:  # torchvision's own download: progress bar, hash prefix of the file name checked
        state = weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # urllib, hash and unpickling errors all mean: no usable file
        raise UserError(f"could not download the pretrained weights of '{name}' from {weights.url} ({err}); "
                        f"fetch the file by hand and place it at '{cache}', or {instead}") from None
    model.load_state_dict(state)
    return model


def _paper_weights(weights_enum: Any) -> Any:
    """The original ImageNet weights (``IMAGENET1K_V1``) where they exist: the paper's torchvision
    teachers are these (ResNet-34 73.31, ResNet-50 76.13); ``DEFAULT`` is V2 for several models."""
    return weights_enum.__members__.get("IMAGENET1K_V1", weights_enum.DEFAULT)


def _cached_file(name: str, filename: str, instead: str = TEACHER_INSTEAD) -> str:
    """Path of a torchvision weight file in the torch hub cache; never downloads."""
    cache = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    if not os.path.isfile(cache):
        raise UserError(
            f"pretrained weights for '{name}' are not in the local cache (expected '{cache}') and downloads are "
            f"off (--offline / HF_HUB_OFFLINE); place the file there, run online, or {instead}"
        )
    return cache


def _timm(name: str, num_classes: int, pretrained: bool, offline: bool = False, instead: str = TEACHER_INSTEAD,
          **kwargs: Any) -> nn.Module:
    import timm

    arch = name[len(_TIMM_PREFIX):]
    if not pretrained:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)
    if is_offline(offline):
        local = _timm_cached_file(arch)
        if local is None:
            raise UserError(
                f"pretrained weights for '{name}' are not in the local timm/Hugging Face cache and downloads are off "
                f"(--offline / HF_HUB_OFFLINE); run online once, or {instead}"
            )
        kwargs["pretrained_cfg_overlay"] = {"file": local}
    try:  # online: timm downloads through the Hugging Face hub (progress bar, cache) when not cached
        return timm.create_model(arch, pretrained=True, num_classes=num_classes, **kwargs)
    except Exception as err:  # timm / huggingface_hub raise many kinds on network and cache errors
        raise UserError(
            f"could not load the pretrained weights of '{name}' ({type(err).__name__}: {str(err)[:200]}); "
            f"check the connection (or run with --offline once they are cached), or {instead}"
        ) from None


def _timm_cached_file(arch: str) -> str | None:
    """The cached weight file of a timm model, looked up without any network access."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id.split("@")[0]
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for filename in names:
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    if cfg.url:
        cache = os.path.join(torch.hub.get_dir(), "checkpoints", cfg.url.rsplit("/", 1)[-1])
        if os.path.isfile(cache):
            return cache
    return None


def check_model_name(name: str) -> None:
    """Raise :class:`UserError` (with suggestions) unless ``name`` names a buildable model."""
    if name.startswith(_TV_PREFIX):
        import torchvision

        arch, version = split_tv_name(name)
        available = torchvision.models.list_models(module=torchvision.models)
        if arch in available:
            if version is not None:
                tv_weights(name)  # the version exists
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
    raise UserError(f"unknown model '{name}'.{hint} List the names with: python tools/train.py --list-models [FILTER]")


def list_models(pattern: str = "") -> list[str]:
    """Every buildable name containing ``pattern`` (case-insensitive): this project's models, then
    ``tv_<torchvision name>`` and ``timm_<timm name>`` (those only when a pattern is given)."""
    import timm
    import torchvision

    pattern = pattern.lower()
    names = [n for n in model_names() if pattern in n.lower()]
    if pattern:
        names += [_TV_PREFIX + n for n in torchvision.models.list_models(module=torchvision.models)]
        names += [_TIMM_PREFIX + n for n in timm.list_models()]
        names = list(dict.fromkeys(n for n in names if pattern in n.lower()))
    return names


def build_model(name: str, num_classes: int, pretrained: bool = False, offline: bool = False,
                instead: str = TEACHER_INSTEAD, **kwargs: Any) -> nn.Module:
    """Build a model by its command-line name with ``num_classes`` outputs; ``pretrained`` loads the
    torchvision / timm weights (downloaded on first use unless ``offline``)."""
    check_model_name(name)
    if name.startswith(_TV_PREFIX):
        return _torchvision(name, num_classes, pretrained, offline, instead, **kwargs)
    if name.startswith(_TIMM_PREFIX):
        return _timm(name, num_classes, pretrained, offline, instead, **kwargs)
    if pretrained:
        raise UserError(f"no pretrained weights exist for '{name}'; {instead}")
    return MODELS.get(name)(num_classes=num_classes, **kwargs)
