"""Cityscapes data: discovery of the official layout or list files, transforms, samplers."""
from segmentation.datasets.cityscapes import (
    CLASS_NAMES,
    NUM_CLASSES,
    PALETTE,
    Cityscapes,
    colorize,
    train_id_to_label_id,
)
from segmentation.datasets.input_format import (
    INPUT_FORMATS,
    InputFormat,
    get_input_format,
    recorded_input_format,
    reformat,
)
from segmentation.datasets.sampler import IterationBatchSampler, ShardSampler
from segmentation.datasets.transforms import EvalTransform, TrainTransform

__all__ = [
    "CLASS_NAMES",
    "INPUT_FORMATS",
    "NUM_CLASSES",
    "PALETTE",
    "Cityscapes",
    "EvalTransform",
    "InputFormat",
    "IterationBatchSampler",
    "reformat",
    "ShardSampler",
    "TrainTransform",
    "colorize",
    "get_input_format",
    "recorded_input_format",
    "train_id_to_label_id",
]
