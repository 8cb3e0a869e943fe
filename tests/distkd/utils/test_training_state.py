"""The one checkpoint format: a round trip restores weights, optimizer, scaler, EMA, KD parts and RNG."""
import random

import pytest
import torch
from torch import nn

from distkd.errors import UserError
from distkd.utils.checkpoint import atomic_save
from distkd.utils.training_state import REQUIRED, restore_training_state, training_state


def parts(seed: int):
    torch.manual_seed(seed)
    trainable = nn.ModuleDict({"student": nn.Linear(4, 3), "kd_loss": nn.Linear(3, 3)})
    optimizer = torch.optim.SGD(trainable.parameters(), lr=0.1, momentum=0.9)
    ema = nn.Linear(4, 3)
    return trainable, optimizer, ema


def test_round_trip_restores_everything(tmp_path):
    trainable, optimizer, ema = parts(0)
    trainable["student"](torch.randn(2, 4)).sum().backward()
    optimizer.step()
    scaler = torch.amp.GradScaler("cpu", init_scale=128.0)
    torch.manual_seed(7)
    random.seed(7)
    state = training_state(trainable, optimizer, {"epoch": 3, "iteration": 5}, {"metric": "top1", "value": 1.5,
                           "at": 2}, {"lr": 0.1}, scaler, ema, input_format="paper")
    assert set(REQUIRED) | {"best", "args", "rng", "scaler", "model_ema", "kd_loss", "input_format"} == set(state)
    atomic_save(state, tmp_path / "last.pth")
    expected = (torch.rand(3), random.random())

    other, other_opt, other_ema = parts(1)
    other_scaler = torch.amp.GradScaler("cpu")
    ckpt = restore_training_state(tmp_path / "last.pth", other, other_opt, other_scaler, other_ema)
    assert ckpt["position"] == {"epoch": 3, "iteration": 5} and ckpt["best"]["value"] == 1.5
    for name in ("student", "kd_loss"):
        for key, value in trainable[name].state_dict().items():
            torch.testing.assert_close(other[name].state_dict()[key], value)
    torch.testing.assert_close(other_ema.weight, ema.weight)
    buffers = [s["momentum_buffer"] for s in other_opt.state_dict()["state"].values()]
    assert buffers and all(b.abs().sum() > 0 for b in buffers)
    assert other_scaler.state_dict()["scale"] == 128.0
    assert (torch.rand(3).tolist(), random.random()) == (expected[0].tolist(), expected[1])  # RNG restored


def test_a_weights_file_is_refused_as_a_resume_checkpoint(tmp_path):
    trainable, optimizer, _ = parts(0)
    torch.save({"model": trainable["student"].state_dict()}, tmp_path / "weights.pth")
    with pytest.raises(UserError, match=r"not a training checkpoint of distkd \(it needs model, optimizer, position"):
        restore_training_state(tmp_path / "weights.pth", trainable, optimizer)
