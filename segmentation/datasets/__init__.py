"""Cityscapes data: discovery of the official layout or list files, transforms, samplers."""
from segmentation.datasets.cityscapes import (
    CLASS_NAMES,
    NUM_CLASSES,
    PALETTE,
    Cityscapes,
    colorize,
    train_id_to_label_id,
)
from segmentation.datasets.sampler import IterationBatchSampler, ShardSampler
from segmentation.datasets.transforms import EvalTransform, TrainTransform

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "PALETTE",
    "Cityscapes",
    "EvalTransform",
    "IterationBatchSampler",
    "ShardSampler",
    "TrainTransform",
    "colorize",
    "train_id_to_label_id",
]
