"""Data loaders: distributed sampling, per-sample seeded augmentation, optional mixup/cutmix (timm).

The training loader draws its batches from :class:`~distkd.utils.sampling.SeededBatchSampler` and
seeds every sample's augmentation from ``(seed, epoch, index)`` (:class:`PerSampleSeed`): the
batches and augmentations of an epoch are the same for any number of workers, and a resumed run
(even mid-epoch, ``sampler.set_epoch(epoch, start_iteration)``) continues them exactly.

Both loaders collate uint8 images and normalise them on the device
(:mod:`classification.data.on_device`, as the paper's loader): they are
:class:`~classification.data.on_device.DeviceLoader` objects yielding float batches on
``dist.device``. ``build_loaders(..., uint8=False)`` gives the float32 pipeline (normalised in
the workers) instead, the reference the tests and ``benchmarks/bench_data.py`` compare with."""
from __future__ import annotations

import argparse
import sys

import torch
from timm.data import Mixup
from torch.utils.data import DataLoader, Dataset, Subset

from classification.data.datasets import build_dataset
from classification.data.on_device import DeviceLoader, split_transform
from classification.data.transforms import build_transform
from distkd.errors import UserError
from distkd.utils.distributed import DistInfo
from distkd.utils.sampling import PerSampleSeed, SeededBatchSampler, ShardSampler

DEFAULT_DATA_PATH = {"imagenet": "data/imagenet", "cifar100": "data/cifar", "cifar10": "data/cifar"}


def mixup_active(args: argparse.Namespace) -> bool:
    """Mixup / cutmix on (timm's Mixup, soft-target loss), as the original decides it."""
    return args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None


class SkipBadImages(Dataset):
    """Replaces an unreadable image by the next readable one and reports it (``--skip-bad-images``)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.num_classes = dataset.num_classes

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        for offset in range(len(self.dataset)):
            try:
                return self.dataset[(index + offset) % len(self.dataset)]
            except UserError as err:
                print(f"warning: skipped {err}", file=sys.stderr)
        raise UserError("no readable image in the dataset")


class _Subset(Subset):
    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        super().__init__(dataset, indices)
        self.num_classes = dataset.num_classes
        self.targets = [dataset.targets[i] for i in indices]


def stratified_subset(dataset: Dataset, fraction: float) -> Dataset:
    """``--train-fraction``: the same class-stratified subset for every run and seed (split seed 0)."""
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"--train-fraction must be in (0, 1], got {fraction}")
    from sklearn.model_selection import train_test_split

    indices = list(range(len(dataset)))
    try:
        kept, _ = train_test_split(indices, train_size=fraction, random_state=0, stratify=dataset.targets)
    except ValueError as err:
        raise UserError(f"--train-fraction {fraction} keeps too few images per class ({err})") from None
    return _Subset(dataset, sorted(kept))


def _transform(args: argparse.Namespace, train: bool, uint8: bool):
    """``(transform run in the workers, device part or None)``."""
    transform = build_transform(args, train=train)
    split = split_transform(transform) if uint8 else None
    return split if split is not None else (transform, None)


def _on_device(loader: DataLoader, device_part, args: argparse.Namespace, dist: DistInfo):
    if device_part is None:
        return loader
    return DeviceLoader(loader, device_part, dist.device, getattr(args, "channels_last", False))


def build_loaders(args: argparse.Namespace, dist: DistInfo, uint8: bool = True):
    """Returns ``(train_loader, val_loader, num_classes, mixup_fn)``; ``train_loader`` is None for tests.
    ``uint8``: uint8 batches normalised on ``dist.device`` (float batches there come out); False:
    the float32 pipeline, normalised in the workers (float batches on the CPU)."""
    if args.data_path is None and args.dataset not in ("digits", "folder"):  # the original's default locations
        args.data_path = DEFAULT_DATA_PATH[args.dataset]
    fetch = {"download": getattr(args, "download", False), "offline": getattr(args, "offline", False)}
    val_transform, val_device = _transform(args, False, uint8)
    val_set = build_dataset(args.dataset, args.data_path, "val", val_transform, **fetch)
    pin = dist.device.type == "cuda"
    val_batch = max(1, int(args.batch_size * args.val_batch_size_multiplier))
    val_loader = _on_device(DataLoader(
        val_set, batch_size=val_batch, sampler=ShardSampler(len(val_set), dist.rank, dist.world_size),
        num_workers=args.workers, pin_memory=pin, persistent_workers=args.workers > 0,
    ), val_device, args, dist)
    if not hasattr(args, "epochs"):  # evaluation only
        return None, val_loader, val_set.num_classes, None
    train_transform, train_device = _transform(args, True, uint8)
    train_set = build_dataset(args.dataset, args.data_path, "train", train_transform, **fetch)
    if train_set.num_classes != val_set.num_classes:
        raise UserError(
            f"train and val splits disagree on the number of classes ({train_set.num_classes} vs "
            f"{val_set.num_classes}); check --data-path"
        )
    if getattr(args, "train_fraction", 1.0) < 1.0:
        train_set = stratified_subset(train_set, args.train_fraction)
    if args.skip_bad_images:
        train_set = SkipBadImages(train_set)
    accum = getattr(args, "grad_accum_steps", None) or 1  # micro-batches per step: each plays one GPU
    gpus = dist.world_size * accum
    per_rank = len(train_set) // gpus
    if per_rank < args.batch_size:
        what = f"{dist.world_size} process(es)" if accum == 1 else f"{gpus} (emulated) GPUs"
        raise UserError(
            f"batch size {args.batch_size} per process is larger than the {per_rank} training images each of "
            f"the {what} gets (drop_last would leave no batch); lower --batch-size"
        )
    iterations = per_rank // args.batch_size  # optimizer steps
    if getattr(args, "max_iters_per_epoch", 0):
        iterations = min(iterations, args.max_iters_per_epoch)
    batches = SeededBatchSampler(len(train_set), args.batch_size, dist.rank, dist.world_size, args.seed,
                                 epoch_iterations=iterations, accum_steps=accum)
    train_loader = _on_device(DataLoader(  # own generator: the loader leaves the global RNG alone
        PerSampleSeed(train_set), batch_sampler=batches, num_workers=args.workers, pin_memory=pin,
        persistent_workers=args.workers > 0, generator=torch.Generator().manual_seed(args.seed),
    ), train_device, args, dist)
    mixup_fn = None
    if mixup_active(args):
        mixup_fn = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                         prob=args.mixup_prob, switch_prob=args.mixup_switch_prob, mode=args.mixup_mode,
                         label_smoothing=args.smoothing, num_classes=train_set.num_classes)
    return train_loader, val_loader, train_set.num_classes, mixup_fn


