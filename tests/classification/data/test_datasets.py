import pytest
import torch

from classification.config import load_config, parse_args
from classification.data import build_dataset, build_loaders, build_transform
from classification.data.loaders import SkipBadImages
from classification.options import TrainConfig
from distkd.errors import UserError
from distkd.utils.distributed import DistInfo
from tests.conftest import write_cifar


def eval_args(dataset: str, root, **over) -> TrainConfig:
    args = parse_args(["--dataset", dataset] + (["--data-path", str(root)] if root else []))
    args.workers = 0
    vars(args).update(over)
    return TrainConfig.parsed(args)


def test_class_folders(imagefolder):
    args = eval_args("imagenet", imagefolder, image_size=16)
    train = build_dataset("imagenet", str(imagefolder), "train", build_transform(args.data, args.augment, train=True))
    val = build_dataset("imagenet", str(imagefolder), "val", build_transform(args.data, args.augment, train=False))
    assert (len(train), len(val), train.num_classes) == (12, 6, 3)
    image, label = train[5]
    assert image.shape == (3, 16, 16) and label == 1
    assert val[0][0].shape == (3, 16, 16)


def test_meta_list_files_take_precedence(imagenet_lists):
    val = build_dataset("imagenet", str(imagenet_lists), "val")
    train = build_dataset("imagenet", str(imagenet_lists), "train")
    assert len(train) == 6 and len(val) == 3
    assert train.num_classes == 5  # max label + 1, from the data
    assert [label for _, label in val] == [0, 1, 2]


def test_malformed_list_line_is_named(imagenet_lists):
    (imagenet_lists / "meta" / "val.txt").write_text("a.JPEG 1\nb.JPEG\n")
    with pytest.raises(UserError, match="malformed line 2"):
        build_dataset("imagenet", str(imagenet_lists), "val")


@pytest.mark.parametrize("name,classes", [("cifar100", 100), ("cifar10", 10)])
def test_cifar_pickles(tmp_path, name, classes):
    root = write_cifar(tmp_path, name, n_train=10, n_test=4)
    args = eval_args(name, root)
    train = build_dataset(name, str(root), "train", build_transform(args.data, args.augment, train=True))
    val = build_dataset(name, str(root), "val", build_transform(args.data, args.augment, train=False))
    assert train.num_classes == classes and len(train) == 10 and len(val) == 4
    image, label = val[3]
    assert image.shape == (3, 32, 32) and label == 3


def test_digits_is_embedded_and_split_80_20():
    train, val = build_dataset("digits", None, "train"), build_dataset("digits", None, "val")
    assert len(train) + len(val) == 1797 and len(val) == 360 and train.num_classes == 10
    image, _ = build_dataset("digits", None, "val", build_transform(eval_args("digits", None).data, train=False))[0]
    assert image.shape == (3, 32, 32)


@pytest.mark.parametrize(
    "dataset,make,message",
    [
        ("imagenet", lambda p: p / "missing", "does not exist"),
        ("imagenet", lambda p: p, "ImageNet val split not found: expected class folders"),
        ("cifar100", lambda p: p, "cifar100 file not found: expected .*cifar-100-python/test"),
        ("cifar10", lambda p: p, "cifar10 file not found: expected .*cifar-10-batches-py/test_batch"),
        ("imagenet", None, "--data-path is required"),
    ],
)
def test_missing_or_wrong_layout_is_one_clear_error(tmp_path, dataset, make, message):
    with pytest.raises(UserError, match=message):
        build_dataset(dataset, str(make(tmp_path)) if make else None, "val")


def test_corrupt_image_fails_clearly_or_is_skipped(imagefolder):
    bad = imagefolder / "train" / "n02" / "n02_0.JPEG"
    bad.write_bytes(b"")
    dataset = build_dataset("imagenet", str(imagefolder), "train")
    index = [i for i, (p, _) in enumerate(dataset.samples) if p == str(bad)][0]
    with pytest.raises(UserError, match="unreadable image .*--skip-bad-images"):
        dataset[index]
    image, label = SkipBadImages(dataset)[index]
    assert label == 1  # the next image of the same class


def test_loaders_shard_validation_without_duplicates(imagefolder):
    args = load_config(["--dataset", "imagenet", "--data-path", str(imagefolder), "--image-size", "16", "-b", "2",
                       "-j", "0"])
    seen = []
    for rank in range(2):
        _, val, classes, _ = build_loaders(args, DistInfo(rank=rank, world_size=2))
        seen += list(val.sampler)
        assert classes == 3
    assert sorted(seen) == list(range(6))


def test_batch_larger_than_dataset_is_refused(imagefolder):
    args = load_config(["--dataset", "imagenet", "--data-path", str(imagefolder), "-b", "13", "-j", "0"])
    with pytest.raises(UserError, match="batch size 13 .* larger than the 12 training images"):
        build_loaders(args, DistInfo())


def test_mixup_gives_soft_targets(imagefolder):
    args = load_config(["--dataset", "imagenet", "--data-path", str(imagefolder), "--image-size", "16", "-b", "4",
                       "-j", "0", "--mixup", "0.8", "--cutmix", "1.0", "--aa", "rand-m9-mstd0.5", "--reprob", "0.2"])
    train, _, _, mixup = build_loaders(args, DistInfo())
    images, targets = next(iter(train))
    mixed, soft = mixup(images, targets)
    assert soft.shape == (4, 3) and torch.allclose(soft.sum(1), torch.ones(4))
