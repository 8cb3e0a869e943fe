"""The teacher store's file set: a JSON manifest and memory-mapped ``.npy`` arrays.

    DIR/manifest.json          format, version, teacher, dataset, recipe, views, outputs, arrays
    DIR/views.npy              int32   (N, V, 7)   view parameters (see views.py)
    DIR/logits.npy             float16 (N, V, C)   full logits            (default)
    DIR/topk_logits.npy        float16 (N, V, K)   the K largest logits   (--topk K)
    DIR/topk_classes.npy       int16/32 (N, V, K)  their classes
    DIR/rest_logsumexp.npy     float32 (N, V)      log sum_{j not in top-K} exp(z_j)

Top-K rebuild (:func:`rebuild_topk`): the K stored logits exactly, and every other class the logit
``rest_logsumexp - log(C - K)``: at tau = 1 the rebuilt softmax equals the full one on the stored
classes and spreads the rest's mass, ``exp(rest_logsumexp - logsumexp(z))``, evenly over the others.

Identity: the manifest records the teacher (model name, checkpoint SHA-256), the dataset (name,
number of images, SHA-256 of its file list or pixels) and the recipe (the transform's steps);
:func:`check_identity` refuses a store that differs in any of them with one line saying which.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from distkd.errors import UserError
from distkd.utils.checkpoint import atomic_write

FORMAT = "distkd-teacher-store"
VERSION = 1
MANIFEST = "manifest.json"
PROGRESS = "progress.json"


def write_json_atomic(path: Path, data: dict) -> None:
    atomic_write((json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), path)


def array_specs(images: int, views: int, classes: int, topk: int) -> dict[str, dict]:
    """Name -> {dtype, shape} of a store's arrays."""
    specs = {"views": {"dtype": "int32", "shape": [images, views, 7]}}
    if topk:
        index_dtype = "int16" if classes <= np.iinfo(np.int16).max else "int32"
        specs["topk_logits"] = {"dtype": "float16", "shape": [images, views, topk]}
        specs["topk_classes"] = {"dtype": index_dtype, "shape": [images, views, topk]}
        specs["rest_logsumexp"] = {"dtype": "float32", "shape": [images, views]}
    else:
        specs["logits"] = {"dtype": "float16", "shape": [images, views, classes]}
    return specs


# ---- identity -----------------------------------------------------------------------------------
def dataset_fingerprint(dataset: Dataset) -> str:
    """SHA-256 of what a dataset's index ``i`` means: its file list (relative path and label per
    image, for folders and list files) or its pixels and labels (CIFAR, digits), after any subset."""
    h = hashlib.sha256()
    while isinstance(dataset, Subset):
        h.update(b"subset:" + np.asarray(dataset.indices, dtype=np.int64).tobytes())
        dataset = dataset.dataset
    if hasattr(dataset, "samples"):
        root = str(getattr(dataset, "root", None) or getattr(dataset, "image_root", ""))
        for path, label in dataset.samples:
            h.update(f"{os.path.relpath(path, root)}\t{label}\n".encode())
    elif hasattr(dataset, "data") or hasattr(dataset, "images"):
        pixels = dataset.data if hasattr(dataset, "data") else dataset.images
        h.update(np.ascontiguousarray(pixels).tobytes())
        h.update(np.asarray(dataset.targets, dtype=np.int64).tobytes())
    else:
        raise UserError(f"--teacher-store: cannot fingerprint a {type(dataset).__name__} (no file list or pixels)")
    return h.hexdigest()


def teacher_identity(model: str, ckpt: str | None, pretrained: bool) -> dict[str, str]:
    """The teacher's model name and the SHA-256 of its checkpoint (or which built-in weights)."""
    from distkd_cli.download import file_digest

    if ckpt:
        if not Path(ckpt).is_file():
            raise UserError(f"teacher checkpoint not found: expected a file at '{ckpt}'")
        weights = file_digest(ckpt)
    else:
        weights = "pretrained" if pretrained else "random"
    return {"model": model, "checkpoint_sha256": weights}


def check_identity(manifest: dict, teacher: dict, dataset: dict, recipe: list[dict], where: str) -> None:
    """One-line refusal when the store was made for another teacher, dataset or recipe."""
    stored_t = manifest["teacher"]
    if stored_t["model"] != teacher["model"]:
        raise UserError(f"teacher store '{where}' was built with teacher {stored_t['model']}, not "
                        f"{teacher['model']}: pass --teacher-model {stored_t['model']} or build a store for it")
    if stored_t["checkpoint_sha256"] != teacher["checkpoint_sha256"]:
        raise UserError(f"teacher store '{where}' was built from another teacher checkpoint (SHA-256 "
                        f"{stored_t['checkpoint_sha256'][:12]}..., yours {teacher['checkpoint_sha256'][:12]}...): "
                        "rebuild the store with tools/build_teacher_store.py")
    stored_d = manifest["dataset"]
    for key in ("name", "images", "sha256"):
        if stored_d[key] != dataset[key]:
            raise UserError(f"teacher store '{where}' was built on another training set ({key}: stored "
                            f"{str(stored_d[key])[:16]}, yours {str(dataset[key])[:16]}): check --dataset / "
                            "--data-path / --train-fraction, or rebuild the store")
    stored_r = manifest["recipe"]
    if stored_r != recipe:
        diff = next((f"step {i}: stored {a}, yours {b}" for i, (a, b) in enumerate(zip(stored_r, recipe)) if a != b),
                    f"stored {len(stored_r)} steps, yours {len(recipe)}")
        raise UserError(f"teacher store '{where}' was built with another augmentation recipe ({diff}): use the "
                        "store's options (--image-size, --cutout-length, ...) or rebuild the store")


# ---- top-K ----------------------------------------------------------------------------------------
def topk_split(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(values, classes, rest_logsumexp)`` of float32 logits ``(..., C)``."""
    values, classes = logits.topk(k, dim=-1)
    rest = logits.scatter(-1, classes, float("-inf"))
    return values, classes, torch.logsumexp(rest, dim=-1)


def rebuild_topk(values: torch.Tensor, classes: torch.Tensor, rest_lse: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Full logits ``(..., C)`` from top-K: stored classes exact, the others ``rest_lse - log(C - K)``."""
    k = values.shape[-1]
    fill = (rest_lse.float() - math.log(num_classes - k)).unsqueeze(-1)
    out = fill.expand(*values.shape[:-1], num_classes).clone()
    return out.scatter(-1, classes.long(), values.float())


# ---- reading ----------------------------------------------------------------------------------------
class TeacherStore:
    """A complete store opened read-only; arrays are memory-mapped (workers share the page cache)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise UserError(f"--teacher-store '{folder}' holds no {MANIFEST}: build one with "
                            "tools/build_teacher_store.py")
        try:
            manifest = json.loads(path.read_text())
        except ValueError as err:
            raise UserError(f"'{path}' is not a teacher-store manifest ({err})") from None
        if manifest.get("format") != FORMAT:
            raise UserError(f"'{path}' is not a teacher-store manifest (format {manifest.get('format')!r})")
        if manifest.get("version") != VERSION:
            raise UserError(f"teacher store '{folder}' has format version {manifest.get('version')}; this distkd "
                            f"reads version {VERSION}: rebuild it with tools/build_teacher_store.py")
        if not manifest.get("complete"):
            raise UserError(f"teacher store '{folder}' is incomplete (its build stopped): run the same "
                            "tools/build_teacher_store.py command again to finish it")
        self.manifest = manifest
        self.num_classes = int(manifest["outputs"]["classes"])
        self.topk = int(manifest["outputs"]["topk"] or 0)
        self.views_per_image = int(manifest["views"]["per_image"])
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:  # opened lazily: each DataLoader worker maps the files itself
            self._arrays = {}
            for name, spec in self.manifest["arrays"].items():
                arr = np.load(self.folder / f"{name}.npy", mmap_mode="r")
                if list(arr.shape) != spec["shape"] or str(arr.dtype) != spec["dtype"]:
                    raise UserError(f"'{self.folder / name}.npy' is {arr.dtype}{list(arr.shape)}, the manifest says "
                                    f"{spec['dtype']}{spec['shape']}: the store is damaged, rebuild it")
                self._arrays[name] = arr
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def __len__(self) -> int:
        return int(self.manifest["arrays"]["views"]["shape"][0])

    def view(self, index: int, view: int) -> np.ndarray:
        return np.array(self.arrays["views"][index, view])

    def logits(self, index: int, view: int) -> torch.Tensor:
        """The teacher's float32 logits ``(C,)`` for view ``view`` of image ``index`` (rebuilt from top-K)."""
        a = self.arrays
        if not self.topk:
            return torch.from_numpy(np.array(a["logits"][index, view], dtype=np.float32))
        values = torch.from_numpy(np.array(a["topk_logits"][index, view], dtype=np.float32))
        classes = torch.from_numpy(np.array(a["topk_classes"][index, view], dtype=np.int64))
        rest = torch.tensor(float(a["rest_logsumexp"][index, view]))
        return rebuild_topk(values, classes, rest, self.num_classes)
