"""The KD method contract through the Distiller: outputs plus the batch's context in, a loss or a dict
of named losses out; the teacher side behind one interface (a network, or stored outputs)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from distkd.context import Batch, BatchContext
from distkd.distiller import Distiller
from distkd.losses import build_kd_loss, dkd_loss
from distkd.teacher import StoredTeacher, Teacher


class Net(nn.Module):
    last_stage = "features"

    def __init__(self, width: int = 4, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def batch(n: int = 6):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 8, 8, generator=gen), torch.randint(0, 5, (n,), generator=gen)


def test_dkd_gets_the_targets_and_the_epoch_from_the_step():
    torch.manual_seed(0)
    d = Distiller(Net(), nn.CrossEntropyLoss(), Net(8), build_kd_loss("dkd"), 1.0, 2.0)
    images, targets = batch()
    losses = d(images, targets, BatchContext(epoch=4, progress=0.02))
    with torch.no_grad():
        expected = 2.0 * 5 / 20 * dkd_loss(d.student(images), d.teacher(images), targets, 1.0, 8.0, 4.0)
    assert losses["loss_kd"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert d(images, targets)["loss_kd"].item() == pytest.approx(expected.item() / 5, rel=1e-6)  # no ctx: epoch 0


def test_a_method_sees_the_context_and_may_return_named_losses():
    seen = []

    class Parts(nn.Module):
        def forward(self, z_s, z_t, ctx=None):
            seen.append(ctx)
            return {"near": (z_s - z_t).pow(2).mean(), "far": z_s.abs().mean()}

    d = Distiller(Net(), nn.CrossEntropyLoss(), Net(), Parts(), kd_loss_weight=3.0)
    images, targets = batch()
    losses = d(images, targets, BatchContext(epoch=7, progress=0.5))
    assert set(losses) == {"loss_ori", "loss_kd_near", "loss_kd_far"}
    assert seen[0].epoch == 7 and seen[0].progress == 0.5 and torch.equal(seen[0].targets, targets)
    with torch.no_grad():
        assert losses["loss_kd_far"].item() == pytest.approx(3.0 * d.student(images).abs().mean().item(), rel=1e-6)


def test_a_method_without_a_context_parameter_is_called_without_one():
    class Plain(nn.Module):
        def forward(self, z_s, z_t):
            return (z_s - z_t).pow(2).mean()

    d = Distiller(Net(), nn.CrossEntropyLoss(), Net(), Plain())
    assert torch.isfinite(d(*batch(), BatchContext(epoch=1))["loss_kd"])


def test_stored_and_live_teacher_give_the_same_losses():
    torch.manual_seed(0)
    student, teacher = Net(), Net(8)
    images, targets = batch()
    live = Distiller(student, nn.CrossEntropyLoss(), teacher, build_kd_loss("dkd", warmup=0))
    stored = Distiller(student, nn.CrossEntropyLoss(), StoredTeacher(), build_kd_loss("dkd", warmup=0))
    with torch.no_grad():
        outputs = Teacher(teacher).outputs(images, BatchContext())
    item = Batch(*[images, targets, outputs])  # what a teacher store's replay loader yields
    from_store = stored(item.images, item.targets, BatchContext(teacher_outputs=item.teacher_outputs))
    for name, value in live(images, targets).items():
        torch.testing.assert_close(from_store[name], value)
    assert Batch(*[images, targets]).teacher_outputs is None
    assert not list(stored.teacher.parameters()) and "teacher" not in stored.trainable_modules()


def test_stored_teacher_refusals():
    images, targets = batch()
    stored = Distiller(Net(), nn.CrossEntropyLoss(), StoredTeacher(), build_kd_loss("dist"))
    with pytest.raises(ValueError, match="this batch has none"):
        stored(images, targets)
    with pytest.raises(ValueError, match="cannot serve a feature KD loss"):
        Distiller(Net(), nn.CrossEntropyLoss(), StoredTeacher(), build_kd_loss("mse"))


def test_standardisation_on_named_module_features_is_refused():
    with pytest.raises(ValueError, match="ls=1 .*feature maps"):
        Distiller(Net(), nn.CrossEntropyLoss(), Net(), build_kd_loss("dist", ls=1), student_module="features",
                  teacher_module="features")
    Distiller(Net(), nn.CrossEntropyLoss(), Net(), build_kd_loss("dist", ls=1))  # on logits: fine
