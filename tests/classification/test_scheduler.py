import math

import pytest
import torch

from classification.builders import build_schedule
from classification.config import load_config
from classification.scheduler import LRSchedule
from tests.conftest import ROOT


def schedule(name: str) -> LRSchedule:
    return build_schedule(load_config(["-c", str(ROOT / "configs/strategies" / name)]).optim)


def test_cifar_recipe_holds_lr_then_decays_at_150_180_210():
    s = schedule("distill/dist_cifar.yaml")
    lrs = [s.lr_at(e) for e in range(240)]
    assert all(lr == pytest.approx(0.05) for lr in lrs[:150])
    changes = [e for e in range(1, 240) if not math.isclose(lrs[e], lrs[e - 1])]
    assert changes == [150, 180, 210]
    assert lrs[239] == pytest.approx(0.05 * 1e-3)


def test_cifar_recipe_with_lr_001_keeps_001_until_150():
    args = load_config(["-c", str(ROOT / "configs/strategies/distill/dist_cifar.yaml"), "--lr", "0.01",
                       "--warmup-lr", "0.01"])
    s = build_schedule(args.optim)
    assert s.lr_at(0) == pytest.approx(0.01) and s.lr_at(149) == pytest.approx(0.01)
    assert s.lr_at(150) == pytest.approx(0.001)


def test_imagenet_step_every_30_epochs():
    s = schedule("distill/resnet_dist.yaml")
    assert [s.lr_at(e) for e in (0, 29, 30, 60, 90, 99)] == pytest.approx([0.1, 0.1, 0.01, 1e-3, 1e-4, 1e-4])


def test_strong_recipe_staircase_warmup_then_decays_every_2_4_epochs_per_iteration():
    s = schedule("distill/dist_b2.yaml")
    assert s.lr_at(0) == pytest.approx(1e-6)
    assert s.lr_at(1.5) == pytest.approx(1e-6 + (0.048 - 1e-6) / 3)  # mid-epoch 1: epoch 1's step, not t = 1.5
    assert s.lr_at(3.0) == pytest.approx(0.048)
    assert s.lr_at(3.0 + 2.39) == pytest.approx(0.048)
    assert s.lr_at(3.0 + 2.4) == pytest.approx(0.048 * 0.97)  # step decay is per iteration (2.4 epochs)
    assert s.lr_at(449.9) == pytest.approx(0.048 * 0.97 ** math.floor(446.9 / 2.4))  # no min_lr floor for step


def test_warmup_lr_at_every_iteration_of_epochs_0_to_3_of_dist_b2_is_the_staircase(tmp_path):
    """The engine's calls (epoch + i / iters) during warmup give warmup_lr + (lr - warmup_lr) * e / W."""
    args = load_config(["-c", str(ROOT / "configs/strategies/distill/dist_b2.yaml")])
    s = build_schedule(args.optim)
    iters = 7
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    for epoch in range(4):
        for i in range(iters):
            lr = s.apply(opt, epoch + i / iters)
            expected = 1e-6 + (0.048 - 1e-6) * epoch / 3 if epoch < 3 else 0.048
            assert lr == pytest.approx(expected) and opt.param_groups[0]["lr"] == pytest.approx(expected)


def test_decay_by_epoch_rounds_cosine_only():
    by_iter = LRSchedule(0.1, 10, "cosine", warmup_epochs=0, min_lr=0.0, by_epoch=False)
    by_epoch = LRSchedule(0.1, 10, "cosine", warmup_epochs=0, min_lr=0.0, by_epoch=True)
    assert by_epoch.lr_at(2.5) == pytest.approx(by_iter.lr_at(2.0)) != pytest.approx(by_iter.lr_at(2.5))
    step = LRSchedule(0.1, 10, "step", decay_epochs=2.5, decay_rate=0.5, by_epoch=True)
    assert step.lr_at(2.6) == pytest.approx(0.05)  # step ignores decay_by_epoch, as the original


def test_linear_schedule_and_step_without_decay_rate():
    s = LRSchedule(0.1, 10, "linear", warmup_epochs=2, warmup_lr=0.1)
    assert [s.lr_at(t) for t in (2, 6, 10)] == pytest.approx([0.1, 0.05, 0.0])
    with pytest.raises(ValueError, match="decay rate"):
        LRSchedule(0.1, 10, "step", decay_rate=None)


def test_cosine_goes_from_lr_to_min_lr():
    s = LRSchedule(0.1, 10, "cosine", warmup_epochs=0, min_lr=0.001, by_epoch=False)
    assert s.lr_at(0) == pytest.approx(0.1)
    assert s.lr_at(5) == pytest.approx(0.001 + 0.099 / 2)
    assert s.lr_at(10) == pytest.approx(0.001)
