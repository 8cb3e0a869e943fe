"""Loading weight files into backbones and whole segmentation networks, always by name.

Whole networks (a teacher, a checkpoint to evaluate): this trainer's files, or the paper code's
(``pretrained.* / head.* / auxlayer.*``, e.g. the released ``deeplabv3_resnet101_citys_best_model.pth``).
The heads and the deep-stem backbones carry the paper code's module names, so its keys map 1:1:
``pretrained.`` is this code's ``backbone.body.`` and ``auxlayer.`` its ``aux_head.``; nothing is
matched by position, and every key and shape must fit (BatchNorm ``num_batches_tracked``
counters, absent from old files, aside).

Backbones (ImageNet weights): by name (torchvision/timm files, and the paper's deep-stem
``resnet*-imagenet.pth`` for ``resnet*_v1s``); classifier keys are ignored. A file whose keys
differ only in naming, i.e. whose tensors in order have exactly the backbone's shapes, is matched
by position (a torchvision ``mobilenet_v2`` file for the timm MobileNetV2, a timm deep-stem file
with ``conv1.0 ...`` stem keys).
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor, nn

from distkd.errors import UserError
from distkd.utils.checkpoint import extract_state_dict, load_state_dict_strict, safe_load

PAPER_PREFIXES = (("pretrained.", "backbone.body."), ("auxlayer.", "aux_head."))  # paper code -> this code
RELEASED_HINT = "the paper's released files: see 'Released files' in segmentation/README.md"
V1S_HINT = "the paper's resnet18/resnet101 are the deep-stem resnet18_v1s/resnet101_v1s here"


def read_weights(path: str | os.PathLike, what: str, hint: str = RELEASED_HINT) -> object:
    """``safe_load`` with a missing file reported as one line naming the path and where to get it."""
    if not Path(path).is_file():
        raise UserError(f"{what} not found: expected a file at '{path}' ({hint})")
    return safe_load(path, what)


def is_paper_state(state: dict[str, Tensor]) -> bool:
    return any(k.startswith("pretrained.") for k in state)


def from_paper_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The paper code's whole-network keys renamed to this code's (prefixes only; 1:1)."""
    renamed = {}
    for key, value in state.items():
        for old, new in PAPER_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        renamed[key] = value
    return renamed


def _with_batch_counters(model: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Files saved without BatchNorm ``num_batches_tracked`` get the model's own counters."""
    own = model.state_dict()
    missing = {k: own[k] for k in own if k.endswith("num_batches_tracked") and k not in state}
    return {**state, **missing}


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
    """ImageNet weights into ``backbone.body``; returns how they matched ("by name"/"by position")."""
    state = extract_state_dict(read_weights(path, "backbone weights"), f"backbone weights '{path}'")
    own = {k: v for k, v in backbone.body.state_dict().items() if not k.endswith("num_batches_tracked")}
    if all(k in state and state[k].shape == v.shape for k, v in own.items()):
        backbone.body.load_state_dict({k: state[k] for k in own}, strict=False)
        return "by name"
    mapped = match_by_position(own, state, extra_tail=True)
    if mapped is None:
        missing = [k for k in own if k not in state][:3]
        deep_stem = "conv3.weight" in state and "conv3.weight" not in own
        raise UserError(
            f"backbone weights '{path}' do not fit this backbone (e.g. missing {missing}, and the tensors do "
            "not line up by position either); pass ImageNet weights of the same architecture"
            + (f" ({V1S_HINT})" if deep_stem else "")
        )
    backbone.body.load_state_dict(mapped, strict=False)
    return "by position"


def load_segmentor_weights(
    model: nn.Module, path: str | os.PathLike, what: str = "checkpoint", checkpoint: object | None = None
) -> str:
    """A whole trained network, strictly by name; returns the naming found (this code's / the paper code's).

    ``checkpoint``: the file's content when already read. When it does not fit, the error lists the
    missing, unexpected and mis-shaped keys."""
    if checkpoint is None:
        checkpoint = read_weights(path, what)
    state = extract_state_dict(checkpoint, f"{what} '{path}'")
    naming = "this code's names"
    if is_paper_state(state):
        state, naming = from_paper_names(state), "the paper code's names"
    own = model.state_dict()
    try:
        load_state_dict_strict(model, _with_batch_counters(model, state), f"{what} '{path}' ({naming})")
    except UserError as err:
        deep_stem = "backbone.body.conv3.weight" in state and "backbone.body.conv3.weight" not in own
        raise UserError(f"{err} ({V1S_HINT})" if deep_stem else str(err)) from None
    return naming
