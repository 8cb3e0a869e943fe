"""Exact reproducibility: the same final weights for any number of data-loader workers, and after a
SIGKILL or a pre-emption signal (SIGTERM) followed by ``--resume auto``, with mid-epoch checkpoints."""
import csv
import signal
from pathlib import Path

import pytest
import torch

from classification.train import main
from distkd.utils.preemption import PREEMPTED_EXIT_CODE
from tests.classification.test_reliability import QUICK, _spawn, same_weights, wait_paused
from tests.conftest import HANG_GUARD_S, write_image

AUGMENT = ["--aa", "rand-m9-mstd0.5", "--reprob", "0.25", "--mixup", "0.2", "--cutmix", "1.0"]


@pytest.fixture
def folder(tmp_path: Path) -> list[str]:
    """A generated 2-class image folder and the options that train on it with every augmentation."""
    for split, count in (("train", 24), ("val", 4)):
        for c in range(2):
            for i in range(count):
                write_image(tmp_path / "data" / split / f"c{c}" / f"{i}.png", 1000 * c + i, (20, 24), "PNG")
    return ["--dataset", "folder", "--data-path", str(tmp_path / "data"), "--image-size", "16", "-b", "4", *AUGMENT]


def test_the_number_of_workers_does_not_change_the_weights(tmp_path, folder):
    for workers in ("0", "2"):
        main(QUICK + folder + ["--output", str(tmp_path), "--experiment", f"j{workers}", "-j", workers,
                               "--epochs", "2", "--max-iters-per-epoch", "3", "--deterministic"])
    assert same_weights(tmp_path / "j0" / "last.pth", tmp_path / "j2" / "last.pth")


@pytest.mark.slow
def test_sigkill_in_epoch_2_after_a_mid_epoch_checkpoint_resumes_exactly(tmp_path, folder):
    run = [*folder, "-j", "2", "--save-interval", "3"]
    straight = _spawn(tmp_path, "straight", *run)
    killed = _spawn(tmp_path, "killed", *run, pause_at="1:5")
    wait_paused(tmp_path, "killed", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    ckpt = torch.load(tmp_path / "killed" / "last.pth", weights_only=True)
    assert (ckpt["position"]["epoch"], ckpt["position"]["iteration"]) == (1, 3)
    resumed = _spawn(tmp_path, "killed", *run, "--resume", "auto")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    assert same_weights(tmp_path / "straight" / "last.pth", tmp_path / "killed" / "last.pth")
    rows = [list(csv.DictReader(open(tmp_path / name / "metrics.csv"))) for name in ("straight", "killed")]
    assert [r["epoch"] for r in rows[1]] == ["0", "1", "2"]  # no duplicated or missing rows
    assert [r["train_loss"] for r in rows[0]] == [r["train_loss"] for r in rows[1]]


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_exits_75_and_resumes_exactly(tmp_path, folder):
    run = [*folder, "-j", "2"]
    straight = _spawn(tmp_path, "straight", *run)
    stopped = _spawn(tmp_path, "stopped", *run, pause_at="1:4")
    wait_paused(tmp_path, "stopped", stopped)
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(timeout=HANG_GUARD_S) == PREEMPTED_EXIT_CODE
    assert "pre-empted: SIGTERM received" in stopped.stderr.read()
    ckpt = torch.load(tmp_path / "stopped" / "last.pth", weights_only=True)
    assert (ckpt["position"]["epoch"], ckpt["position"]["iteration"]) == (1, 4)
    resumed = _spawn(tmp_path, "stopped", *run, "--resume", "auto")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    assert same_weights(tmp_path / "straight" / "last.pth", tmp_path / "stopped" / "last.pth")
    rows = [list(csv.DictReader(open(tmp_path / name / "metrics.csv"))) for name in ("straight", "stopped")]
    assert [(r["epoch"], r["train_loss"]) for r in rows[0]] == [(r["epoch"], r["train_loss"]) for r in rows[1]]


@pytest.mark.slow
def test_sigkill_between_micro_batches_resumes_exactly_with_gradient_accumulation(tmp_path, folder):
    """--grad-accum-steps 2: checkpoints only at optimizer-step boundaries (every 3 steps); a kill inside
    step 5 of epoch 1 (after its first micro-batch's backward) resumes from step 3 to the same weights."""
    run = [*folder, "-j", "2", "--save-interval", "3", "--grad-accum-steps", "2", "--max-iters-per-epoch", "6"]
    straight = _spawn(tmp_path, "straight", *run)
    killed = _spawn(tmp_path, "killed", *run, pause_at="1:5:1")
    wait_paused(tmp_path, "killed", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    ckpt = torch.load(tmp_path / "killed" / "last.pth", weights_only=True)
    assert (ckpt["position"]["epoch"], ckpt["position"]["iteration"]) == (1, 3)
    assert ckpt["args"]["grad_accum_steps"] == 2
    resumed = _spawn(tmp_path, "killed", *run, "--resume", "auto")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    assert same_weights(tmp_path / "straight" / "last.pth", tmp_path / "killed" / "last.pth")
    rows = [list(csv.DictReader(open(tmp_path / name / "metrics.csv"))) for name in ("straight", "killed")]
    assert [(r["epoch"], r["train_loss"]) for r in rows[0]] == [(r["epoch"], r["train_loss"]) for r in rows[1]]
