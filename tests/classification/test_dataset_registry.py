"""Datasets come from one registry: the built-in ones are entries of it, and a new dataset is one
registration (docs/own_data.md's ``stripes.py``, run here as written) that the trainer and the
evaluation tool then read like any other."""
import re

import pytest
import yaml

from classification.config import build_parser, load_config
from classification.data.catalog import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN
from classification.data.transforms import build_transform
from distkd.datasets import DATASETS, DatasetEntry, dataset_entry, register_dataset
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "own_data.md").read_text()
SECTION = DOC.split("## A dataset of another kind")[1]
STRIPES = re.search(r"```python\n(.*?)```", SECTION, flags=re.S).group(1)
QUICK = ["--model", "cifar_resnet8", "--epochs", "1", "--batch-size", "16", "--workers", "0", "--device", "cpu",
         "--warmup-epochs", "0", "--lr", "0.05", "--log-interval", "1"]


@pytest.fixture(scope="module")
def stripes():
    """The document's ``stripes.py``, registered once for this module's tests."""
    if "stripes" not in DATASETS:
        exec(compile(STRIPES, "stripes.py", "exec"), {"__name__": "stripes"})
    return dataset_entry("stripes")


def test_the_builtin_datasets_are_registered_once_with_what_the_trainer_reads():
    assert set(DATASETS.names()) >= {"imagenet", "cifar100", "cifar10", "digits", "folder"}
    choices = next(a.choices for a in build_parser()._actions if a.dest == "dataset")
    assert set(choices) == set(DATASETS.names())
    cifar100, imagenet = dataset_entry("cifar100"), dataset_entry("imagenet")
    assert (cifar100.image_size, cifar100.mean, cifar100.std, cifar100.recipe) == (32, CIFAR_MEAN, CIFAR_STD, "cifar")
    assert (imagenet.image_size, imagenet.mean, imagenet.default_path) == (224, IMAGENET_MEAN, "data/imagenet")
    assert load_config(["--dataset", "cifar10"]).data.data_path == "data/cifar"  # the original's location
    with pytest.raises(KeyError, match="registered twice"):
        register_dataset(DatasetEntry("digits", cifar100.build, 8, CIFAR_MEAN, CIFAR_STD, recipe="cifar"))


def test_a_registered_dataset_gets_its_size_normalisation_and_recipe(stripes):
    config = load_config(["--dataset", "stripes"])
    assert config.data.size == 16 and config.data.data_path is None
    assert config.data.normalization == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    train = build_transform(config.data, config.augment, train=True)
    assert "RandomCrop" in repr(train) and "RandomResizedCrop" not in repr(train)  # the cifar recipe
    image, label = stripes.build(None, "train", train)[1]
    assert tuple(image.shape) == (3, 16, 16) and label == 1


def test_a_registered_dataset_trains_and_evaluates(tmp_path, stripes):
    from classification.evaluate import main as evaluate_main
    from classification.train import main as train_main

    stats = train_main(["--dataset", "stripes", *QUICK, "--output", str(tmp_path), "--experiment", "s"])
    recorded = yaml.safe_load((tmp_path / "s" / "args.yaml").read_text())
    assert recorded["dataset"] == "stripes" and recorded["data_path"] is None and stats["best_top1"] >= 0
    evaluated = evaluate_main(["--dataset", "stripes", "--model", "cifar_resnet8", "--ckpt",
                               str(tmp_path / "s" / "best.pth"), "--workers", "0", "--device", "cpu"])
    assert evaluated["top1"] == pytest.approx(stats["top1"])
