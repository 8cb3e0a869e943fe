"""uint8 batches, converted and normalised on the device, one batch ahead (as the paper's loader).

The paper's classification code (``lib/dataset/dataloader.py``) collates uint8 images and converts
them to float and normalises them on the GPU, in a side stream, one batch ahead. This module does
the same for this trainer's transforms (``classification/data/transforms.py``):

- :func:`split_transform` cuts a transform at its ``ToTensor``: the steps before it (decode, crop,
  flip, RandAugment, colour jitter: all PIL) stay in the loader workers and end in
  :class:`ToUint8HWC`, a uint8 ``(H, W, C)`` tensor (PIL's own layout: no transpose, a quarter of
  float32's bytes). ``Normalize`` moves to the device. Random erasing and Cutout come after the
  normalisation; their random draws stay in the worker (:class:`EraseParams`,
  :class:`CutoutParams`), **exactly the draws the float pipeline makes, in the same order, from
  the same per-sample seeded generators** (:class:`~distkd.utils.sampling.PerSampleSeed`), and
  travel with the image as a few integers (:class:`DeviceSample`); the device applies them
  (``classification/data/device_erasing.py``: the draws and the painting).
- Collated, a batch is ``(DeviceSample(images (B, H, W, C) uint8, params (B, K) int64), targets,
  ...)``, or ``(images, targets, ...)`` when no random step runs on the device: NHWC, i.e.
  channels-last; :class:`DeviceTransform` turns it into the float32 batch
  ``(B, C, H, W)`` in the student's memory format, with the float pipeline's arithmetic
  (``x / 255``, ``- mean``, ``/ std``: the same values, bitwise on the CPU).
- :class:`DeviceLoader` wraps a DataLoader of such batches and yields float batches on the device:
  on CUDA it copies and converts batch ``i + 1`` in a side stream while batch ``i`` trains; on the
  CPU it converts in the main process. It takes no number from the global generators, so mixup /
  cutmix and dropout (seeded per step by the engine) draw what they drew before.

Random erasing's noise (``--remode pixel`` / ``rand``) is the one value that differs from the float
pipeline: it is drawn on the device from a generator seeded by a number the worker draws (from the
per-sample seeded torch generator, where the float pipeline drew the noise itself), so it keeps
its distribution (standard normal, in normalised units) and its per-sample seeding (the same for a
sample whatever its batch, the worker count or a resume), but not its values.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import transforms as T

from classification.data.device_erasing import CutoutParams, EraseParams, paint_cutout, paint_erase
from classification.data.transforms import Cutout

__all__ = ["CutoutParams", "DeviceLoader", "DeviceSample", "DeviceTransform", "EraseParams", "PackParams",
           "ToUint8HWC", "pack", "split_transform"]

# Classes that convert a PIL image to a float tensor in [0, 1] (torchvision's ToTensor, timm's
# MaybeToTensor / ToTensor in its eval transform).
TO_TENSOR = ("ToTensor", "MaybeToTensor")


class DeviceSample(NamedTuple):
    """One sample (or, collated, one batch) of the uint8 pipeline: ``image`` uint8 ``(H, W, C)``
    (batch ``(B, H, W, C)``) and ``params`` int64 ``(K,)`` (``(B, K)``), the random draws of the
    device steps (:attr:`DeviceTransform.param_count` columns)."""

    image: Tensor
    params: Tensor | tuple


class ToUint8HWC:
    """PIL image -> uint8 ``(H, W, C)`` tensor (the pixels ``ToTensor`` would scale to [0, 1])."""

    def __call__(self, pic: Image.Image) -> DeviceSample:
        if pic.mode not in ("RGB", "L"):
            raise ValueError(f"uint8 pipeline: PIL mode {pic.mode} (expected RGB or L)")
        array = np.array(pic, dtype=np.uint8)  # a writable copy, HWC as PIL stores it
        if array.ndim == 2:
            array = array[:, :, None]
        return DeviceSample(torch.from_numpy(array), ())

    def __repr__(self) -> str:
        return "ToUint8HWC()"


class PackParams:
    """The last CPU step: the drawn parameters as one int64 tensor; without any, the image alone
    (a uint8 tensor: nothing empty to collate and pin)."""

    def __call__(self, sample: DeviceSample) -> DeviceSample | Tensor:
        return pack(sample.image, sample.params)

    def __repr__(self) -> str:
        return "PackParams()"


def pack(image: Tensor, params: tuple) -> DeviceSample | Tensor:
    """What a worker hands over: ``DeviceSample(image, int64 params)``, or the uint8 image alone."""
    return DeviceSample(image, torch.tensor(params, dtype=torch.int64)) if params else image


class DeviceTransform:
    """The device part of a split transform: uint8 NHWC batch + params -> normalised float32 NCHW.

    ``steps``: the random steps after the normalisation, in the transform's order:
    ``("erase", EraseParams)`` and ``("cutout", CutoutParams)``."""

    def __init__(self, mean: Tensor, std: Tensor, steps: list[tuple[str, Any]]) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.steps = steps
        self.param_count = sum(step.param_count for _, step in steps)
        self._constants: dict[torch.device, tuple[Tensor, Tensor]] = {}
        self._generators: dict[torch.device, torch.Generator] = {}

    def constants(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._constants:
            self._constants[device] = (self.mean.to(device), self.std.to(device))
        return self._constants[device]

    def generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device)
        return self._generators[device]

    def __call__(self, images: Tensor, params: Tensor | None = None,
                 memory_format: torch.memory_format = torch.contiguous_format) -> Tensor:
        """``images`` uint8 ``(B, H, W, C)`` on the device, ``params`` int64 ``(B, K)`` (CPU: read
        on the host without a device sync) -> float32 ``(B, C, H, W)`` in ``memory_format``."""
        x = images.permute(0, 3, 1, 2).to(dtype=torch.float32, memory_format=memory_format)
        mean, std = self.constants(x.device)
        x.div_(255).sub_(mean).div_(std)  # ToTensor's and Normalize's arithmetic, in their order
        column = 0
        for kind, step in self.steps:
            cols = params[:, column:column + step.param_count]
            column += step.param_count
            if kind == "erase":
                paint_erase(x, cols, step, self.generator(x.device) if (step.per_pixel or step.rand_color) else None)
            else:
                paint_cutout(x, cols)
        return x

    def __repr__(self) -> str:
        steps = ", ".join(repr(step) for _, step in self.steps)
        return f"DeviceTransform(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}, [{steps}])"


def split_transform(transform: Callable) -> tuple[T.Compose, DeviceTransform] | None:
    """``(cpu part, device part)`` of a :func:`~classification.data.transforms.build_transform`
    pipeline, or None when it has a step after ``ToTensor`` that cannot move (then it stays as it is)."""
    steps = list(transform.transforms) if isinstance(transform, T.Compose) else [transform]
    names = [type(s).__name__ for s in steps]
    at = next((i for i, name in enumerate(names) if name in TO_TENSOR), None)
    if at is None or at + 1 >= len(steps) or not isinstance(steps[at + 1], T.Normalize):
        return None
    normalize = steps[at + 1]
    cpu: list = [*steps[:at], ToUint8HWC()]
    device_steps: list[tuple[str, Any]] = []
    for step in steps[at + 2:]:
        if type(step).__name__ == "RandomErasing" and hasattr(step, "log_aspect_ratio"):
            drawer = EraseParams(step)
            device_steps.append(("erase", drawer))
        elif isinstance(step, Cutout):
            drawer = CutoutParams(step.length)
            device_steps.append(("cutout", drawer))
        else:
            return None
        cpu.append(drawer)
    cpu.append(PackParams())
    return T.Compose(cpu), DeviceTransform(normalize.mean, normalize.std, device_steps)


def _tensors(batch: Any) -> Iterator[Tensor]:
    for item in batch:
        if isinstance(item, Tensor):
            yield item


class DeviceLoader:
    """Iterates ``loader`` (batches ``(DeviceSample, targets, *extra)``) and yields
    ``(float images, targets, *extra)`` on ``device``: images converted by ``transform`` in
    ``memory_format``. On CUDA, batch ``i + 1`` is copied and converted in a side stream while
    batch ``i`` is in use. Other attributes (``batch_sampler``, ``dataset``, ``batch_size``,
    ``pin_memory``, ...) are the wrapped loader's."""

    def __init__(self, loader: Any, transform: DeviceTransform, device: torch.device | str,
                 channels_last: bool = False) -> None:
        self.loader, self.transform = loader, transform
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.side_stream = self.device.type == "cuda"  # else: converted in the main process, in turn
        self._stream = None

    def wrap(self, loader: Any) -> DeviceLoader:
        """The same conversion around another loader (the teacher store's replay loader)."""
        return DeviceLoader(loader, self.transform, self.device, self.channels_last)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        if name in ("loader", "transform", "device") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.loader, name)

    def convert(self, batch: Any) -> tuple:
        """One collated batch -> its tensors on the device, the images as normalised floats."""
        first, *rest = batch
        if isinstance(first, DeviceSample):
            images = first.image.to(self.device, non_blocking=True)
            first = self.transform(images, first.params, self.memory_format)
        elif isinstance(first, Tensor) and first.dtype == torch.uint8:  # no random step on the device
            first = self.transform(first.to(self.device, non_blocking=True), None, self.memory_format)
        elif isinstance(first, Tensor):  # already float (a loader of the float pipeline)
            first = first.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        rest = [t.to(self.device, non_blocking=True) if isinstance(t, Tensor) else t for t in rest]
        return (first, *rest)

    def __iter__(self) -> Iterator[tuple]:
        if not self.side_stream:
            for batch in self.loader:
                yield self.convert(batch)
            return
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=self.device)
        stream, main = self._stream, torch.cuda.current_stream(self.device)
        current = None
        for batch in self.loader:
            with torch.cuda.stream(stream):
                upcoming = self.convert(batch)
            if current is not None:
                yield current
            main.wait_stream(stream)  # the main stream uses the batch only once the side stream made it
            for tensor in _tensors(upcoming):
                tensor.record_stream(main)  # its memory is not reused while the main stream needs it
            current = upcoming
        if current is not None:
            yield current
