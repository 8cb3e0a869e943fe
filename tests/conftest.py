"""Shared fixtures: tiny datasets written in their real on-disk formats."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# The tools, launchers and benchmarks the tests start as processes import this checkout, whichever
# checkout `pip install -e .` installed (the package is imported from ROOT in this process too).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

# The tests wait on events (a pause file a run creates, a process's exit), never on time. This bound
# is a deadlock guard only, not a speed requirement: it keeps a hung child from hanging the suite and
# is far above what any run here takes on a loaded 2-core machine.
HANG_GUARD_S = 1800

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP threads
# waiting on each other make a 2 ms forward take 700 ms: run the tests single-threaded.
torch.set_num_threads(1)


def write_image(path: Path, seed: int, size: tuple[int, int] = (20, 24), fmt: str = "JPEG") -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path, format=fmt)


@pytest.fixture
def imagefolder(tmp_path: Path) -> Path:
    """``train/`` and ``val/`` with 3 classes of 4 / 2 JPEGs each."""
    for split, count in (("train", 4), ("val", 2)):
        for c, name in enumerate(("n01", "n02", "n03")):
            for i in range(count):
                write_image(tmp_path / split / name / f"{name}_{i}.JPEG", seed=100 * c + i)
    return tmp_path


@pytest.fixture
def imagenet_lists(tmp_path: Path) -> Path:
    """The original code's ``meta/{train,val}.txt`` layout with flat val images; labels 0..4."""
    (tmp_path / "meta").mkdir()
    for split, count in (("train", 6), ("val", 3)):
        lines = []
        for i in range(count):
            rel = f"n0{i % 3}/img_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{i:08d}.JPEG"
            write_image(tmp_path / split / rel, seed=i)
            lines.append(f"{rel} {i % 5}")
        (tmp_path / "meta" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def write_cifar(root: Path, name: str, n_train: int = 12, n_test: int = 6) -> Path:
    """Official python-pickle CIFAR layout with random images (labels i % classes)."""
    rng = np.random.default_rng(0)
    if name == "cifar100":
        folder, classes = root / "cifar-100-python", 100
        files = {"train": n_train, "test": n_test}
        label_key, meta = "fine_labels", ("meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    else:
        folder, classes = root / "cifar-10-batches-py", 10
        files = {f"data_batch_{i}": n_train // 5 or 1 for i in range(1, 6)} | {"test_batch": n_test}
        label_key, meta = "labels", ("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    folder.mkdir(parents=True)
    for file, count in files.items():
        batch = {"data": rng.integers(0, 255, (count, 3072), dtype=np.uint8),
                 label_key: [i % classes for i in range(count)]}
        with open(folder / file, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / meta[0], "wb") as f:
        pickle.dump(meta[1], f)
    return root


@pytest.fixture
def scaled_kd_method(monkeypatch):
    """A KD method ``scaled`` (``scale * mean((z_s - z_t)^2)``) registered for one test only."""
    from distkd.losses.registry import KD_METHODS

    class Scaled(torch.nn.Module):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, z_s, z_t):
            return self.scale * (z_s - z_t).pow(2).mean()

    monkeypatch.setattr(KD_METHODS, "_items", {**KD_METHODS._items})
    KD_METHODS.register("scaled")(Scaled)
    return Scaled
