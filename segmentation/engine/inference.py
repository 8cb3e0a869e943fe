"""Whole-image inference (optionally multi-scale + flip) and the evaluation loop.

Multi-scale: the image is resized by each scale, the softmax of each (flipped back) prediction is
upsampled to the full size and the probabilities are summed; the class is their argmax.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from distkd.step import autocast
from segmentation.engine.metrics import ConfusionMatrix
from segmentation.models.heads import upsample


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, scales: Sequence[float] = (1.0,), flip: bool = False) -> Tensor:
    """Summed class probabilities ``(N, C, H, W)`` at the input resolution; ``model`` in eval mode."""
    size = images.shape[-2:]
    total = None
    for scale in scales:
        x = images if scale == 1.0 else F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=True)
        for flipped in (False, True) if flip else (False,):
            logits = model(x.flip(-1) if flipped else x)
            logits = logits.flip(-1) if flipped else logits
            probs = upsample(logits.float(), size).softmax(1)
            total = probs if total is None else total + probs
    return total


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    amp_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> ConfusionMatrix:
    """Confusion matrix of ``model`` over ``loader``, summed over all ranks."""
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes, device=device)
    for images, labels, _ in tqdm(loader, desc="val", disable=not progress, leave=False):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            probs = predict(model, images, scales, flip)
        matrix.update(probs.argmax(1), labels)
    model.train(was_training)
    return matrix.all_reduce()
