"""The classification datasets, each registered once (:class:`~distkd.datasets.DatasetEntry`).

Normalisation: the original's defaults when ``--image-mean`` / ``--image-std`` are not given
(ImageNet statistics; CIFAR-10 statistics for **both** CIFAR datasets, as the original). Your own
dataset is one more :func:`~distkd.datasets.register_dataset` call (docs/own_data.md).
"""
from __future__ import annotations

from classification.data.datasets import build_digits, build_folder, build_imagenet, cifar_builder
from distkd.datasets import DATASETS, DatasetEntry, dataset_entry, register_dataset

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)  # dist_cifar.yaml's values
DIGITS_MEAN, DIGITS_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)

register_dataset(DatasetEntry("imagenet", build_imagenet, 224, IMAGENET_MEAN, IMAGENET_STD, recipe="imagenet",
                              default_path="data/imagenet"))
register_dataset(DatasetEntry("cifar100", cifar_builder("cifar100"), 32, CIFAR_MEAN, CIFAR_STD, recipe="cifar",
                              default_path="data/cifar", num_classes=100))
register_dataset(DatasetEntry("cifar10", cifar_builder("cifar10"), 32, CIFAR_MEAN, CIFAR_STD, recipe="cifar",
                              default_path="data/cifar", num_classes=10))
register_dataset(DatasetEntry("digits", build_digits, 32, DIGITS_MEAN, DIGITS_STD, recipe="digits", num_classes=10))
# Your own class folders under --data-path/{train,val}: as ImageNet, what pretrained teachers expect.
register_dataset(DatasetEntry("folder", build_folder, 224, IMAGENET_MEAN, IMAGENET_STD, recipe="imagenet"))

__all__ = ["DATASETS", "DatasetEntry", "dataset_entry", "register_dataset"]
