import math

import pytest

from classification.config import parse_args
from classification.scheduler import LRSchedule
from tests.conftest import ROOT


def schedule(name: str) -> LRSchedule:
    return LRSchedule.from_args(parse_args(["-c", str(ROOT / "configs/strategies" / name)]))


def test_cifar_recipe_holds_lr_then_decays_at_150_180_210():
    s = schedule("distill/dist_cifar.yaml")
    lrs = [s.lr_at(e) for e in range(240)]
    assert all(lr == pytest.approx(0.05) for lr in lrs[:150])
    changes = [e for e in range(1, 240) if not math.isclose(lrs[e], lrs[e - 1])]
    assert changes == [150, 180, 210]
    assert lrs[239] == pytest.approx(0.05 * 1e-3)


def test_cifar_recipe_with_lr_001_keeps_001_until_150():
    args = parse_args(["-c", str(ROOT / "configs/strategies/distill/dist_cifar.yaml"), "--lr", "0.01",
                       "--warmup-lr", "0.01"])
    s = LRSchedule.from_args(args)
    assert s.lr_at(0) == pytest.approx(0.01) and s.lr_at(149) == pytest.approx(0.01)
    assert s.lr_at(150) == pytest.approx(0.001)


def test_imagenet_step_every_30_epochs():
    s = schedule("distill/resnet_dist.yaml")
    assert [s.lr_at(e) for e in (0, 29, 30, 60, 90, 99)] == pytest.approx([0.1, 0.1, 0.01, 1e-3, 1e-4, 1e-4])


def test_strong_recipe_warms_up_per_iteration_then_decays_every_2_4_epochs():
    s = schedule("distill/dist_b2.yaml")
    assert s.lr_at(0) == pytest.approx(1e-6)
    assert s.lr_at(1.5) == pytest.approx(1e-6 + (0.048 - 1e-6) * 0.5)  # mid-epoch: not by epoch
    assert s.lr_at(3.0) == pytest.approx(0.048)
    assert s.lr_at(3.0 + 2.39) == pytest.approx(0.048)
    assert s.lr_at(3.0 + 2.4) == pytest.approx(0.048 * 0.97)
    assert s.lr_at(449.9) >= 1e-5


def test_cosine_goes_from_lr_to_min_lr():
    s = LRSchedule(0.1, 10, "cosine", warmup_epochs=0, min_lr=0.001, by_epoch=False)
    assert s.lr_at(0) == pytest.approx(0.1)
    assert s.lr_at(5) == pytest.approx(0.001 + 0.099 / 2)
    assert s.lr_at(10) == pytest.approx(0.001)
