"""Train / eval transforms per dataset; ImageNet uses timm's transform factory (RandAugment, erasing)."""
from __future__ import annotations

import argparse

from timm.data import create_transform
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from torchvision import transforms as T

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
DIGITS_MEAN, DIGITS_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)

DEFAULT_SIZE = {"imagenet": 224, "cifar100": 32, "cifar10": 32, "digits": 32, "folder": 224}
_NORM = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "digits": (DIGITS_MEAN, DIGITS_STD),
    "folder": (IMAGENET_MEAN, IMAGENET_STD),  # your own data: as ImageNet, what pretrained teachers expect
}


def build_transform(args: argparse.Namespace, train: bool):
    size = args.image_size or DEFAULT_SIZE[args.dataset]
    mean, std = _NORM[args.dataset]
    if args.dataset in ("imagenet", "folder"):
        if train:
            return create_transform(
                size, is_training=True, auto_augment=args.aa, re_prob=args.reprob, re_mode=args.remode,
                interpolation=args.interpolation, mean=mean, std=std,
            )
        return create_transform(size, is_training=False, crop_pct=args.crop_pct,
                                interpolation=args.interpolation, mean=mean, std=std)
    # Small images: 32x32 CIFAR, digits upsampled from 8x8.
    steps = [T.Resize(size, interpolation=T.InterpolationMode.BILINEAR)] if args.dataset == "digits" else []
    if not train:
        return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])
    steps.append(T.RandomCrop(size, padding=size // 8))
    if args.dataset != "digits":  # flipping a digit changes its meaning
        steps.append(T.RandomHorizontalFlip())
    if args.aa:
        hparams = {"img_mean": tuple(round(255 * m) for m in mean)}
        steps.append(rand_augment_transform(args.aa, hparams))
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    if args.reprob > 0:
        steps.append(RandomErasing(args.reprob, mode=args.remode, device="cpu"))
    return T.Compose(steps)
