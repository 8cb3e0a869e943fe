"""Train / eval transforms per dataset, as the paper's classification code built them.

- ImageNet train: RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3, ``--interpolation``), flip, then
  RandAugment (``--aa``, the original's 19 operations) **or**, without ``--aa``, colour jitter
  ``ColorJitter(cj, cj, cj)`` only when ``--color-jitter`` > 0; ToTensor, Normalize, random erasing
  (``--reprob``, ``--remode``, one box). Eval: Resize(size / crop_pct) + CenterCrop.
- CIFAR train: RandomCrop(32, padding 4), flip, Normalize, Cutout when ``--cutout-length`` > 0
  (the original ignores ``--aa``, ``--color-jitter`` and ``--reprob`` on CIFAR; so does this).
- digits (this project's CPU demo data, no original): upsample, RandomCrop with padding, then the
  ImageNet options (aa, colour jitter, erasing, cutout) so that every recipe runs on it.

Normalization: ``--image-mean`` / ``--image-std`` when given, else the original's defaults
(ImageNet statistics; CIFAR-10 statistics for **both** CIFAR datasets, as the original).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import RandomResizedCropAndInterpolation
from torchvision import transforms as T

from classification.data.augment_ops import paper_rand_augment
from classification.data.catalog import (  # noqa: F401 (the normalisations, also imported from here)
    CIFAR100_MEAN,
    CIFAR100_STD,
    CIFAR_MEAN,
    CIFAR_STD,
    DIGITS_MEAN,
    DIGITS_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
)

if TYPE_CHECKING:
    from classification.options import AugmentOptions, DataOptions

_PIL_INTERPOLATION = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


class Cutout:
    """Zero one ``length`` x ``length`` square (clipped at the border) centred at a uniformly drawn
    pixel of a normalized ``(C, H, W)`` tensor (DeVries & Taylor 2017; the original's CIFAR Cutout)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        y, x = np.random.randint(h), np.random.randint(w)
        half = self.length // 2
        y1, y2 = max(0, y - half), min(h, y + half)
        x1, x2 = max(0, x - half), min(w, x + half)
        img = img.clone()
        img[..., y1:y2, x1:x2] = 0
        return img

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


def colour_and_augment(data: DataOptions, augment: AugmentOptions) -> list:
    """RandAugment (``--aa``) or, without it, colour jitter when ``--color-jitter`` > 0."""
    if augment.aa:
        hparams = {"translate_const": int(224 * 0.45), "img_mean": tuple(round(255 * m) for m in IMAGENET_MEAN),
                   "interpolation": _PIL_INTERPOLATION[data.interpolation]}
        if augment.timm_rand_augment:  # extension: timm's 15 operations, clipped magnitudes
            return [rand_augment_transform(augment.aa, hparams)]
        return [paper_rand_augment(augment.aa, hparams)]
    if augment.color_jitter and augment.color_jitter > 0:
        cj = augment.color_jitter
        return [T.ColorJitter(cj, cj, cj)]
    return []


def _erasing(augment: AugmentOptions) -> list:
    return [RandomErasing(augment.reprob, mode=augment.remode, max_count=1, device="cpu")] if augment.reprob > 0 else []


def imagenet_transform(data: DataOptions, augment: AugmentOptions | None):
    """The ``imagenet`` recipe: RandomResizedCrop and flip, RandAugment or colour jitter, erasing;
    evaluation: resize by ``--crop-pct`` and center crop."""
    size, (mean, std) = data.size, data.normalization
    if augment is None:
        return create_transform(size, is_training=False, crop_pct=data.crop_pct, interpolation=data.interpolation,
                                mean=mean, std=std)
    steps = [RandomResizedCropAndInterpolation(size, interpolation=data.interpolation), T.RandomHorizontalFlip()]
    steps += colour_and_augment(data, augment)
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps + _erasing(augment))


def cifar_transform(data: DataOptions, augment: AugmentOptions | None):
    """The ``cifar`` recipe: RandomCrop with padding, flip, Cutout (``--cutout-length``)."""
    size, (mean, std) = data.size, data.normalization
    if augment is None:
        return T.Compose([T.ToTensor(), T.Normalize(mean, std)])
    steps = [T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps + _cutout(augment))


def digits_transform(data: DataOptions, augment: AugmentOptions | None):
    """The ``digits`` recipe: upsample, RandomCrop with padding (no flip: it changes a digit's
    meaning), then the ImageNet options so that every recipe runs on it."""
    size, (mean, std) = data.size, data.normalization
    steps = [T.Resize(size, interpolation=T.InterpolationMode.BILINEAR)]
    if augment is None:
        return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])
    steps += [T.RandomCrop(size, padding=size // 8), *colour_and_augment(data, augment)]
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps + _erasing(augment) + _cutout(augment))


def _cutout(augment: AugmentOptions) -> list:
    return [Cutout(augment.cutout_length)] if augment.cutout_length > 0 else []


# The transform families a dataset's ``recipe`` names, and the notes on options each leaves unused.
RECIPES = {"imagenet": imagenet_transform, "cifar": cifar_transform, "digits": digits_transform}
IGNORED = {
    "imagenet": (("cutout_length",), "--cutout-length is used on CIFAR only (as the original)"),
    "cifar": (("aa", "color_jitter", "reprob"),
              "--aa, --color-jitter and --reprob are not used on CIFAR (as the original); see --cutout-length"),
}


def build_transform(data: DataOptions, augment: AugmentOptions | None = None, train: bool = True):
    """The transform of the dataset's recipe: training (``augment`` given and ``train``) or evaluation."""
    return RECIPES[data.entry.recipe](data, augment if train else None)


def ignored_augmentation(data: DataOptions, augment: AugmentOptions) -> str | None:
    """The note on augmentation options set to values this dataset's recipe does not use."""
    names, note = IGNORED.get(data.entry.recipe, ((), ""))
    return note if any(getattr(augment, name) for name in names) else None
