"""``--emulate-gpus`` in the Cityscapes trainer: 2 gloo processes x 1 crop with synchronised BatchNorm
against 1 process x 2 crops with ``--emulate-gpus 2``: the same weights after a few iterations.

torch's SyncBatchNorm refuses CPU tensors, so the 2-process side uses :class:`AllReduceBatchNorm`,
written here: a BatchNorm whose batch statistics are all-reduced (differentiably) over the
processes, what SyncBatchNorm computes. The heads' dropout is off on both sides: the N-GPU run
draws one mask per GPU from its own generator, the emulated run one mask for the whole batch (the
same distribution, not the same draws; docs/reproduce.md)."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distkd.errors import UserError
from segmentation.models import build_segmentor
from segmentation.train import check_config, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--crop-size", "64", "128", "--workers", "0", "--no-progress", "--log-interval", "1", "--val-interval", "100",
        "--device", "cpu", "--max-iterations", "3", "--batch-size", "2", "--lr", "0.001"]

DRIVER = '''
"""The Cityscapes trainer with the heads' dropout off and, across processes, AllReduceBatchNorm."""
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce

import segmentation.train as trainer


class AllReduceBatchNorm(nn.BatchNorm2d):
    """BatchNorm over the batches of all processes (SyncBatchNorm's statistics, on CPU)."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        count = x.numel() // x.shape[1] * dist.get_world_size()
        mean = all_reduce(x.sum((0, 2, 3))) / count
        centered = x - mean[None, :, None, None]
        var = all_reduce((centered * centered).sum((0, 2, 3))) / count
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * var * count / (count - 1))
            self.num_batches_tracked += 1
        scale = self.weight / torch.sqrt(var + self.eps)
        return centered * scale[None, :, None, None] + self.bias[None, :, None, None]


def all_reduce_batchnorm(module):
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            bn = AllReduceBatchNorm(child.num_features, child.eps, child.momentum)
            bn.load_state_dict(child.state_dict())
            setattr(module, name, bn)
        else:
            all_reduce_batchnorm(child)
    return module


build = trainer.build_segmentor


def build_without_dropout(*args, **kwargs):
    model = build(*args, **kwargs)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


trainer.build_segmentor = build_without_dropout
trainer.bn_synced = lambda info: info.distributed
trainer.sync_batchnorm = all_reduce_batchnorm
trainer.main(sys.argv[1:])
'''


def run(tmp_path: Path, processes: int, argv: list[str]) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), DISTKD_DIST_TIMEOUT="120")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    proc = subprocess.Popen([*(launch if processes > 1 else [sys.executable]), str(driver), *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]


def norm(tensors) -> float:
    return sum(float((t.double() ** 2).sum()) for t in tensors) ** 0.5


@pytest.mark.slow
def test_one_process_emulating_two_gpus_trains_as_two_processes_with_synced_batchnorm(cityscapes, tmp_path):
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pth"
    torch.save(build_segmentor("deeplabv3", "resnet18").state_dict(), teacher)
    common = ["--data", str(cityscapes), *TINY, "--teacher-model", "deeplabv3", "--teacher-backbone", "resnet18",
              "--teacher-pretrained", str(teacher), "--output", str(tmp_path)]
    run(tmp_path, 2, [*common, "--experiment", "two"])
    run(tmp_path, 1, [*common, "--experiment", "emulated", "--emulate-gpus", "2"])
    a, b = (torch.load(tmp_path / name / "last.pth", weights_only=True) for name in ("two", "emulated"))
    assert a["position"]["iteration"] == b["position"]["iteration"] == 3
    torch.manual_seed(42)  # the trainer's seed: the weights both runs started from
    start = build_segmentor("deeplabv3", "resnet18_v1s").state_dict()
    weights = [k for k, v in a["model"].items() if v.is_floating_point() and "running" not in k]
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items() if not v.is_floating_point())
    diff = norm(a["model"][k] - b["model"][k] for k in weights)
    assert diff / norm(a["model"][k] for k in weights) < 1e-5  # measured: 6e-9
    assert diff / norm(a["model"][k] - start[k] for k in weights) < 1e-3  # of the 3 steps' change; measured: 2e-5
    for key in (k for k in a["model"] if "running" in k):  # SyncBatchNorm's running statistics: the whole batch's
        assert torch.allclose(a["model"][key], b["model"][key], rtol=1e-4, atol=1e-6), key
    logs = [list(csv.DictReader(open(tmp_path / name / "train_log.csv"))) for name in ("two", "emulated")]
    for row, ref in zip(logs[1], logs[0], strict=True):  # the losses averaged over the (emulated) GPUs
        for column in ("loss", "loss_ori", "loss_kd"):
            assert float(row[column]) == pytest.approx(float(ref[column]), rel=1e-5), (row["iteration"], column)
    assert "emulating 2 GPUs of 1 crops: 2 per process" in (tmp_path / "emulated" / "log.txt").read_text()


@pytest.mark.parametrize("extra, world, message", [
    (["--emulate-gpus", "0"], 1, "--emulate-gpus must be a positive integer, got 0"),
    (["--emulate-gpus", "8", "--batch-size", "24"], 3,
     r"--emulate-gpus 8 needs a number of processes that divides it \(1, 2, 4, 8\); this run has 3"),
    (["--emulate-gpus", "6"], 1, r"--batch-size 16 does not split over --emulate-gpus 6: give a batch that is a "
                                 r"multiple of 6 \(12, 18, ...\)"),
])
def test_bad_emulation_is_one_clear_line(extra, world, message, tmp_path):
    from segmentation.config import load_config

    config = load_config(["--output", str(tmp_path), "--batch-size", "16", *extra])
    with pytest.raises(UserError, match=message):
        check_config(config, world)
    assert list(tmp_path.iterdir()) == []


def test_bad_emulation_from_the_command_line_writes_nothing(cityscapes, tmp_path):
    with pytest.raises(UserError, match="does not split"):
        main(["--data", str(cityscapes), "--output", str(tmp_path / "out"), "--experiment", "e", *TINY,
              "--emulate-gpus", "4"])
    assert not (tmp_path / "out").exists()
