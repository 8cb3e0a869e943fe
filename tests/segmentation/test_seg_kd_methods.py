"""Segmentation builds its KD from the registry: the paper's DIST (main + 0.4 aux, tau from
--kd-temperature, weight from --lambda-kd) unchanged, other per-pixel methods run, the rest refused."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from distkd.errors import UserError
from distkd.losses.dist_kd import dist_loss
from segmentation.config import load_config, parse_args
from segmentation.options import SegConfig
from segmentation.train import build_distiller, main

TINY = ["--crop-size", "32", "64", "--batch-size", "2", "--workers", "0", "--no-progress", "--log-interval", "1",
        "--val-interval", "100", "--device", "cpu", "--max-iterations", "2"]


def kd_args(teacher_ckpt: Path, *extra: str) -> list[str]:
    return ["--teacher-model", "deeplabv3", "--teacher-backbone", "resnet18", "--teacher-pretrained",
            str(teacher_ckpt), "--student-model", "psp", "--student-backbone", "resnet18", *extra]


def test_the_papers_options_build_the_papers_dist(teacher_ckpt):
    args = parse_args(kd_args(teacher_ckpt, "--kd-temperature", "2", "--lambda-kd", "1.5"))
    assert (args.kd, args.kd_loss_kwargs, args.kd_loss_weight) == ("dist", {"tau": 2.0}, 1.5)
    torch.manual_seed(0)
    distiller = build_distiller(SegConfig.parsed(args), synced_bn=False).train()
    images, labels = torch.randn(2, 3, 32, 64), torch.randint(0, 19, (2, 32, 64))
    torch.manual_seed(1)
    losses = distiller(images, labels)
    with torch.no_grad():
        main_t, aux_t = distiller.teacher(images)
    torch.manual_seed(1)
    main_s, aux_s = distiller.student(images)
    paper = dist_loss(main_s, main_t, tau=2.0) + 0.4 * dist_loss(aux_s, aux_t, tau=2.0)
    torch.testing.assert_close(losses["loss_kd"], 1.5 * paper)


def test_kd_temperature_and_kwargs_must_agree(teacher_ckpt):
    assert parse_args(kd_args(teacher_ckpt, "--kd-temperature", "4", "--kd-loss-kwargs", "tau=4")).kd_loss_kwargs == \
        {"tau": 4.0}
    with pytest.raises(UserError, match="--kd-temperature 2.0 contradicts --kd-loss-kwargs tau=4"):
        parse_args(kd_args(teacher_ckpt, "--kd-temperature", "2", "--kd-loss-kwargs", "tau=4"))


@pytest.mark.parametrize(("kd", "kwargs"), [("dist", []), ("dist", ["ls=1", "tau=2"]), ("kd", []),
                                            ("kd", ["ls=1", "tau=2"])])
def test_short_run_of_each_per_pixel_method(cityscapes, tmp_path, teacher_ckpt, kd, kwargs):
    save = tmp_path / "run"
    main(["--data", str(cityscapes), "--save-dir", str(save), *TINY,
          *kd_args(teacher_ckpt, "--kd", kd, *(["--kd-loss-kwargs", *kwargs] if kwargs else []))])
    with (save / "train_log.csv").open() as f:
        values = [float(row["loss_kd"]) for row in csv.DictReader(f)]
    assert len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values)


@pytest.mark.parametrize(("kd", "message"), [
    ("dkd", "--kd dkd takes (N, C) logits; segmentation distils per-pixel logits (N, C, H, W)"),
    ("mse", "--kd mse distils feature maps; segmentation gives its KD loss logits only"),
    ("dits", "unknown --kd method 'dits'. Did you mean: dist"),
])
def test_methods_segmentation_cannot_run_are_refused_in_one_line(cityscapes, tmp_path, teacher_ckpt, kd, message):
    with pytest.raises(UserError) as err:
        main(["--data", str(cityscapes), "--save-dir", str(tmp_path / "bad"), *TINY,
              *kd_args(teacher_ckpt, "--kd", kd)])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(UserError, match="needs a teacher"):
        main(["--data", str(cityscapes), "--save-dir", str(tmp_path / "bad"), *TINY, "--kd", "dist"])


def test_a_method_registered_once_reaches_segmentation(teacher_ckpt, scaled_kd_method):
    Scaled = scaled_kd_method
    kd = load_config(kd_args(teacher_ckpt, "--kd", "scaled", "--kd-loss-kwargs", "scale=3")).distill.method()
    assert kd.method == "scaled" and kd.build().scale == 3.0
    Scaled.dense = False  # a method that takes (N, C) logits only
    with pytest.raises(UserError, match="--kd scaled takes \\(N, C\\) logits"):
        load_config(kd_args(teacher_ckpt, "--kd", "scaled")).distill.method()
