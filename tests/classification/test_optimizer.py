import pytest
import torch

from classification.builders import build_optimizer
from classification.config import load_config
from classification.models import build_model
from tests.conftest import ROOT


def optimizer_for(*argv: str) -> torch.optim.Optimizer:
    return build_optimizer(load_config(list(argv)).optim, build_model("cifar_resnet8", 10))


def test_sgd_nesterov_switch_and_weight_decay_filter():
    opt = optimizer_for("--opt", "sgd", "--weight-decay", "1e-4")
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"]
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, pytest.approx(1e-4)]  # no decay on BN/bias
    opt = optimizer_for("--opt", "sgd", "--sgd-no-nesterov", "--opt-no-filter", "--weight-decay", "5e-4")
    assert not opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    assert [g["weight_decay"] for g in opt.param_groups] == [pytest.approx(5e-4)]  # decay on everything


def test_cifar_recipe_optimizer():
    opt = optimizer_for("-c", str(ROOT / "configs/strategies/distill/dist_cifar.yaml"))
    assert isinstance(opt, torch.optim.SGD) and not opt.param_groups[0]["nesterov"]
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == pytest.approx(5e-4)


def test_rmsproptf_and_adamw():
    opt = optimizer_for("-c", str(ROOT / "configs/strategies/distill/dist_b2.yaml"))
    assert type(opt).__name__ == "RMSpropTF"
    assert opt.param_groups[0]["eps"] == pytest.approx(1e-3) and opt.param_groups[0]["momentum"] == 0.9
    assert isinstance(optimizer_for("--opt", "adamw", "--lr", "1e-3"), torch.optim.AdamW)
