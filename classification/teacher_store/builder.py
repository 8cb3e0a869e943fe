"""Build a teacher store: the teacher once over the training set, under V replayable views per image.

Images are processed in chunks of ``chunk_images``; after each chunk the arrays are flushed and the
chunk is recorded in ``progress.json``. A killed build, run again with the same command, skips the
recorded chunks and redoes the rest; view parameters depend only on (store seed, index, view) and
each chunk is computed in the same batches, so the finished file set is byte-identical to that of
an uninterrupted build. ``progress.json`` is removed and ``complete`` set when the last chunk is in.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import nn
from torch.utils.data import DataLoader, Dataset

from classification.teacher_store.store import (
    FORMAT,
    MANIFEST,
    PROGRESS,
    VERSION,
    array_specs,
    topk_split,
    write_json_atomic,
)
from classification.teacher_store.views import ReplayRecipe, view_rng
from distkd.errors import UserError
from distkd.step import autocast
from distkd_cli.callbacks import Callbacks, StepState

FP16_MAX = float(np.finfo(np.float16).max)


class ViewsOfImage(Dataset):
    """Image ``i`` -> ``(i, views (V, 7), images (V, 3, H, W))`` for a store build."""

    def __init__(self, raw: Dataset, recipe: ReplayRecipe, views: int | None, seed: int) -> None:
        self.raw, self.recipe, self.views, self.seed = raw, recipe, views, seed

    def __len__(self) -> int:
        return len(self.raw)

    def views_of(self, index: int, image) -> np.ndarray:
        if self.views is None:  # exact: every view
            return self.recipe.exact_views(image)
        return np.stack([self.recipe.draw(image, view_rng(self.seed, index, v)) for v in range(self.views)])

    def __getitem__(self, index: int):
        image, _ = self.raw[index]
        views = self.views_of(index, image)
        return index, torch.from_numpy(views), torch.stack([self.recipe.apply(image, v) for v in views])


def _config(manifest: dict) -> dict:
    """The parts of a manifest that must agree for a build to resume into it."""
    return {k: manifest[k] for k in ("teacher", "dataset", "recipe", "views", "outputs", "chunk_images")}


def open_arrays(out: Path, manifest: dict, log: Callable[[str], None]) -> tuple[dict | None, set[int]]:
    """The store's arrays and the chunks already written: a new store, or the one a killed build left
    (None: that store is complete)."""
    if not (out / MANIFEST).is_file():
        write_json_atomic(out / PROGRESS, {"done_chunks": []})
        write_json_atomic(out / MANIFEST, manifest)
        return {name: open_memmap(out / f"{name}.npy", mode="w+", dtype=spec["dtype"], shape=tuple(spec["shape"]))
                for name, spec in manifest["arrays"].items()}, set()
    old = json.loads((out / MANIFEST).read_text())
    if _config(old) != _config(manifest):
        raise UserError(f"'{out}' holds a store of another teacher, dataset, recipe or layout: choose another "
                        "--out folder, or delete that one")
    if old.get("complete"):
        log(f"store '{out}' is already complete")
        return None, set()
    done = set(json.loads((out / PROGRESS).read_text())["done_chunks"]) if (out / PROGRESS).is_file() else set()
    log(f"resuming store '{out}': {len(done)} chunk(s) already written")
    return {name: open_memmap(out / f"{name}.npy", mode="r+") for name in manifest["arrays"]}, done


def store_logits(arrays: dict, rows: np.ndarray, logits: torch.Tensor, topk: int) -> None:
    """Write the rows' logits (float16), or with ``topk`` their top-k and the log-sum-exp of the rest."""
    peak = logits.abs().max().item()
    if not peak <= FP16_MAX:  # also catches NaN
        raise UserError(f"the teacher's logits reach {peak:.3g}, beyond float16's range ({FP16_MAX:.0f}): "
                        "is it a trained teacher with its own weights (--teacher-ckpt)?")
    if topk:
        values, top_classes, rest = topk_split(logits, topk)
        arrays["topk_logits"][rows] = values.numpy().astype(np.float16)
        arrays["topk_classes"][rows] = top_classes.numpy().astype(arrays["topk_classes"].dtype)
        arrays["rest_logsumexp"][rows] = rest.numpy()
    else:
        arrays["logits"][rows] = logits.numpy().astype(np.float16)


def build_store(
    out: str | Path,
    teacher: nn.Module,
    raw: Dataset,
    recipe: ReplayRecipe,
    teacher_id: dict,
    dataset_id: dict,
    views: int | None = None,
    topk: int = 0,
    seed: int = 0,
    chunk_images: int = 256,
    batch_size: int = 256,
    workers: int = 0,
    device: torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
    log: Callable[[str], None] = print,
    callbacks: Callbacks | None = None,
) -> dict:
    """Write (or finish) the store in ``out``; returns its manifest. ``views=None``: exact mode.
    ``callbacks`` (default: ``DISTKD_CALLBACKS``'s) see the end of each stored batch, ``epoch`` the chunk."""
    callbacks = Callbacks.from_env() if callbacks is None else callbacks
    out = Path(out)
    device = device or torch.device("cpu")
    out.mkdir(parents=True, exist_ok=True)
    n = len(raw)
    if n == 0:
        raise UserError("the training set is empty: nothing to store")
    teacher = teacher.to(device).eval()
    source = ViewsOfImage(raw, recipe, views, seed)
    _, first_views, first_images = source[0]
    per_image = len(first_views)
    with torch.no_grad():
        classes = int(teacher(first_images[:1].to(device)).shape[-1])
    if topk and not 0 < topk < classes:
        raise UserError(f"--topk {topk}: must be between 1 and the number of classes - 1 ({classes - 1})")
    manifest = {
        "format": FORMAT, "version": VERSION, "teacher": teacher_id, "dataset": dataset_id,
        "recipe": recipe.description, "views": {"per_image": per_image, "exact": views is None, "seed": seed},
        "outputs": {"classes": classes, "topk": topk or None, "dtype": "float16"},
        "chunk_images": chunk_images, "arrays": array_specs(n, per_image, classes, topk), "complete": False,
    }
    arrays, done = open_arrays(out, manifest, log)
    if arrays is None:
        return json.loads((out / MANIFEST).read_text())
    chunks = [range(s, min(n, s + chunk_images)) for s in range(0, n, chunk_images)]
    start, images_done = time.time(), 0
    for c, chunk in enumerate(chunks):
        if c in done:
            continue
        loader = DataLoader(torch.utils.data.Subset(source, list(chunk)), batch_size=max(1, batch_size // per_image),
                            num_workers=workers)
        for b, (indices, view_params, images) in enumerate(loader):
            arrays["views"][indices.numpy()] = view_params.numpy()
            flat = images.flatten(0, 1).to(device)
            outs = []
            with torch.no_grad(), autocast(device, amp_dtype):
                for part in flat.split(batch_size):
                    outs.append(teacher(part).float())
            store_logits(arrays, indices.numpy(), torch.cat(outs).view(len(indices), per_image, classes).cpu(), topk)
            callbacks.on_step_end(StepState(c, b + 1))  # batch b of chunk c stored, not yet flushed
        for arr in arrays.values():
            arr.flush()
        done.add(c)
        write_json_atomic(out / PROGRESS, {"done_chunks": sorted(done)})
        images_done += len(chunk)
        rate = images_done / max(1e-9, time.time() - start)
        log(f"chunk {c + 1}/{len(chunks)}: {len(done) * chunk_images if len(done) < len(chunks) else n}/{n} "
            f"images, {rate:.1f} img/s ({rate * per_image:.0f} views/s)")
    del arrays
    manifest["complete"] = True
    write_json_atomic(out / MANIFEST, manifest)
    (out / PROGRESS).unlink(missing_ok=True)
    return manifest
