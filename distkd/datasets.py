"""Datasets by name: each registered once with what the trainers need to know of it.

A task's data package registers its datasets (``classification/data/registered.py``); the command
line's ``--dataset`` choices, default image size, normalisation, data path and transform recipe
all read the entry. Adding a dataset is one :func:`register_dataset` call (docs/own_data.md).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distkd.registry import Registry

DATASETS = Registry("dataset")


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset. ``build(root, split, transform, download=False, offline=False)`` returns a
    dataset with ``num_classes`` (``num_classes`` here: when known without reading the data);
    ``recipe``: the name of the transform family (and so which augmentation options apply);
    ``default_path``: the ``--data-path`` when none is given (None: the dataset needs none or the
    user must give one)."""

    name: str
    build: Callable[..., Any]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    recipe: str
    default_path: str | None = None
    num_classes: int | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.build(*args, **kwargs)


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Registers ``entry`` under its name (once: a second registration of a name is an error)."""
    return DATASETS.register(entry.name)(entry)


def dataset_entry(name: str) -> DatasetEntry:
    return DATASETS.get(name)
