"""docs/own_data.md, run as written on a folder of real images (scikit-learn's digits as PNGs).

The commands are read from the document; the test only shortens them (1 epoch, a few iterations,
small images) and serves the pretrained teacher weights from a local torch hub cache."""
import re
import shlex

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from classification.evaluate import main as evaluate_main
from classification.train import main as train_main
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "own_data.md").read_text()
COMMANDS = re.findall(r"^python tools/(?:train|test)\.py [^\n]+", DOC, flags=re.M)
QUICK_TRAIN = ["--epochs", "1", "--max-iters-per-epoch", "3", "--image-size", "32", "--batch-size", "16",
               "--workers", "0", "--device", "cpu", "--log-interval", "1"]
QUICK_TEST = ["--image-size", "32", "--batch-size", "16", "--workers", "0", "--device", "cpu"]


def write_digits_folder(root, per_class_train=12, per_class_val=4, classes=4):
    from sklearn.datasets import load_digits

    data = load_digits()
    for c in range(classes):
        images = data.images[data.target == c]
        for split, chunk in (("train", images[:per_class_train]),
                             ("val", images[per_class_train:per_class_train + per_class_val])):
            folder = root / split / f"digit_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(chunk):
                Image.fromarray((image * 255 / 16).astype(np.uint8)).save(folder / f"{i:04d}.png")


def test_the_doc_has_the_walk():
    assert [c.split()[1] for c in COMMANDS] == ["tools/train.py", "tools/train.py", "tools/test.py"]


@pytest.mark.slow
def test_own_data_walk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_digits_folder(tmp_path / "data" / "my_images")
    # the ImageNet weights of the teacher, as the first online run leaves them in the cache
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[-1])
    teacher_cmd, student_cmd, eval_cmd = COMMANDS
    teacher = train_main(shlex.split(teacher_cmd)[2:] + QUICK_TRAIN + ["--offline"])
    assert (tmp_path / "experiments" / "my_teacher" / "best.pth").is_file()
    student = train_main(shlex.split(student_cmd)[2:] + QUICK_TRAIN)
    assert (tmp_path / "experiments" / "my_student_dist" / "teacher.yaml").is_file()
    stats = evaluate_main(shlex.split(eval_cmd)[2:] + QUICK_TEST)
    assert 0.0 <= stats["top1"] <= 100.0 and teacher["best_top1"] >= 0 and student["best_top1"] >= 0
    assert stats["top1"] == pytest.approx(student["best_top1"])  # best.pth re-evaluated gives its score
