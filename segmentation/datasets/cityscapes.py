"""The Cityscapes dataset in its official layout, or driven by list files like the paper's.

Layout::

    ROOT/leftImg8bit/{train,val,test}/<city>/<name>_leftImg8bit.png
    ROOT/gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png        (or *_gtFine_labelTrainIds.png)

A list file has one sample a line, paths relative to ROOT separated by white space:
``leftImg8bit/train/aachen/x_leftImg8bit.png gtFine/train/aachen/x_gtFine_labelIds.png``
(the label column is left out for the test split).

``*_labelIds.png`` maps through the official table to the 19 train ids, everything else (void,
license plate, classes not evaluated) to ``IGNORE_INDEX`` = 255; a ``*_labelTrainIds.png`` next
to it (written by cityscapesscripts' ``createTrainIdLabelImgs``) is read as it is.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from distkd.errors import UserError

IGNORE_INDEX = 255
NUM_CLASSES = 19
CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
# Official label id of each train id, and its colour.
TRAIN_ID_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip

LABEL_ID_TO_TRAIN_ID = np.full(256, IGNORE_INDEX, dtype=np.uint8)
LABEL_ID_TO_TRAIN_ID[list(TRAIN_ID_TO_LABEL_ID)] = np.arange(NUM_CLASSES)

_IMG_SUFFIX, _ID_SUFFIX, _TRAIN_ID_SUFFIX = "_leftImg8bit.png", "_gtFine_labelIds.png", "_gtFine_labelTrainIds.png"
_LAYOUT_HINT = "see 'Cityscapes layout' in segmentation/README.md"


def train_id_to_label_id(pred: np.ndarray) -> np.ndarray:
    """Map train ids (0..18) back to official label ids (for the test server)."""
    table = np.zeros(256, dtype=np.uint8)
    table[:NUM_CLASSES] = TRAIN_ID_TO_LABEL_ID
    return table[pred.astype(np.uint8)]


def colorize(pred: np.ndarray) -> Image.Image:
    """A palette PNG whose pixel values are official label ids and whose colours are Cityscapes'.

    Viewers show the colours; the evaluation server reads the values as label ids.
    """
    image = Image.fromarray(train_id_to_label_id(pred), mode="P")
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[list(TRAIN_ID_TO_LABEL_ID)] = PALETTE
    image.putpalette(palette.flatten().tolist())
    return image


def _prefer_train_ids(label: Path) -> Path:
    if label.name.endswith(_ID_SUFFIX):
        train_ids = label.with_name(label.name[: -len(_ID_SUFFIX)] + _TRAIN_ID_SUFFIX)
        if train_ids.is_file():
            return train_ids
    return label


def scan_layout(root: Path, split: str, with_labels: bool) -> list[tuple[Path, Path | None]]:
    """Samples of ``split`` in the official folder layout."""
    image_dir = root / "leftImg8bit" / split
    if not image_dir.is_dir():
        raise UserError(f"Cityscapes images not found: expected a folder '{image_dir}' ({_LAYOUT_HINT})")
    images = sorted(image_dir.glob(f"*/*{_IMG_SUFFIX}"))
    if not images:
        raise UserError(f"no '*{_IMG_SUFFIX}' images under '{image_dir}/<city>/' ({_LAYOUT_HINT})")
    samples = []
    for image in images:
        label = None
        if with_labels:
            stem = image.name[: -len(_IMG_SUFFIX)]
            label = _prefer_train_ids(root / "gtFine" / split / image.parent.name / (stem + _ID_SUFFIX))
            if not label.is_file():
                raise UserError(f"label of '{image}' not found: expected '{label}' ({_LAYOUT_HINT})")
        samples.append((image, label))
    return samples


def read_list(root: Path, list_file: Path, with_labels: bool) -> list[tuple[Path, Path | None]]:
    """Samples named by a list file (paths relative to ``root``)."""
    if not list_file.is_file():
        raise UserError(f"list file not found: expected a file at '{list_file}'")
    samples = []
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in ((2,) if with_labels else (1, 2)):  # test lists may name a label
            raise UserError(
                f"{list_file}:{number}: expected 'IMAGE LABEL' (paths relative to '{root}'), got '{line.strip()}'"
            )
        image = root / fields[0]
        label = _prefer_train_ids(root / fields[1]) if with_labels else None
        for path in (image, label):
            if path is not None and not path.is_file():
                raise UserError(f"{list_file}:{number}: file not found: '{path}' (is --data the Cityscapes root?)")
        samples.append((image, label))
    if not samples:
        raise UserError(f"list file '{list_file}' names no samples")
    return samples


class Cityscapes(Dataset):
    """Items ``(image, label, name)``: a float image tensor, a long label tensor (or an empty one
    without labels) and the file stem. An index may come with a seed, ``(index, seed)``, which
    makes the random transform of that item reproducible whatever the worker."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        list_file: str | Path | None = None,
        transform: Callable | None = None,
    ) -> None:
        root = Path(root)
        if root.is_file():
            raise UserError(f"--data-path '{root}' is a file, not a folder: pass the Cityscapes root ({_LAYOUT_HINT})")
        if not root.is_dir():
            raise UserError(f"Cityscapes root not found: expected a folder at '{root}' ({_LAYOUT_HINT})")
        self.with_labels = split != "test"
        if list_file is not None:
            self.samples = read_list(root, Path(list_file), self.with_labels)
        else:
            self.samples = scan_layout(root, split, self.with_labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[Image.Image, np.ndarray | None]:
        image_path, label_path = self.samples[index]
        try:
            image = Image.open(image_path).convert("RGB")
            label = None if label_path is None else np.array(Image.open(label_path))
        except OSError as err:
            raise UserError(f"cannot read '{image_path}' or its label ({err})") from None
        if label is not None:
            if label.ndim != 2 or label.shape != (image.height, image.width):
                raise UserError(
                    f"label '{label_path}' is {label.shape}, expected a one-channel map of "
                    f"{(image.height, image.width)} like its image"
                )
            if not label_path.name.endswith(_TRAIN_ID_SUFFIX):
                label = LABEL_ID_TO_TRAIN_ID[label]
        return image, label

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        image, label = self.load(index)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        image_t, label_t = self.transform(image, label, generator)
        name = self.samples[index][0].name[: -len(_IMG_SUFFIX)]
        return image_t, label_t, name
