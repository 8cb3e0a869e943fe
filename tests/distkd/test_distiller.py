import pytest
import torch
from torch import nn

from distkd.distiller import Distiller
from distkd.losses import build_kd_loss


class TinyNet(nn.Module):
    last_stage = "features"

    def __init__(self, width: int = 4, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def make(kd: str = "dist", **kw) -> Distiller:
    torch.manual_seed(0)
    return Distiller(TinyNet(4), nn.CrossEntropyLoss(), TinyNet(8), build_kd_loss(kd), **kw)


def batch():
    return torch.randn(6, 3, 8, 8), torch.randint(0, 5, (6,))


def test_forward_returns_named_weighted_losses():
    d = make(ori_loss_weight=0.5, kd_loss_weight=2.0)
    images, targets = batch()
    losses = d(images, targets)
    assert set(losses) == {"loss_ori", "loss_kd"}
    with torch.no_grad():
        ce = nn.functional.cross_entropy(d.student(images), targets)
        kd = build_kd_loss("dist")(d.student(images), d.teacher(images))
    assert losses["loss_ori"].item() == pytest.approx(0.5 * ce.item(), rel=1e-5)
    assert losses["loss_kd"].item() == pytest.approx(2.0 * kd.item(), rel=1e-5)


def test_teacher_stays_frozen_in_eval_mode_and_gets_no_gradient():
    d = make()
    d.train()
    assert d.student.training and not d.teacher.training
    before = {k: v.clone() for k, v in d.teacher.state_dict().items()}
    sum(d(*batch()).values()).backward()
    assert all(p.grad is None and not p.requires_grad for p in d.teacher.parameters())
    assert all(p.grad is not None for p in d.student.parameters())
    assert all(torch.equal(before[k], v) for k, v in d.teacher.state_dict().items())  # BN stats untouched
    assert "teacher" not in d.trainable_modules()


def test_without_teacher_only_the_task_loss():
    d = Distiller(TinyNet(), nn.CrossEntropyLoss())
    assert set(d(*batch())) == {"loss_ori"}
    with pytest.raises(ValueError):
        Distiller(TinyNet(), nn.CrossEntropyLoss(), teacher=TinyNet())


def test_feature_mse_builds_its_aligner_before_the_optimizer():
    d = make("mse")
    images, targets = batch()
    d.prepare(images)
    trainable = d.trainable_modules()
    assert "kd_loss" in trainable
    conv = trainable["kd_loss"].aligner[0]
    assert (conv.in_channels, conv.out_channels) == (4, 8)
    losses = d(images, targets)
    losses["loss_kd"].backward()
    assert conv.weight.grad is not None


def test_teacher_param_names_cover_teacher_state():
    d = make()
    names = set(d.teacher_param_names())
    assert {f"teacher.{k}" for k in d.teacher.state_dict()} <= names | {
        f"teacher.{k}" for k, _ in d.teacher.named_buffers()
    }
    assert not any(n.startswith("student") for n in names)
