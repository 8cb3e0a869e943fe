"""Replayable views: the random parts of a training recipe, drawn once, applied exactly again.

A training transform (``classification/data/transforms.py``) is read step by step. Deterministic
steps (Resize, ToTensor, Normalize) are kept as they are; the random ones that can be replayed
become parameters of a **view**, seven integers::

    (top, left, height, width, flip, cut_y, cut_x)

- RandomCrop (after its padding) / RandomResizedCrop: the crop box ``top, left, height, width``;
- RandomHorizontalFlip: ``flip`` (0 / 1);
- Cutout: the square's centre ``cut_y, cut_x`` in the output image (-1 when there is no Cutout).

Applying a view runs the same functional ops the online transform runs with those parameters, so
the image is identical to the one the online recipe produces when it draws them. Any other random
step (RandAugment, colour jitter, random erasing) cannot be replayed and is refused by name.

**Exact views**: a recipe whose only random parts are RandomCrop and a p=0.5 flip (CIFAR, digits)
has finitely many views, all equally likely (the crop offset is uniform over ``(2 padding + 1)^2``
positions): with all of them stored, drawing one uniformly is the online recipe's distribution.
"""
from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from timm.data.transforms import RandomResizedCropAndInterpolation
from torchvision import transforms as T
from torchvision.transforms import functional as F

from classification.data.transforms import Cutout
from distkd.errors import UserError

VIEW_FIELDS = ("top", "left", "height", "width", "flip", "cut_y", "cut_x")
TOP, LEFT, HEIGHT, WIDTH, FLIP, CUT_Y, CUT_X = range(len(VIEW_FIELDS))

# Random steps that cannot be replayed, by class name -> how users know them.
NOT_REPLAYABLE = {
    "RandAugment": "RandAugment (--aa)",
    "AutoAugment": "AutoAugment (--aa)",
    "TrivialAugmentWide": "TrivialAugment",
    "ColorJitter": "ColorJitter (--color-jitter)",
    "RandomErasing": "random erasing (--reprob)",
}


def view_rng(seed: int, index: int, view: int) -> random.Random:
    """The generator of view ``view`` of image ``index`` in a store of seed ``seed``: a function of
    the three numbers alone, so a resumed build draws the same views."""
    digest = hashlib.sha256(f"{seed},{index},{view}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def resized_crop_box(rng: random.Random, width: int, height: int, scale: tuple[float, float],
                     ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a RandomResizedCrop, timm's algorithm (10 tries, then a central crop)
    drawn from ``rng``: timm's ``get_params`` draws from the global ``random`` module only."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = rng.uniform(*scale) * area
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if w <= width and h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def cutout_at(img: torch.Tensor, length: int, y: int, x: int) -> torch.Tensor:
    """:class:`~classification.data.transforms.Cutout` with its centre given instead of drawn."""
    h, w = img.shape[-2:]
    half = length // 2
    img = img.clone()
    img[..., max(0, y - half):min(h, y + half), max(0, x - half):min(w, x + half)] = 0
    return img


def _interp(mode: Any) -> str:
    if isinstance(mode, (list, tuple)):
        raise UserError("--teacher-store: a random interpolation ('random') cannot be replayed; choose "
                        "--interpolation bilinear or bicubic")
    return mode.value if hasattr(mode, "value") else str(mode)


def _size(size: Any) -> list[int]:
    return [int(size), int(size)] if isinstance(size, int) else [int(s) for s in size]


class ReplayRecipe:
    """A training transform split into deterministic steps and replayable random ones."""

    def __init__(self, transform: Callable) -> None:
        steps = list(transform.transforms) if isinstance(transform, T.Compose) else [transform]
        self.steps = steps
        self.description: list[dict] = []
        for step in steps:
            self.description.append(self._describe(step))

    @staticmethod
    def _describe(step: Any) -> dict:
        name = type(step).__name__
        if name in NOT_REPLAYABLE:
            raise UserError(f"--teacher-store: the training recipe's {NOT_REPLAYABLE[name]} cannot be replayed from "
                            "stored views (replayable: RandomCrop, RandomResizedCrop, flip, Cutout); drop it to "
                            "train from a store, or train with an online teacher")
        if isinstance(step, T.Resize):
            return {"op": "Resize", "size": step.size, "interpolation": _interp(step.interpolation)}
        if isinstance(step, T.RandomCrop):
            if step.pad_if_needed:
                raise UserError("--teacher-store: RandomCrop(pad_if_needed=True) is not supported")
            return {"op": "RandomCrop", "size": _size(step.size), "padding": step.padding, "fill": step.fill,
                    "padding_mode": step.padding_mode}
        if isinstance(step, (RandomResizedCropAndInterpolation, T.RandomResizedCrop)):
            return {"op": "RandomResizedCrop", "size": _size(step.size), "scale": list(step.scale),
                    "ratio": list(step.ratio), "interpolation": _interp(step.interpolation)}
        if isinstance(step, T.RandomHorizontalFlip):
            return {"op": "RandomHorizontalFlip", "p": step.p}
        if isinstance(step, Cutout):
            return {"op": "Cutout", "length": step.length}
        if isinstance(step, T.ToTensor):
            return {"op": "ToTensor"}
        if isinstance(step, T.Normalize):
            return {"op": "Normalize", "mean": [float(m) for m in step.mean], "std": [float(s) for s in step.std]}
        raise UserError(f"--teacher-store: the training recipe's {name} cannot be replayed from stored views "
                        "(replayable: RandomCrop, RandomResizedCrop, flip, Cutout); train with an online teacher")

    def ops(self) -> list[str]:
        return [d["op"] for d in self.description]

    def exact_views(self, image: Image.Image) -> np.ndarray:
        """Every view the recipe can draw for ``image`` (``(V, 7)``), all equally likely; refused for a
        recipe with a continuous or very large set of views (RandomResizedCrop, Cutout)."""
        crops, flips = None, [0]
        for step, desc in zip(self.steps, self.description):
            if desc["op"] in ("RandomResizedCrop", "Cutout"):
                raise UserError(f"--exact: the recipe's {desc['op']} has no finite set of equally likely views; "
                                f"store a number of drawn views instead (--views N)")
            if desc["op"] == "Resize":
                image = step(image)
            elif desc["op"] == "RandomCrop":
                padded = F.pad(image, step.padding, step.fill, step.padding_mode) if step.padding else image
                w, h = padded.size
                th, tw = desc["size"]
                crops = [(t, left, th, tw) for t in range(h - th + 1) for left in range(w - tw + 1)]
            elif desc["op"] == "RandomHorizontalFlip":
                if desc["p"] != 0.5:
                    raise UserError(f"--exact needs a flip probability of 0.5, the recipe has {desc['p']}")
                flips = [0, 1]
        if crops is None:
            w, h = image.size
            crops = [(0, 0, h, w)]
        return np.array([(*c, f, -1, -1) for c in crops for f in flips], dtype=np.int32)

    def draw(self, image: Image.Image, rng: random.Random) -> np.ndarray:
        """One view drawn with ``rng`` as the online recipe draws it (7 int32)."""
        view = np.array([0, 0, 0, 0, 0, -1, -1], dtype=np.int32)
        size = image.size  # (w, h) of the current image
        for step, desc in zip(self.steps, self.description):
            op = desc["op"]
            if op == "Resize":
                image = step(image)
                size = image.size
            elif op == "RandomCrop":
                pad = _padding(step.padding)
                w, h = size[0] + pad[0] + pad[2], size[1] + pad[1] + pad[3]
                th, tw = desc["size"]
                view[TOP:WIDTH + 1] = (rng.randint(0, h - th), rng.randint(0, w - tw), th, tw)
                size = (tw, th)
            elif op == "RandomResizedCrop":
                view[TOP:WIDTH + 1] = resized_crop_box(rng, size[0], size[1], step.scale, step.ratio)
                size = (desc["size"][1], desc["size"][0])
            elif op == "RandomHorizontalFlip":
                view[FLIP] = int(rng.random() < step.p)
            elif op == "Cutout":
                view[CUT_Y], view[CUT_X] = rng.randrange(size[1]), rng.randrange(size[0])
        return view

    def apply(self, image: Image.Image, view: np.ndarray, uint8: bool = False) -> Any:
        """The training image of ``view``: the online steps with the view's parameters. ``uint8``:
        the worker's part of the uint8 pipeline (:mod:`classification.data.on_device`): the uint8
        image (with Cutout: a ``DeviceSample``, the square as its params), normalised on the device."""
        top, left, height, width, flip, cut_y, cut_x = (int(v) for v in view)
        x: Any = image
        if uint8:
            from classification.data.on_device import CutoutParams, DeviceSample, ToUint8HWC, pack
        for step, desc in zip(self.steps, self.description):
            op = desc["op"]
            if uint8 and op == "ToTensor":
                x = ToUint8HWC()(x)
            elif uint8 and op == "Normalize":
                continue
            elif uint8 and op == "Cutout":
                h, w = x.image.shape[:2]
                x = DeviceSample(x.image, (*x.params, *CutoutParams.bounds(h, w, cut_y, cut_x, step.length)))
            elif op == "RandomCrop":
                if step.padding:
                    x = F.pad(x, step.padding, step.fill, step.padding_mode)
                x = F.crop(x, top, left, height, width)
            elif op == "RandomResizedCrop":
                x = F.resized_crop(x, top, left, height, width, list(step.size), step.interpolation,
                                   **({"antialias": step.antialias} if hasattr(step, "antialias") else {}))
            elif op == "RandomHorizontalFlip":
                x = F.hflip(x) if flip else x
            elif op == "Cutout":
                x = cutout_at(x, step.length, cut_y, cut_x)
            else:
                x = step(x)
        if uint8:
            x = pack(x.image, x.params)
        return x


def _padding(padding: Any) -> tuple[int, int, int, int]:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if not padding:
        return (0, 0, 0, 0)
    if isinstance(padding, int):
        return (padding,) * 4
    padding = list(padding)
    if len(padding) == 1:
        return (padding[0],) * 4
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    return tuple(padding)
