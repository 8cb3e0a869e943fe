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

import argparse

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import RandomResizedCropAndInterpolation
from torchvision import transforms as T

from classification.data.augment_ops import paper_rand_augment

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)  # dist_cifar.yaml's values
DIGITS_MEAN, DIGITS_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)

DEFAULT_SIZE = {"imagenet": 224, "cifar100": 32, "cifar10": 32, "digits": 32, "folder": 224}
_NORM = {  # the original's defaults when --image-mean / --image-std are not given
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "cifar100": (CIFAR_MEAN, CIFAR_STD),
    "cifar10": (CIFAR_MEAN, CIFAR_STD),
    "digits": (DIGITS_MEAN, DIGITS_STD),
    "folder": (IMAGENET_MEAN, IMAGENET_STD),  # your own data: as ImageNet, what pretrained teachers expect
}
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


def normalization(args: argparse.Namespace) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = _NORM[args.dataset]
    mean = tuple(args.image_mean) if getattr(args, "image_mean", None) else mean
    std = tuple(args.image_std) if getattr(args, "image_std", None) else std
    return mean, std


def colour_and_augment(args: argparse.Namespace) -> list:
    """RandAugment (``--aa``) or, without it, colour jitter when ``--color-jitter`` > 0."""
    if args.aa:
        hparams = {"translate_const": int(224 * 0.45), "img_mean": tuple(round(255 * m) for m in IMAGENET_MEAN),
                   "interpolation": _PIL_INTERPOLATION[args.interpolation]}
        if getattr(args, "timm_rand_augment", False):  # extension: timm's 15 operations, clipped magnitudes
            return [rand_augment_transform(args.aa, hparams)]
        return [paper_rand_augment(args.aa, hparams)]
    if args.color_jitter and args.color_jitter > 0:
        cj = args.color_jitter
        return [T.ColorJitter(cj, cj, cj)]
    return []


def build_transform(args: argparse.Namespace, train: bool):
    size = args.image_size or DEFAULT_SIZE[args.dataset]
    mean, std = normalization(args)
    if args.dataset in ("imagenet", "folder"):
        if not train:
            return create_transform(size, is_training=False, crop_pct=args.crop_pct,
                                    interpolation=args.interpolation, mean=mean, std=std)
        steps = [RandomResizedCropAndInterpolation(size, interpolation=args.interpolation), T.RandomHorizontalFlip()]
        steps += colour_and_augment(args)
        steps += [T.ToTensor(), T.Normalize(mean, std)]
        if args.reprob > 0:
            steps.append(RandomErasing(args.reprob, mode=args.remode, max_count=1, device="cpu"))
        return T.Compose(steps)
    # Small images: 32x32 CIFAR, digits upsampled from 8x8.
    steps = [T.Resize(size, interpolation=T.InterpolationMode.BILINEAR)] if args.dataset == "digits" else []
    if not train:
        return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])
    steps.append(T.RandomCrop(size, padding=size // 8))
    if args.dataset == "digits":  # no flip: flipping a digit changes its meaning
        steps += colour_and_augment(args)
    else:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    if args.dataset == "digits" and args.reprob > 0:
        steps.append(RandomErasing(args.reprob, mode=args.remode, max_count=1, device="cpu"))
    if args.cutout_length > 0:
        steps.append(Cutout(args.cutout_length))
    return T.Compose(steps)
