"""A tiny Cityscapes tree in the real layout: 64x128 PNG images and ``*_gtFine_labelIds.png`` maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segmentation.models import build_segmentor

# Label ids used in the tiny maps: seven evaluated classes and three that map to ignore (0, 4, 9).
LABEL_IDS = (7, 8, 11, 21, 23, 24, 26, 0, 4, 9)
CITIES = {"train": ("aachen", "bremen"), "val": ("frankfurt",), "test": ("berlin",)}


def write_sample(root: Path, split: str, city: str, index: int, rng: np.random.Generator, size=(64, 128)) -> None:
    """One image and, for train/val, its labelIds map; the image colour follows the label (learnable)."""
    stem = f"{city}_{index:06d}_000019"
    h, w = size
    blocks = rng.choice(LABEL_IDS, size=(h // 16, w // 16))
    label = np.kron(blocks, np.ones((16, 16), dtype=np.int64)).astype(np.uint8)
    ids = label.astype(np.int64)
    colour = np.stack([(ids * 37) % 256, (ids * 91) % 256, (ids * 53) % 256], -1)
    image = np.clip(colour + rng.normal(0, 20, colour.shape), 0, 255).astype(np.uint8)
    image_dir = root / "leftImg8bit" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(image_dir / f"{stem}_leftImg8bit.png")
    if split != "test":
        label_dir = root / "gtFine" / split / city
        label_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label).save(label_dir / f"{stem}_gtFine_labelIds.png")


def make_cityscapes(root: Path, per_city: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, cities in CITIES.items():
        for city in cities:
            for index in range(per_city):
                write_sample(root, split, city, index, rng)
    return root


@pytest.fixture
def cityscapes(tmp_path: Path) -> Path:
    return make_cityscapes(tmp_path / "cityscapes")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread than on a shared pool (and leave the other core free)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def teacher_ckpt(tmp_path) -> Path:
    """A DeepLabV3-R18 teacher's weights (seed 0), as a segmentation teacher checkpoint."""
    torch.manual_seed(0)
    path = tmp_path / "teacher.pth"
    torch.save(build_segmentor("deeplabv3", "resnet18").state_dict(), path)
    return path
