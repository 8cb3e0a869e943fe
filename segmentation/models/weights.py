"""Loading weight files into backbones and whole segmentation networks.

Keys are matched by name first. A file whose keys differ only in naming, i.e. whose tensors, in
order, have exactly the shapes of the network's (``num_batches_tracked`` counters aside), is
matched by position: e.g. a torchvision MobileNetV2 (``features.N``) file for the timm network, a
deep-stem ResNet file with ``conv1/conv2/conv3`` stem keys for ``resnet*_v1s``, or a whole
DeepLabV3 checkpoint of the paper's code (``pretrained.* / head.* / auxlayer.*``). Anything else
is a one-line error.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from distkd.errors import UserError
from distkd.utils.checkpoint import extract_state_dict, load_state_dict_strict, safe_load


def _tensors(state: dict[str, Tensor]) -> list[tuple[str, Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def match_by_position(own: dict[str, Tensor], source: dict[str, Tensor], extra_tail: bool) -> dict | None:
    """``own``'s keys mapped onto ``source``'s tensors in order, or None if any shape differs.

    ``extra_tail``: the source may hold more tensors after the matched ones (a classifier)."""
    targets, sources = _tensors(own), _tensors(source)
    if len(sources) < len(targets) or (len(sources) != len(targets) and not extra_tail):
        return None
    pairs = list(zip(targets, sources))
    if any(t.shape != s.shape for (_, t), (_, s) in pairs):
        return None
    return {tk: sv for (tk, _), (_, sv) in pairs}


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike) -> str:
    """ImageNet weights (torchvision/timm format) into ``backbone.body``; returns how they matched.

    Classifier keys (``fc.*``, ``classifier.*``, a last 1x1 conv) are ignored."""
    state = extract_state_dict(safe_load(path, "backbone weights"), f"backbone weights '{path}'")
    own = {k: v for k, v in backbone.body.state_dict().items() if not k.endswith("num_batches_tracked")}
    if all(k in state and state[k].shape == v.shape for k, v in own.items()):
        backbone.body.load_state_dict({k: state[k] for k in own}, strict=False)
        return "by name"
    mapped = match_by_position(own, state, extra_tail=True)
    if mapped is None:
        missing = [k for k in own if k not in state][:3]
        raise UserError(
            f"backbone weights '{path}' do not fit this backbone (e.g. missing {missing}, and the tensors do "
            "not line up by position either); pass ImageNet weights of the same architecture"
        )
    backbone.body.load_state_dict(mapped, strict=False)
    return "by position"


def load_segmentor_weights(model: nn.Module, path: str | os.PathLike, what: str = "checkpoint") -> str:
    """A whole trained network (e.g. the teacher): strict by name, else exactly by position.

    When neither fits, the error lists the missing, unexpected and mis-shaped keys."""
    state = extract_state_dict(safe_load(path, what), f"{what} '{path}'")
    try:
        load_state_dict_strict(model, state, f"{what} '{path}'")
        return "by name"
    except UserError:
        mapped = match_by_position(model.state_dict(), state, extra_tail=False)
        if mapped is None:
            raise
    with torch.no_grad():
        model.load_state_dict(mapped, strict=False)
    return "by position"
