"""Random erasing and Cutout in the uint8 pipeline (``classification/data/on_device.py``), split in two:
the random draws, made in the loader worker exactly as the float pipeline makes them
(:class:`EraseParams`: timm's ``RandomErasing``; :class:`CutoutParams`: this project's
:class:`~classification.data.transforms.Cutout`), and the painting of the drawn boxes on the
normalised batch on the device (:func:`paint_erase`, :func:`paint_cutout`).

timm's ``RandomErasing`` draws and paints in one call on one image; it has no split form, hence
the draws re-written here (the same calls in the same order; a test compares them with timm's).
"""
from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch
from torch import Tensor


class EraseParams:
    """The draws of timm's ``RandomErasing`` for one image, made in the worker as timm makes them
    (``random`` for the boxes; where timm draws its noise from torch's generator, a 63-bit noise seed
    from it instead). Params: ``max_count`` boxes of ``(top, left, height, width, noise seed)``;
    height 0: no box."""

    def __init__(self, erasing: Any) -> None:
        self.probability, self.min_area, self.max_area = erasing.probability, erasing.min_area, erasing.max_area
        self.log_aspect_ratio = erasing.log_aspect_ratio
        self.min_count, self.max_count = erasing.min_count, erasing.max_count
        self.per_pixel, self.rand_color = erasing.per_pixel, erasing.rand_color
        self.mode = erasing.mode

    @property
    def param_count(self) -> int:
        return 5 * self.max_count

    def boxes(self, img_h: int, img_w: int) -> list[tuple[int, int, int, int, int]]:
        if random.random() > self.probability:
            return []
        area = img_h * img_w
        count = self.min_count if self.min_count == self.max_count else random.randint(self.min_count, self.max_count)
        boxes = []
        for _ in range(count):
            for _attempt in range(10):
                target_area = random.uniform(self.min_area, self.max_area) * area / count
                aspect_ratio = math.exp(random.uniform(*self.log_aspect_ratio))
                h = int(round(math.sqrt(target_area * aspect_ratio)))
                w = int(round(math.sqrt(target_area / aspect_ratio)))
                if w < img_w and h < img_h:
                    top = random.randint(0, img_h - h)
                    left = random.randint(0, img_w - w)
                    seed = 0
                    if self.per_pixel or self.rand_color:  # where timm's noise came from torch's generator
                        seed = int(torch.randint(0, 2**62, (1,), dtype=torch.int64).item())
                    boxes.append((top, left, h, w, seed))
                    break
        return boxes

    def __call__(self, sample: Any) -> Any:
        h, w = sample.image.shape[:2]
        flat = [v for box in self.boxes(h, w) for v in box]
        flat += [0] * (self.param_count - len(flat))
        return sample._replace(params=(*sample.params, *flat))

    def __repr__(self) -> str:
        return f"EraseParams(p={self.probability}, mode={self.mode}, count=({self.min_count}, {self.max_count}))"


class CutoutParams:
    """The draw of :class:`~classification.data.transforms.Cutout` (``np.random``, as it draws):
    params ``(y1, y2, x1, x2)``, the clipped square."""

    param_count = 4

    def __init__(self, length: int) -> None:
        self.length = length

    @staticmethod
    def bounds(h: int, w: int, y: int, x: int, length: int) -> tuple[int, int, int, int]:
        half = length // 2
        return max(0, y - half), min(h, y + half), max(0, x - half), min(w, x + half)

    def __call__(self, sample: Any) -> Any:
        h, w = sample.image.shape[:2]
        y, x = np.random.randint(h), np.random.randint(w)
        return sample._replace(params=(*sample.params, *self.bounds(h, w, y, x, self.length)))

    def __repr__(self) -> str:
        return f"CutoutParams(length={self.length})"



def paint_erase(x: Tensor, params: Tensor, step: EraseParams, generator: torch.Generator | None) -> None:
    """Random erasing on the normalised batch ``x`` (B, C, H, W), in place: each drawn box of
    ``params`` (B, 5 x max_count) is zeroed (``--remode const``) or filled with N(0, 1) noise drawn
    from ``generator`` seeded with the box's seed, per pixel or per channel (``pixel`` / ``rand``)."""
    chan = x.shape[1]
    for i, row in enumerate(params.tolist()):
        for b in range(0, len(row), 5):
            top, left, h, w, seed = row[b:b + 5]
            if h == 0:
                continue
            region = x[i, :, top:top + h, left:left + w]
            if generator is None:
                region.zero_()
                continue
            generator.manual_seed(seed)
            shape = (chan, h, w) if step.per_pixel else (chan, 1, 1)
            region.copy_(torch.empty(shape, dtype=x.dtype, device=x.device).normal_(generator=generator))


def paint_cutout(x: Tensor, params: Tensor) -> None:
    """Cutout on ``x`` (B, C, H, W), in place: zero rows ``[y1, y2)`` x columns ``[x1, x2)`` of each
    sample's ``params`` row ``(y1, y2, x1, x2)``, as one mask (no per-sample loop)."""
    b = params.to(x.device, non_blocking=True)
    h, w = x.shape[-2:]
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = (ys >= b[:, 0:1]) & (ys < b[:, 1:2])  # (B, H)
    cols = (xs >= b[:, 2:3]) & (xs < b[:, 3:4])  # (B, W)
    x.masked_fill_(rows[:, None, :, None] & cols[:, None, None, :], 0)
