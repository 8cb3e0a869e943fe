"""Training and evaluation transforms on (PIL image, train-id label map) pairs.

Training, as in the paper's code: scale by ``s = 0.5 + 0.1 k`` with k uniform in 0..15 (i.e.
0.5-2.0), pad bottom/right up to the crop (image with the mean colour, label with 255), random
``crop`` and horizontal flip. Images become the tensor of an input format
(:mod:`segmentation.datasets.input_format`: ``paper`` = BGR minus the paper's mean, ``imagenet`` =
RGB ImageNet mean/std). Evaluation: the whole image, converted only.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from segmentation.datasets.cityscapes import IGNORE_INDEX
from segmentation.datasets.input_format import get_input_format, to_input


def label_tensor(label: np.ndarray | None) -> Tensor:
    return torch.empty(0, dtype=torch.long) if label is None else torch.from_numpy(label.astype(np.int64))


class EvalTransform:
    def __init__(self, input_format: str = "paper") -> None:
        self.input_format = get_input_format(input_format)

    def __call__(self, image: Image.Image, label: np.ndarray | None, generator=None) -> tuple[Tensor, Tensor]:
        return to_input(image, self.input_format), label_tensor(label)


class TrainTransform:
    def __init__(
        self,
        crop_size: tuple[int, int] = (512, 1024),
        scale_range=(0.5, 2.0),
        flip: bool = True,
        input_format: str = "paper",
    ) -> None:
        self.input_format = get_input_format(input_format)
        self.crop_h, self.crop_w = crop_size
        low, high = scale_range
        self.scales = [low + 0.1 * k for k in range(round((high - low) / 0.1) + 1)]
        self.flip = flip

    def _randint(self, high: int, generator) -> int:
        """Uniform integer in [0, high]."""
        return int(torch.randint(high + 1, (1,), generator=generator))

    def __call__(self, image: Image.Image, label: np.ndarray, generator=None) -> tuple[Tensor, Tensor]:
        img, lbl = to_input(image, self.input_format), label_tensor(label)
        scale = self.scales[self._randint(len(self.scales) - 1, generator)]
        h, w = round(img.shape[1] * scale), round(img.shape[2] * scale)
        img = F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        lbl = F.interpolate(lbl[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
        pad_h, pad_w = max(self.crop_h - h, 0), max(self.crop_w - w, 0)
        if pad_h or pad_w:
            img = F.pad(img, (0, pad_w, 0, pad_h), value=0.0)  # 0 after normalisation = mean colour
            lbl = F.pad(lbl, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
        top = self._randint(img.shape[1] - self.crop_h, generator)
        left = self._randint(img.shape[2] - self.crop_w, generator)
        img = img[:, top : top + self.crop_h, left : left + self.crop_w]
        lbl = lbl[top : top + self.crop_h, left : left + self.crop_w]
        if self.flip and self._randint(1, generator):
            img, lbl = img.flip(-1), lbl.flip(-1)
        return img.contiguous(), lbl.contiguous()
