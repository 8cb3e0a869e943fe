"""Classification datasets in their real on-disk formats (CIFAR downloaded only with ``--download``).

- ImageNet: ``<root>/{train,val}/<class>/*.JPEG`` class folders, or the original code's list files
  ``<root>/meta/{train,val}.txt`` (lines ``relative/path.JPEG label``, paths under
  ``<root>/{train,val}/``), used when present;
- CIFAR-100 / CIFAR-10: the python pickles ``<root>/cifar-100-python/{train,test,meta}`` and
  ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``;
- folder (your own data): ``<root>/{train,val}/<class>/<image>``, any number of classes, any image
  format PIL reads;
- digits: scikit-learn's bundled 8x8 handwritten digits (1,797 real images, 10 classes), split
  80/20 with a fixed seed.
"""
from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import default_loader

from classification.data.safe_pickle import RefusedPickle, load_data_pickle
from distkd.errors import UserError

Transform = Callable | None


def _load_image(path: str) -> Image.Image:
    try:
        return default_loader(path)
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(
            f"unreadable image '{path}' ({type(err).__name__}); remove it or pass --skip-bad-images"
        ) from None


class ImageList(Dataset):
    """Images listed in a text file, one ``relative/path label`` per line."""

    def __init__(self, image_root: str | Path, list_file: str | Path, transform: Transform = None) -> None:
        self.image_root = Path(image_root)
        self.samples: list[tuple[str, int]] = []
        for lineno, line in enumerate(Path(list_file).read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise UserError(f"malformed line {lineno} in '{list_file}': expected 'relative/path label'")
            self.samples.append((str(self.image_root / parts[0]), int(parts[1])))
        if not self.samples:
            raise UserError(f"list file '{list_file}' names no images")
        self.targets = [label for _, label in self.samples]
        self.num_classes = max(self.targets) + 1
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        image = _load_image(path)
        return (self.transform(image) if self.transform else image), label


class _CheckedImageFolder(ImageFolder):
    def __init__(self, root: str, transform: Transform) -> None:
        super().__init__(root, transform=transform, loader=_load_image)
        self.num_classes = len(self.classes)


def imagenet(root: str | Path, split: str, transform: Transform = None) -> Dataset:
    root = Path(root)
    list_file = root / "meta" / f"{split}.txt"
    if list_file.is_file():
        return ImageList(root / split, list_file, transform)
    folder = root / split
    if not folder.is_dir():
        raise UserError(
            f"ImageNet {split} split not found: expected class folders '{folder}/<class>/*.JPEG' or a list "
            f"file '{list_file}' (see README: Preparing datasets)"
        )
    return image_folder(folder, transform, "ImageNet")


def image_folder(folder: str | Path, transform: Transform = None, what: str = "image folder") -> Dataset:
    """``folder/<class>/<image>`` (torchvision's ImageFolder); classes sorted by folder name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{what} split not found: expected class folders '{folder}/<class>/<image>' "
                        "(see docs/own_data.md)")
    try:
        return _CheckedImageFolder(str(folder), transform)
    except FileNotFoundError as err:
        raise UserError(f"{what} split at '{folder}' has no class folders with images ({err})") from None


_CIFAR = {
    "cifar100": ("cifar-100-python", {"train": ["train"], "val": ["test"]}, "fine_labels", "meta", "fine_label_names"),
    "cifar10": (
        "cifar-10-batches-py",
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "val": ["test_batch"]},
        "labels",
        "batches.meta",
        "label_names",
    ),
}


class CIFARPickle(Dataset):
    """CIFAR-10/100 from the official python pickles (no checksum, no download)."""

    def __init__(self, root: str | Path, name: str, split: str, transform: Transform = None) -> None:
        folder_name, files, label_key, meta_name, names_key = _CIFAR[name]
        folder = Path(root) / folder_name
        images, labels = [], []
        for file in files[split]:
            batch = self._unpickle(folder / file, name)
            if "data" not in batch or label_key not in batch:
                raise UserError(f"'{folder / file}' is not a {name} batch (needs 'data' and '{label_key}')")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.extend(int(v) for v in batch[label_key])
        self.data = np.concatenate(images)
        self.targets = labels
        meta_path = folder / meta_name
        if meta_path.is_file():
            meta = self._unpickle(meta_path, name)
            self.num_classes = len(meta[names_key])
        else:
            self.num_classes = 100 if name == "cifar100" else 10
        self.transform = transform

    @staticmethod
    def _unpickle(path: Path, name: str) -> dict:
        if not path.is_file():
            raise UserError(
                f"{name} file not found: expected '{path}' (add --download to fetch it, or extract the official "
                "python-version archive into --data-path)"
            )
        try:
            with open(path, "rb") as f:
                content = load_data_pickle(f)
        except RefusedPickle as err:
            raise UserError(f"'{path}' was refused: {err} (only the official {name} files are read)") from None
        except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as err:
            raise UserError(f"'{path}' is not a readable {name} pickle ({err})") from None
        if not isinstance(content, dict):
            raise UserError(f"'{path}' is not a {name} pickle (holds a {type(content).__name__}, expected a dict)")
        return {k.decode() if isinstance(k, bytes) else k: v for k, v in content.items()}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.data[index])
        return (self.transform(image) if self.transform else image), self.targets[index]


class Digits(Dataset):
    """scikit-learn's bundled handwritten digits as RGB PIL images (8x8, upsampled by the transform)."""

    num_classes = 10

    def __init__(self, split: str, transform: Transform = None, val_fraction: float = 0.2) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        data = load_digits()
        images = (data.images * (255.0 / 16.0)).round().astype(np.uint8)
        train_idx, val_idx = train_test_split(
            np.arange(len(images)), test_size=val_fraction, random_state=0, stratify=data.target
        )
        idx = train_idx if split == "train" else val_idx
        self.images = images[idx]
        self.targets = [int(t) for t in data.target[idx]]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index], mode="L").convert("RGB")
        return (self.transform(image) if self.transform else image), self.targets[index]


def checked_root(name: str, root: str | Path | None) -> Path:
    """``--data-path`` of dataset ``name``: given, and a folder (one-line errors otherwise)."""
    if root is None:
        raise UserError(f"--data-path is required for dataset '{name}'")
    if Path(root).is_file():
        raise UserError(f"--data-path '{root}' is a file, not a folder: pass the folder holding the dataset "
                        f"(dataset '{name}'; layouts: README.md, Preparing datasets)")
    if not Path(root).is_dir():
        raise UserError(f"--data-path '{root}' does not exist (dataset '{name}'): pass the dataset's folder "
                        "(layouts: README.md, Preparing datasets)")
    return Path(root)


def _no_download(name: str, root: str | Path | None, download: bool) -> Path:
    if root is None:
        raise UserError(f"--data-path is required for dataset '{name}'")
    if download:
        raise UserError(f"--download fetches cifar10 / cifar100 only; prepare '{name}' as README: Preparing datasets")
    return checked_root(name, root)


def build_imagenet(root: str | None, split: str, transform: Transform = None, download: bool = False,
                   offline: bool = False) -> Dataset:
    return imagenet(_no_download("imagenet", root, download), split, transform)


def build_folder(root: str | None, split: str, transform: Transform = None, download: bool = False,
                 offline: bool = False) -> Dataset:
    root = _no_download("folder", root, download)
    return image_folder(root / split, transform, f"--dataset folder: the {split}")


def build_digits(root: str | None, split: str, transform: Transform = None, download: bool = False,
                 offline: bool = False) -> Dataset:
    return Digits(split, transform)


def cifar_builder(name: str) -> Callable[..., Dataset]:
    """The builder of ``cifar10`` / ``cifar100``; ``download`` fetches the archive first when missing
    (checksum verified)."""
    def build(root: str | None, split: str, transform: Transform = None, download: bool = False,
              offline: bool = False) -> Dataset:
        if root is None:
            raise UserError(f"--data-path is required for dataset '{name}'")
        if download:
            from classification.data.download import download_cifar

            download_cifar(root, name, offline)
        return CIFARPickle(checked_root(name, root), name, split, transform)

    return build


def build_dataset(name: str, root: str | None, split: str, transform: Transform = None, download: bool = False,
                  offline: bool = False) -> Dataset:
    """``split`` is ``train`` or ``val``; the dataset carries ``num_classes``. The registered
    dataset ``name`` (:mod:`classification.data.catalog`) builds it."""
    from classification.data.catalog import DATASETS

    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}': choose from {', '.join(DATASETS.names())}")
    return DATASETS.get(name).build(root, split, transform, download=download, offline=offline)
