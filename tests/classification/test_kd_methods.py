"""Every logit method in the classification trainer: the named configs hold the authors' settings, a
short digits run of each method (with and without logit standardisation) logs a finite KD term, and
bad combinations stop with one line."""
from __future__ import annotations

import csv
import math
import re

import pytest
import yaml

from classification.config import parse_args
from classification.train import main
from distkd.errors import UserError
from distkd.losses import kd_config
from tests.conftest import ROOT

DISTILL = ROOT / "configs" / "strategies" / "distill"
QUICK = ["-c", str(ROOT / "configs" / "digits.yaml"), "--device", "cpu", "--max-iters-per-epoch", "2",
         "--image-size", "16", "-b", "16", "--log-interval", "1", "--epochs", "1"]
PAIR = ["--model", "cifar_resnet8", "--teacher-model", "cifar_resnet14", "--teacher-no-pretrained"]


def settings(name: str):
    args = parse_args(["-c", str(DISTILL / name), "--model", "cifar_resnet8x4"])
    return args, kd_config(args.kd, args.kd_loss_kwargs, args.kd_loss_weight)


SCHEDULE_KEYS = ("batch_size", "epochs", "lr", "decay_epochs", "decay_rate", "warmup_epochs", "warmup_lr",
                 "weight_decay", "momentum", "sgd_no_nesterov", "opt_no_filter", "smoothing", "dataset")


@pytest.mark.parametrize("name", ["dkd_cifar.yaml", "dkd_ls_cifar.yaml", "kd_ls_cifar.yaml", "dist_ls_cifar.yaml"])
def test_cifar_method_configs_share_the_papers_recipe(name):
    paper = yaml.safe_load((DISTILL / "dist_cifar.yaml").read_text())
    method = yaml.safe_load((DISTILL / name).read_text())
    assert {k: method[k] for k in SCHEDULE_KEYS} == {k: paper[k] for k in SCHEDULE_KEYS}


@pytest.mark.parametrize(("name", "method", "options", "ori", "weight"), [
    # mdistiller CFG.DKD / configs/cifar100/dkd/res32x4_res8x4.yaml
    ("dkd_cifar.yaml", "dkd", {"alpha": 1.0, "beta": 8.0, "tau": 4.0, "warmup": 20, "ls": False}, 1.0, 1.0),
    # logit-standardization-KD README: --logit-stand --base-temp 2 --kd-weight 9 (alpha, beta x 9 for DKD)
    ("dkd_ls_cifar.yaml", "dkd", {"alpha": 9.0, "beta": 72.0, "tau": 2.0, "warmup": 20, "ls": True}, 1.0, 1.0),
    ("kd_ls_cifar.yaml", "kd", {"tau": 2.0, "ls": True}, 0.1, 9.0),
    # mdistiller configs/imagenet/r34_r18/dkd.yaml
    ("dkd_imagenet.yaml", "dkd", {"alpha": 1.0, "beta": 0.5, "tau": 1.0, "warmup": 1, "ls": False}, 1.0, 1.0),
    # logit-standardization-KD configs/imagenet/r34_r18/kd.yaml + the README's switches
    ("kd_ls_imagenet.yaml", "kd", {"tau": 2.0, "ls": True}, 1.0, 9.0),
])
def test_named_configs_hold_the_authors_settings(name, method, options, ori, weight):
    args, config = settings(name)
    assert (config.method, dict(config.options), args.ori_loss_weight, config.weight) == (method, options, ori, weight)


def test_imagenet_configs_are_mdistillers_recipe():
    for name in ("dkd_imagenet.yaml", "kd_ls_imagenet.yaml"):
        args, _ = settings(name)
        schedule = (args.batch_size * 8, args.lr, args.epochs, args.decay_epochs, args.decay_rate, args.warmup_epochs)
        assert schedule == (512, 0.2, 100, 30, 0.1, 0)
        assert (args.weight_decay, args.sgd_no_nesterov, args.opt_no_filter) == (1e-4, True, True)
        assert args.teacher_model == "tv_resnet34"


def test_command_line_kwargs_add_to_the_configs_mapping():
    args = parse_args(["-c", str(DISTILL / "dkd_cifar.yaml"), "--model", "m", "--kd-loss-kwargs", "beta=6"])
    assert args.kd_loss_kwargs == {"alpha": 1.0, "beta": 6, "tau": 4.0, "warmup": 20}


@pytest.mark.parametrize(("kd", "kwargs"), [
    ("kd", []), ("kd", ["tau=2", "ls=1"]), ("dkd", []), ("dkd", ["ls=1", "tau=2", "alpha=9", "beta=72"]),
    ("dist", []), ("dist_t4", ["ls=1"]), ("mse", []),
])
def test_short_run_of_each_method_logs_a_finite_kd_term(tmp_path, kd, kwargs):
    name = f"{kd}-{len(kwargs)}"
    main(QUICK + PAIR + ["--output", str(tmp_path), "--experiment", name, "--kd", kd]
         + (["--kd-loss-kwargs", *kwargs] if kwargs else []))
    rows = list(csv.DictReader(open(tmp_path / name / "metrics.csv")))
    assert math.isfinite(float(rows[0]["loss_kd"])) and float(rows[0]["loss_kd"]) > 0
    logged = re.findall(r"loss_kd (\S+)", (tmp_path / name / "log.txt").read_text())
    assert logged and all(math.isfinite(float(v)) for v in logged)


@pytest.mark.parametrize(("extra", "message"), [
    (["--kd", "dkdd"], "unknown --kd method 'dkdd'. Did you mean: dkd"),
    (["--kd", "dist", "--kd-loss-kwargs", "alpha=1"], "method 'dist' has no option 'alpha'"),
    (["--kd", "mse", "--kd-loss-kwargs", "ls=1"], "'mse' distils feature maps"),
    (["--kd", "dkd", "--mixup", "0.2"], "--kd dkd needs one class index per sample; --mixup / --cutmix"),
    (["--kd", "dist", "--kd-loss-kwargs", "ls=1", "--student-module", "layer3", "--teacher-module", "layer3"],
     "ls=1 .*feature maps"),
])
def test_bad_kd_input_is_one_line(tmp_path, extra, message):
    with pytest.raises(UserError, match=message) as err:
        main(QUICK + PAIR + ["--output", str(tmp_path), "--experiment", "bad", *extra])
    assert "\n" not in str(err.value)


def test_dkd_with_logit_standardisation_from_a_teacher_store(tmp_path, monkeypatch):
    """The stored teacher outputs reach DKD through the same teacher interface as a live teacher's."""
    import torch

    from classification.models import build_model
    from classification.teacher_store.cli import main as build_store_main

    digits = ["-c", str(ROOT / "configs" / "digits.yaml"), "--image-size", "16", "--train-fraction", "0.1",
              "--device", "cpu", "--teacher-model", "cifar_resnet8"]
    torch.manual_seed(0)
    torch.save(build_model("cifar_resnet8", 10).state_dict(), tmp_path / "t.pth")
    digits += ["--teacher-ckpt", str(tmp_path / "t.pth")]
    build_store_main(digits + ["--exact", "--out", str(tmp_path / "store")])
    monkeypatch.setattr("classification.builders.build_teacher", lambda *a, **k: pytest.fail("teacher network built"))
    main(digits + ["--model", "cifar_resnet8", "--kd", "dkd", "--kd-loss-kwargs", "ls=1", "warmup=1",
                   "--teacher-store", str(tmp_path / "store"), "--output", str(tmp_path), "--experiment", "e",
                   "--epochs", "1", "-b", "16", "--max-iters-per-epoch", "2"])
    rows = list(csv.DictReader(open(tmp_path / "e" / "metrics.csv")))
    assert math.isfinite(float(rows[0]["loss_kd"])) and float(rows[0]["loss_kd"]) > 0
