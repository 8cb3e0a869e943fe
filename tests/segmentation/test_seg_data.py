"""Cityscapes loading: label-id mapping, list files, clear errors, crop padding, samplers."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distkd.errors import UserError
from segmentation.datasets import Cityscapes, EvalTransform, IterationBatchSampler, ShardSampler, TrainTransform
from segmentation.datasets.cityscapes import IGNORE_INDEX


def _write(root: Path, split: str, stem: str, label: np.ndarray, suffix: str = "_gtFine_labelIds.png") -> None:
    city = stem.split("_")[0]
    (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
    (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((*label.shape, 3), np.uint8)).save(
        root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
    )
    Image.fromarray(label.astype(np.uint8)).save(root / "gtFine" / split / city / f"{stem}{suffix}")


def test_label_ids_map_to_train_ids(tmp_path):
    label = np.zeros((64, 128), np.uint8)  # 0 = unlabeled
    label[5, 7] = 26  # car -> train id 13
    label[10, 20] = 7  # road -> 0
    label[11, 21] = 33  # bicycle -> 18
    label[12, 22] = 4  # static -> ignore
    label[13, 23] = 9  # parking (not evaluated) -> ignore
    _write(tmp_path, "val", "aachen_000000_000019", label)
    _, lbl = Cityscapes(tmp_path, "val", transform=EvalTransform())[0][:2]
    assert lbl.dtype == torch.long and lbl.shape == (64, 128)
    assert (lbl[5, 7], lbl[10, 20], lbl[11, 21]) == (13, 0, 18)
    assert lbl[12, 22] == lbl[13, 23] == lbl[0, 0] == IGNORE_INDEX
    assert set(lbl.unique().tolist()) == {0, 13, 18, IGNORE_INDEX}


def test_label_train_ids_are_preferred_and_read_as_is(tmp_path):
    label = np.full((64, 128), 26, np.uint8)
    _write(tmp_path, "val", "aachen_000000_000019", label)
    _write(tmp_path, "val", "aachen_000000_000019", np.full((64, 128), 3, np.uint8), "_gtFine_labelTrainIds.png")
    _, lbl, name = Cityscapes(tmp_path, "val", transform=EvalTransform())[0]
    assert name == "aachen_000000_000019"
    assert (lbl == 3).all()


def test_list_file_drives_the_dataset(cityscapes, tmp_path):
    lines = [
        "leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png\t"
        "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png",
        "",
    ]
    (tmp_path / "train.lst").write_text("\n".join(lines))
    dataset = Cityscapes(cityscapes, "train", tmp_path / "train.lst", EvalTransform())
    assert len(dataset) == 1 and dataset[0][2] == "aachen_000001_000019"
    assert len(Cityscapes(cityscapes, "train", transform=EvalTransform())) == 4


@pytest.mark.parametrize("case", ["no_root", "no_split", "no_label", "bad_line", "missing_file"])
def test_missing_or_malformed_dataset_is_one_clear_error(cityscapes, tmp_path, case):
    root, list_file = cityscapes, None
    if case == "no_root":
        root = tmp_path / "nowhere"
    elif case == "no_split":
        for f in (cityscapes / "leftImg8bit" / "train").rglob("*.png"):
            f.unlink()
    elif case == "no_label":
        next((cityscapes / "gtFine" / "train").rglob("*.png")).unlink()
    else:
        list_file = tmp_path / "train.lst"
        line = "a b c" if case == "bad_line" else "leftImg8bit/train/x_leftImg8bit.png gtFine/train/x.png"
        list_file.write_text(line + "\n")
    with pytest.raises(UserError) as err:
        Cityscapes(root, "train", list_file, EvalTransform())
    assert "\n" not in str(err.value) and str(root if case == "no_root" else "") in str(err.value)


def test_label_of_another_size_is_reported(cityscapes):
    label = next((cityscapes / "gtFine" / "val").rglob("*_labelIds.png"))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(label)
    dataset = Cityscapes(cityscapes, "val", transform=EvalTransform())
    with pytest.raises(UserError, match="one-channel map"):
        for i in range(len(dataset)):
            dataset[i]


def test_crop_pads_with_ignore(cityscapes):
    dataset = Cityscapes(cityscapes, "val", transform=TrainTransform((96, 160), scale_range=(1.0, 1.0), flip=False))
    image, label, _ = dataset[(0, 123)]
    assert image.shape == (3, 96, 160) and label.shape == (96, 160)
    assert (label[64:] == IGNORE_INDEX).all() and (label[:, 128:] == IGNORE_INDEX).all()
    assert (image[:, 64:] == 0).all() and (image[:, :, 128:] == 0).all()  # 0 = the mean colour
    assert (label[:64, :128] != IGNORE_INDEX).any()


def test_random_transform_is_reproducible_from_its_seed(cityscapes):
    dataset = Cityscapes(cityscapes, "train", transform=TrainTransform((32, 64)))
    a, b, c = dataset[(1, 7)], dataset[(1, 7)], dataset[(1, 8)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == c[0].shape == (3, 32, 64)


def test_iteration_sampler_resumes_and_splits_ranks():
    full = list(IterationBatchSampler(10, 2, max_iterations=8, seed=3))
    assert list(IterationBatchSampler(10, 2, max_iterations=8, start_iteration=5, seed=3)) == full[5:]
    ranks = [list(IterationBatchSampler(10, 2, 5, rank=r, world_size=2, seed=3)) for r in (0, 1)]
    first_epoch = [i for batch in ranks[0][:2] + ranks[1][:2] for i, _ in batch]  # 2 iterations x 2 ranks x 2
    assert len(set(first_epoch)) == 8
    assert sorted(ShardSampler(5, 0, 2)) + sorted(ShardSampler(5, 1, 2)) == [0, 2, 4, 1, 3]
