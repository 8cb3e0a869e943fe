"""The training step reads nothing back from the device between logging points, and a non-finite
loss still stops the epoch naming the iteration where it first happened."""
import logging
import re

import pytest
import torch
from torch import nn

from classification.builders import build_schedule
from classification.engine import StepConfig, train_one_epoch
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.losses import build_kd_loss

HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")


class Net(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.fc = nn.Linear(width, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def run_epoch(iters: int, log_interval: int = 1000, poison: int | None = None) -> dict:
    torch.manual_seed(0)
    distiller = Distiller(Net(4), nn.CrossEntropyLoss(), Net(8), build_kd_loss("dist"))
    optimizer = torch.optim.SGD(distiller.trainable_modules().parameters(), lr=0.1)
    loader = [(torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,))) for _ in range(iters)]
    if poison is not None:
        loader[poison][0][0, 0, 0, 0] = float("nan")
    schedule = build_schedule(argparse_namespace().optim)
    cfg = StepConfig(torch.device("cpu"), log_interval=log_interval, show_progress=False)
    return train_one_epoch(distiller, loader, optimizer, schedule, 0, cfg, logging.getLogger("test.engine"))


def argparse_namespace():
    from classification.config import load_config

    return load_config(["--model", "cifar_resnet8", "--epochs", "1", "--lr", "0.1", "--warmup-epochs", "0",
                       "--sched", "cosine"])


def count_host_reads(monkeypatch, iters: int) -> int:
    calls = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            calls.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    run_epoch(iters)
    monkeypatch.undo()
    return len(calls)


def test_host_reads_do_not_grow_with_the_number_of_steps(monkeypatch):
    # one logging point (the epoch's end) in both runs: any read inside the step would add per iteration
    assert count_host_reads(monkeypatch, 2) == count_host_reads(monkeypatch, 6)


@pytest.mark.parametrize("log_interval", [1, 4])
def test_a_non_finite_loss_stops_naming_its_iteration(log_interval):
    with pytest.raises(UserError) as err:
        run_epoch(6, log_interval, poison=2)
    assert re.search(r"non-finite loss at epoch 0 iteration 2 \(loss_ori=nan, loss_kd=nan\)", str(err.value))
