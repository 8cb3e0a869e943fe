"""Input formats: how an RGB image in 0-255 becomes the tensor a network was trained on.

- ``paper`` (the paper's code, its ImageNet backbone files and released checkpoints): channels in
  **BGR** order, the mean ``(104.00698793, 116.66876762, 122.67891434)`` (B, G, R) subtracted, no
  division by a std: ``x = bgr - mean``.
- ``imagenet`` (torchvision / timm weights): RGB, ``x = (rgb / 255 - mean) / std`` with the
  ImageNet mean ``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224, 0.225)``.

The format is an option of the trainer (``--input-format``), recorded in every checkpoint and in
``args.yaml``; evaluation reads it back, and a teacher of another format gets its own input
(:func:`reformat`). In both formats 0 is the mean colour (the value crops are padded with).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from distkd.errors import UserError
from distkd.teacher import Renormalize


@dataclass(frozen=True)
class InputFormat:
    name: str
    bgr: bool  # channel order fed to the network
    mean: tuple[float, float, float]  # 0-255 scale, in the network's channel order
    std: tuple[float, float, float]  # 0-255 scale

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        view = (-1, 1, 1)
        return (torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(view),
                torch.tensor(self.std, dtype=x.dtype, device=x.device).view(view))  # fmt: skip

    def from_rgb255(self, rgb: Tensor) -> Tensor:
        """``(..., 3, H, W)`` RGB values in 0-255 -> network input."""
        x = rgb.flip(-3) if self.bgr else rgb
        mean, std = self._stats(x)
        return (x - mean) / std

    def to_rgb255(self, x: Tensor) -> Tensor:
        """Network input -> RGB values in 0-255 (inverse of :meth:`from_rgb255`)."""
        mean, std = self._stats(x)
        x = x * std + mean
        return x.flip(-3) if self.bgr else x


INPUT_FORMATS = {
    "paper": InputFormat("paper", True, (104.00698793, 116.66876762, 122.67891434), (1.0, 1.0, 1.0)),
    "imagenet": InputFormat("imagenet", False, (0.485 * 255, 0.456 * 255, 0.406 * 255),
                            (0.229 * 255, 0.224 * 255, 0.225 * 255)),
}  # fmt: skip


def get_input_format(name: str) -> InputFormat:
    if name not in INPUT_FORMATS:
        raise UserError(f"unknown input format '{name}': choose one of {', '.join(INPUT_FORMATS)}")
    return INPUT_FORMATS[name]


def to_input(image, fmt: InputFormat) -> Tensor:
    """A PIL RGB image (or an ``H x W x 3`` uint8 array) -> the ``(3, H, W)`` float input of ``fmt``."""
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return fmt.from_rgb255(array.float())


def recorded_input_format(checkpoint: Any) -> str | None:
    """The input format a checkpoint was trained with: its record, ``paper`` for the paper code's
    bare state dicts (``pretrained.*`` keys), else None (unknown)."""
    if isinstance(checkpoint, dict):
        if isinstance(checkpoint.get("input_format"), str):
            return checkpoint["input_format"]
        args = checkpoint.get("args")
        if isinstance(args, dict) and isinstance(args.get("input_format"), str):
            return args["input_format"]
        if any(isinstance(k, str) and k.startswith(("pretrained.", "module.pretrained.")) for k in checkpoint):
            return "paper"
    return None


def reformat(source: InputFormat, target: InputFormat) -> Renormalize:
    """The on-device conversion of a batch from one input format to another (feeds a teacher its own
    format): :class:`distkd.teacher.Renormalize` with each format's mean/std, swapping RGB <-> BGR
    when the channel orders differ."""
    return Renormalize(source.mean, source.std, target.mean, target.std, reverse_channels=source.bgr != target.bgr)
