"""End-to-end runs of the trainer on the bundled digits data (tiny CIFAR ResNets, a few iterations)."""
import csv
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml

from classification.models import build_model
from classification.train import main
from distkd.errors import UserError
from tests.conftest import ROOT

CONFIG = str(ROOT / "configs" / "digits.yaml")
QUICK = ["-c", CONFIG, "--device", "cpu", "--max-iters-per-epoch", "3", "--image-size", "16", "-b", "16",
         "--log-interval", "1"]


def train(tmp_path, name, *extra):
    return main(QUICK + ["--output", str(tmp_path), "--experiment", name, "--epochs", "1", *extra])


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    main(QUICK + ["--output", str(out), "--experiment", "t", "--epochs", "1", "--model", "cifar_resnet14"])
    return str(out / "t" / "best.pth")


def test_plain_run_writes_the_experiment_folder(tmp_path):
    stats = train(tmp_path, "plain", "--model", "cifar_resnet8")
    exp = tmp_path / "plain"
    for name in ("args.yaml", "log.txt", "metrics.csv", "curves.png", "last.pth", "best.pth"):
        assert (exp / name).is_file(), name
    assert any((exp / "tb").iterdir())
    args = yaml.safe_load((exp / "args.yaml").read_text())
    assert args["model"] == "cifar_resnet8" and args["epochs"] == 1 and args["kd"] is None
    rows = list(csv.DictReader(open(exp / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["val_top1"]) == pytest.approx(stats["top1"])
    ckpt = torch.load(exp / "last.pth", weights_only=True)
    assert ckpt["model"].keys() == build_model("cifar_resnet8", 10).state_dict().keys()


def test_log_lines_carry_throughput_and_the_time_left(tmp_path):
    train(tmp_path, "speed", "--model", "cifar_resnet8", "--epochs", "2")
    lines = [line for line in (tmp_path / "speed" / "log.txt").read_text().splitlines() if " [3/3] " in line]
    assert re.search(r"epoch 0 \[3/3\] .* \| [\d,]+ img/s, epoch 0:00:00 left, run \d+:\d\d:\d\d left$", lines[0])
    assert re.search(r"epoch 1 \[3/3\] .* \| [\d,]+ img/s, epoch 0:00:00 left$", lines[1])  # the last epoch


@pytest.mark.parametrize("kd", ["dist", "kdt4", "mse"])
def test_kd_run_saves_the_student_alone_and_evaluates_the_teacher(tmp_path, teacher_ckpt, kd):
    train(tmp_path, kd, "--model", "cifar_resnet8", "--kd", kd, "--teacher-model", "cifar_resnet14",
          "--teacher-ckpt", teacher_ckpt)
    exp = tmp_path / kd
    teacher = yaml.safe_load((exp / "teacher.yaml").read_text())
    assert 0 <= teacher["top1"] <= 100
    rows = list(csv.DictReader(open(exp / "metrics.csv")))
    assert float(rows[0]["loss_kd"]) > 0
    ckpt = torch.load(exp / "last.pth", weights_only=True)
    student = build_model("cifar_resnet8", 10)
    student.load_state_dict(ckpt["model"])  # directly loadable: nothing to extract
    assert ("kd_loss" in ckpt) == (kd == "mse")


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, teacher_ckpt):
    kd = ["--model", "cifar_resnet8", "--kd", "dist", "--teacher-model", "cifar_resnet14", "--teacher-ckpt",
          teacher_ckpt, "--epochs", "2", "--deterministic"]
    main(QUICK + ["--output", str(tmp_path), "--experiment", "straight"] + kd)
    # 'Kill' after epoch 1: a run of 1 epoch of the same 2-epoch schedule leaves last.pth at epoch 0.
    main(QUICK + ["--output", str(tmp_path), "--experiment", "resumed"] + kd + ["--stop-after-epochs", "1"])
    main(QUICK + ["--output", str(tmp_path), "--experiment", "resumed", "--resume", "auto"] + kd)
    a = torch.load(tmp_path / "straight" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pth", weights_only=True)
    assert a["position"] == b["position"] == {"epoch": 2, "iteration": 0}
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    rows = list(csv.DictReader(open(tmp_path / "resumed" / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1"]


def test_existing_experiment_is_never_overwritten_silently(tmp_path):
    train(tmp_path, "e", "--model", "cifar_resnet8")
    with pytest.raises(UserError, match="already holds checkpoints.*--resume auto.*--overwrite"):
        train(tmp_path, "e", "--model", "cifar_resnet8")
    train(tmp_path, "e", "--model", "cifar_resnet8", "--overwrite")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "resnet18"], "unknown model 'resnet18'. Did you mean: tv_resnet18"),
        (["--model", "cifar_resnet8", "--kd", "dits", "--teacher-model", "cifar_resnet8"], "unknown --kd method"),
        (["--model", "cifar_resnet8", "--kd", "dist"], "needs a teacher"),
        (["--model", "cifar_resnet8", "--kd", "dist", "--teacher-model", "cifar_resnet14", "--teacher-ckpt",
          "missing.pth"], "teacher checkpoint not found: expected a file at 'missing.pth'"),
    ],
)
def test_bad_arguments_fail_with_one_clear_error(tmp_path, argv, message):
    with pytest.raises(UserError, match=message):
        train(tmp_path, "bad", *argv)


def test_teacher_of_another_architecture_lists_mismatched_keys(tmp_path, teacher_ckpt):
    with pytest.raises(UserError, match="does not match the model .*missing keys"):
        train(tmp_path, "bad", "--model", "cifar_resnet8", "--kd", "dist", "--teacher-model", "cifar_resnet20",
              "--teacher-ckpt", teacher_ckpt)


def test_command_line_tool_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools/train.py"), *QUICK, "--model", "nope",
                           "--output", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown model 'nope'") and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_two_process_torchrun_on_cpu(tmp_path, teacher_ckpt):
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_PORT="29533")
    cmd = ["sh", str(ROOT / "tools/dist_train.sh"), "2", CONFIG, "cifar_resnet8", "--device", "cpu",
           "--max-iters-per-epoch", "2", "--image-size", "16", "-b", "8", "--epochs", "1", "--output", str(tmp_path),
           "--experiment", "ddp", "--kd", "dist", "--teacher-model", "cifar_resnet14", "--teacher-ckpt", teacher_ckpt]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    exp = tmp_path / "ddp"
    assert "world size 2" in (exp / "log.txt").read_text()
    assert sorted(p.name for p in exp.glob("*.pth")) == ["best.pth", "last.pth"]
    assert not list(exp.glob(".*.tmp"))
    rows = list(csv.DictReader(open(exp / "metrics.csv")))
    assert len(rows) == 1  # written once, by rank 0


@pytest.mark.slow
def test_evaluation_tool_reproduces_the_validation_accuracy(tmp_path):
    stats = train(tmp_path, "ev", "--model", "cifar_resnet8")
    from classification.evaluate import main as evaluate_main

    result = evaluate_main(["-c", CONFIG, "--model", "cifar_resnet8", "--image-size", "16", "--device", "cpu",
                            "--ckpt", str(tmp_path / "ev" / "last.pth")])
    assert result["top1"] == pytest.approx(stats["top1"])


def test_model_ema_is_validated_and_ranks_the_best_checkpoint(tmp_path):
    stats = train(tmp_path, "ema", "--model", "cifar_resnet8", "--model-ema", "--model-ema-decay", "0.5")
    rows = list(csv.DictReader(open(tmp_path / "ema" / "metrics.csv")))
    assert float(rows[0]["best_top1"]) == pytest.approx(float(rows[0]["val_top1_ema"]))
    assert stats["best_top1"] == pytest.approx(float(rows[0]["val_top1_ema"]))
    ckpt = torch.load(tmp_path / "ema" / "best.pth", weights_only=True)
    assert ckpt["model_ema"].keys() == ckpt["model"].keys()


def test_initial_checkpoint_starts_the_student_from_weights_without_resuming(tmp_path, teacher_ckpt):
    from classification.builders import build_student
    from classification.config import load_config

    args = load_config(["--model", "cifar_resnet14", "--initial-checkpoint", teacher_ckpt])
    student = build_student(args.model, 10)
    saved = torch.load(teacher_ckpt, weights_only=True)["model"]
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in saved.items())
    stats = train(tmp_path, "init", "--model", "cifar_resnet14", "--initial-checkpoint", teacher_ckpt)
    assert yaml.safe_load((tmp_path / "init" / "args.yaml").read_text())["initial_checkpoint"] == teacher_ckpt
    assert stats["best_top1"] >= 0
    with pytest.raises(UserError, match="does not match the model"):
        train(tmp_path, "other", "--model", "cifar_resnet8", "--initial-checkpoint", teacher_ckpt)
    with pytest.raises(UserError, match="keep one"):
        train(tmp_path, "both", "--model", "tv_resnet18", "--pretrained", "--initial-checkpoint", teacher_ckpt)
    with pytest.raises(UserError, match="initial checkpoint not found"):
        train(tmp_path, "none", "--model", "cifar_resnet8", "--initial-checkpoint", str(tmp_path / "nope.pth"))


def test_sync_bn_is_off_by_default_and_a_no_op_in_one_process(tmp_path):
    from classification.config import parse_args

    assert parse_args([]).sync_bn is False  # the paper's recipes: BatchNorm statistics per GPU
    assert train(tmp_path, "sbn", "--model", "cifar_resnet8", "--sync-bn")["best_top1"] >= 0
