"""The paper's four classification YAML files, key for key, run unchanged on the digits data.

The files are written here from key/value lists (the values of hunto/image_classification_sota's
configs/strategies/distill/*.yaml); only data, model, teacher, epochs and workers are overridden
(plus CPU, image size and iteration caps that keep the test fast).
"""
import csv

import pytest
import torch
import yaml

from classification.config import parse_args
from classification.models import build_model
from classification.train import main
from tests.conftest import ROOT

_IMAGENET_PLAIN = dict(
    aa=None, batch_size=32, color_jitter=0.0, decay_by_epoch=True, decay_epochs=30, decay_rate=0.1, drop=0.0,
    epochs=100, log_interval=50, lr=0.1, min_lr=1.0e-05, model_ema=False, model_ema_decay=0.9998, momentum=0.9,
    smoothing=0.0, opt="sgd", opt_betas=None, opt_eps=1.0e-08, remode="const", reprob=0.0, sched="step", seed=42,
    warmup_epochs=0, warmup_lr=0.2, weight_decay=1.0e-4, workers=8,
)
ORIGINAL = {
    "resnet_dist": {**_IMAGENET_PLAIN, "kd": "dist", "ori_loss_weight": 1.0, "kd_loss_weight": 2.0,
                    "teacher_model": "tv_resnet34", "teacher_pretrained": True},
    "resnet_kdt4": {**_IMAGENET_PLAIN, "kd": "kdt4", "ori_loss_weight": 0.9, "kd_loss_weight": 1.0,
                    "teacher_model": "tv_resnet34", "teacher_pretrained": True},
    "dist_b2": dict(
        aa="rand-m9-mstd0.5", batch_size=96, decay_by_epoch=False, decay_epochs=2.4, decay_rate=0.97, drop=0.2,
        epochs=450, log_interval=50, lr=0.048, min_lr=1.0e-05, model_ema=True, model_ema_decay=0.9999, momentum=0.9,
        opt="rmsproptf", opt_betas=None, opt_eps=0.001, remode="pixel", reprob=0.2, sched="step", seed=42,
        warmup_epochs=3, warmup_lr=1.0e-06, weight_decay=1.0e-05, workers=4, kd="dist", ori_loss_weight=1.0,
        kd_loss_weight=2.0, teacher_model="tv_resnet34", teacher_pretrained=True,
    ),
    "dist_cifar": dict(
        dataset="cifar100", image_mean=[0.5071, 0.4867, 0.4408], image_std=[0.2675, 0.2565, 0.2761], aa=None,
        batch_size=64, color_jitter=0.0, cutout_length=0, decay_by_epoch=True, decay_epochs=30, decay_rate=0.1,
        drop=0.0, epochs=240, log_interval=50, lr=0.05, smoothing=0.0, min_lr=1.0e-06, model_ema=False,
        model_ema_decay=0.9998, momentum=0.9, opt="sgd", opt_betas=None, opt_eps=1.0e-08, remode="const",
        reprob=0.0, sched="step", seed=42, warmup_epochs=120, warmup_lr=0.05, weight_decay=5.0e-04, workers=4,
        sgd_no_nesterov=True, opt_no_filter=True, ori_loss_weight=1.0, kd_loss_weight=2.0, kd="dist_t4",
        teacher_model="cifar_wrn_40_2", teacher_pretrained=True,
        teacher_ckpt="./data/saved_ckpts/wrn_40_2_vanilla/ckpt_epoch_240.pth",
    ),
}


def write_original(tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(ORIGINAL[name], sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "teacher.pth"
    torch.manual_seed(0)
    torch.save(build_model("cifar_resnet14", 10).state_dict(), path)
    return str(path)


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_original_yaml_parses_with_the_original_defaults_for_missing_keys(tmp_path, name):
    args = parse_args(["-c", write_original(tmp_path, name), "--model", "tv_resnet18"])
    for key, value in ORIGINAL[name].items():
        actual = getattr(args, key)
        assert actual == (pytest.approx(value) if isinstance(value, float) else value), key
    # Keys the file omits get the original parser's defaults.
    assert args.smoothing == pytest.approx(ORIGINAL[name].get("smoothing", 0.1))  # dist_b2: 0.1
    assert args.color_jitter == 0.0 and args.cutout_length == 0 and args.mixup == 0.0
    assert args.sgd_no_nesterov == ORIGINAL[name].get("sgd_no_nesterov", False)
    assert args.clip_grad_norm is False and args.clip_grad_max_norm == 5.0
    assert args.val_batch_size_multiplier == 1.0 and args.drop_path_rate == 0.0


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_original_yaml_trains_one_epoch_on_digits(tmp_path, teacher_ckpt, name):
    stats = main([
        "-c", write_original(tmp_path, name),
        "--dataset", "digits", "--model", "cifar_resnet8",  # data, model
        "--teacher-model", "cifar_resnet14", "--teacher-ckpt", teacher_ckpt,  # teacher
        "--epochs", "1", "--workers", "0",  # epochs, workers
        "--device", "cpu", "--image-size", "16", "--max-iters-per-epoch", "2",  # fast on a CPU
        "--output", str(tmp_path / "runs"), "--experiment", name,
    ])
    rows = list(csv.DictReader(open(tmp_path / "runs" / name / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["loss_kd"]) > 0
    assert 0 <= stats["top1"] <= 100
    if name == "dist_b2":  # the first warmup epoch runs at warmup_lr; EMA is on
        assert float(rows[0]["lr"]) == pytest.approx(1e-6) and rows[0]["val_top1_ema"] != ""


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_shipped_config_holds_the_original_keys_and_values(name):
    shipped = yaml.safe_load((ROOT / "configs/strategies/distill" / f"{name}.yaml").read_text())
    assert shipped == ORIGINAL[name]
