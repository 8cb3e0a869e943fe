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

import sys
from typing import TYPE_CHECKING

import torch
from timm.data import Mixup
from torch.utils.data import DataLoader, Dataset, Subset

from classification.data.datasets import build_dataset
from classification.data.on_device import DeviceLoader, split_transform
from classification.data.transforms import build_transform
from distkd.errors import UserError
from distkd.utils.distributed import DistInfo
from distkd.utils.sampling import PerSampleSeed, SeededBatchSampler, ShardSampler

if TYPE_CHECKING:
    from classification.options import AugmentOptions, DataOptions, TrainConfig

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


def _transform(data: DataOptions, augment: AugmentOptions | None, uint8: bool):
    """``(transform run in the workers, device part or None)``."""
    transform = build_transform(data, augment)
    split = split_transform(transform) if uint8 else None
    return split if split is not None else (transform, None)


def _on_device(loader: DataLoader, device_part, channels_last: bool, dist: DistInfo):
    if device_part is None:
        return loader
    return DeviceLoader(loader, device_part, dist.device, channels_last)


def build_val_loader(data: DataOptions, dist: DistInfo, channels_last: bool = False, uint8: bool = True):
    """Returns ``(val_loader, num_classes)``. ``uint8``: uint8 batches normalised on ``dist.device``
    (float batches there come out); False: the float32 pipeline, normalised in the workers."""
    val_transform, val_device = _transform(data, None, uint8)
    val_set = build_dataset(data.dataset, data.data_path, "val", val_transform, download=data.download,
                            offline=data.offline)
    val_batch = max(1, int(data.batch_size * data.val_batch_size_multiplier))
    val_loader = _on_device(DataLoader(
        val_set, batch_size=val_batch, sampler=ShardSampler(len(val_set), dist.rank, dist.world_size),
        num_workers=data.workers, pin_memory=dist.device.type == "cuda", persistent_workers=data.workers > 0,
    ), val_device, channels_last, dist)
    return val_loader, val_set.num_classes


def build_train_set(data: DataOptions, augment: AugmentOptions, transform) -> Dataset:
    """The training split (``--train-fraction`` of it; ``--skip-bad-images`` skipping unreadable images)."""
    train_set = build_dataset(data.dataset, data.data_path, "train", transform, download=data.download,
                              offline=data.offline)
    if augment.train_fraction < 1.0:
        train_set = stratified_subset(train_set, augment.train_fraction)
    if data.skip_bad_images:
        train_set = SkipBadImages(train_set)
    return train_set


def build_loaders(config: TrainConfig, dist: DistInfo, uint8: bool = True):
    """Returns ``(train_loader, val_loader, num_classes, mixup_fn)`` (see :func:`build_val_loader`)."""
    data, augment = config.data, config.augment
    val_loader, num_classes = build_val_loader(data, dist, config.runtime.channels_last, uint8)
    train_transform, train_device = _transform(data, augment, uint8)
    train_set = build_train_set(data, augment, train_transform)
    if train_set.num_classes != num_classes:
        raise UserError(
            f"train and val splits disagree on the number of classes ({train_set.num_classes} vs "
            f"{num_classes}); check --data-path"
        )
    accum = config.optim.grad_accum_steps or 1  # micro-batches per step: each plays one GPU
    gpus = dist.world_size * accum
    per_rank = len(train_set) // gpus
    if per_rank < data.batch_size:
        what = f"{dist.world_size} process(es)" if accum == 1 else f"{gpus} (emulated) GPUs"
        raise UserError(
            f"batch size {data.batch_size} per process is larger than the {per_rank} training images each of "
            f"the {what} gets (drop_last would leave no batch); lower --batch-size"
        )
    iterations = per_rank // data.batch_size  # optimizer steps
    if config.run.max_iters_per_epoch:
        iterations = min(iterations, config.run.max_iters_per_epoch)
    seed, pin = config.runtime.seed, dist.device.type == "cuda"
    batches = SeededBatchSampler(len(train_set), data.batch_size, dist.rank, dist.world_size, seed,
                                 epoch_iterations=iterations, accum_steps=accum)
    train_loader = _on_device(DataLoader(  # own generator: the loader leaves the global RNG alone
        PerSampleSeed(train_set), batch_sampler=batches, num_workers=data.workers, pin_memory=pin,
        persistent_workers=data.workers > 0, generator=torch.Generator().manual_seed(seed),
    ), train_device, config.runtime.channels_last, dist)
    return train_loader, val_loader, train_set.num_classes, mixup(augment, train_set.num_classes)


def mixup(augment: AugmentOptions, num_classes: int) -> Mixup | None:
    """timm's Mixup of ``--mixup`` / ``--cutmix`` (None when both are off)."""
    if not augment.mixup_active:
        return None
    minmax = list(augment.cutmix_minmax) if isinstance(augment.cutmix_minmax, tuple) else augment.cutmix_minmax
    return Mixup(mixup_alpha=augment.mixup, cutmix_alpha=augment.cutmix, cutmix_minmax=minmax,
                 prob=augment.mixup_prob, switch_prob=augment.mixup_switch_prob, mode=augment.mixup_mode,
                 label_smoothing=augment.smoothing, num_classes=num_classes)
