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


def dist_reference(z_s, z_t, tau=1.0):
    """DIST (beta = gamma = 1) from the paper's equation, one Pearson correlation at a time (float64;
    eps 1e-8 on the norm product, as the paper's code)."""
    p_s, p_t = (z_s.double() / tau).softmax(1), (z_t.double() / tau).softmax(1)

    def pearson(a, b):
        a, b = a - a.mean(), b - b.mean()
        return (a * b).sum() / (a.norm() * b.norm() + 1e-8)

    inter = 1 - torch.stack([pearson(p_s[i], p_t[i]) for i in range(len(p_s))]).mean()
    intra = 1 - torch.stack([pearson(p_s[:, c], p_t[:, c]) for c in range(p_s.shape[1])]).mean()
    return tau**2 * (inter + intra)


def batch():
    return torch.randn(6, 3, 8, 8), torch.randint(0, 5, (6,))


def test_forward_returns_named_weighted_losses():
    d = make(ori_loss_weight=0.5, kd_loss_weight=2.0)
    images, targets = batch()
    losses = d(images, targets)
    assert set(losses) == {"loss_ori", "loss_kd"}
    with torch.no_grad():
        z_s, z_t = d.student(images), d.teacher.model(images)
        ce = -z_s.log_softmax(1).gather(1, targets[:, None]).mean()  # written out, not the loss under test
        kd = dist_reference(z_s, z_t)
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


def test_distribute_wraps_only_what_trains():
    wrapped = []

    def wrap(module):
        wrapped.append(module)
        return module

    d = make("dist")
    d.distribute(wrap)
    assert wrapped == [d.student]  # a logit loss has no parameters; the teacher is never wrapped
    d = make("mse")
    d.prepare(batch()[0])
    d.distribute(wrap)
    assert wrapped[1:] == [d.student, d.kd_loss]


def test_distribute_with_ddp_keeps_the_teacher_out_of_gradient_sync(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        d = make("mse")
        images, targets = batch()
        d.prepare(images)
        ddp = []
        d.distribute(lambda m: ddp.append(DistributedDataParallel(m)) or ddp[-1])
        synced = {id(p) for m in ddp for p in m.parameters()}
        assert synced == {id(p) for p in d.trainable_modules().parameters()}
        assert not synced & {id(p) for p in d.teacher.parameters()}
        plain = make("mse")
        plain.prepare(images)
        plain.load_state_dict(d.state_dict())
        sum(d(images, targets).values()).backward()
        sum(plain(images, targets).values()).backward()
        for a, b in zip(d.trainable_modules().parameters(), plain.trainable_modules().parameters()):
            torch.testing.assert_close(a.grad, b.grad)  # one process: DDP's averaged gradient is the plain one
    finally:
        dist.destroy_process_group()
