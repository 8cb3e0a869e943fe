"""The training and validation loaders of a segmentation run."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from segmentation.datasets.cityscapes import Cityscapes
from segmentation.datasets.sampler import IterationBatchSampler, ShardSampler
from segmentation.datasets.transforms import EvalTransform, TrainTransform
from segmentation.options import DataOptions


def build_loaders(data: DataOptions, seed: int, rank: int, world_size: int, start_iteration: int,
                  stop_iteration: int) -> tuple[DataLoader, DataLoader]:
    """Training batches of ``--batch-size / world_size`` crops for iterations ``start_iteration`` to
    ``stop_iteration`` (seeded by ``seed``, the rank and the start), one validation image at a time."""
    train_transform = TrainTransform(tuple(data.crop_size), input_format=data.input_format)
    train_set = Cityscapes(data.data_path, "train", data.train_list, train_transform)
    val_set = Cityscapes(data.data_path, "val", data.val_list, EvalTransform(data.input_format))
    batches = IterationBatchSampler(
        len(train_set), data.batch_size // world_size, stop_iteration, start_iteration, rank, world_size, seed
    )
    train_loader = DataLoader(  # own generator: the global RNG (restored on resume) is left alone
        train_set, batch_sampler=batches, num_workers=data.workers, pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(seed + rank + start_iteration),
    )
    val_loader = DataLoader(
        val_set, batch_size=1, sampler=ShardSampler(len(val_set), rank, world_size), num_workers=data.workers,
        generator=torch.Generator(),
    )
    return train_loader, val_loader
