"""Datasets, transforms and loaders for classification."""
from classification.data.datasets import build_dataset
from classification.data.loaders import build_loaders
from classification.data.transforms import build_transform

__all__ = ["build_dataset", "build_loaders", "build_transform"]
