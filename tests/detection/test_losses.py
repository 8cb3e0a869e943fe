"""The KD registry in mmrazor's registry (one wrapper, KDLoss, methods by name) is the project's
distkd/losses; the paper's RetinaNet DIST (method 'dist_sigmoid': element-wise sigmoid, 720 scores per
position) against numpy; the per-anchor sigmoid -> distribution mapping of this project's alternative
(method 'dist_anchor')."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
pytest.importorskip("mmrazor")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

from detection import losses  # noqa: E402
from detection.losses import PerAnchorDIST, SigmoidDIST, anchor_class_logits  # noqa: E402
from distkd.losses import dist_kd, kl_kd_loss  # noqa: E402


@pytest.fixture
def registry():
    """mmrazor's MODELS, with mmrazor as the default scope (as inside the configs' distiller)."""
    from mmengine.registry import DefaultScope
    from mmrazor.registry import MODELS

    with DefaultScope.overwrite_default_scope("mmrazor"):
        yield MODELS


def test_registered_loss_is_the_project_dist(registry):
    cls = registry.get("KDLoss")
    assert cls is losses.KDLoss
    loss = registry.build(dict(type="KDLoss", method="dist", beta=2.0, gamma=0.5, tau=1.5, loss_weight=3.0))
    assert type(loss.kd) is dist_kd.DISTLoss
    z_s, z_t = torch.randn(16, 81), torch.randn(16, 81)
    torch.testing.assert_close(loss(z_s, z_t), 3.0 * dist_kd.dist_loss(z_s, z_t, beta=2.0, gamma=0.5, tau=1.5))
    # mmrazor's own classification DISTLoss keeps its name and code.
    assert registry.get("DISTLoss") is not cls


def test_registered_losses_call_dist_kd(registry, monkeypatch):
    calls = []
    real = dist_kd.DISTLoss.forward

    def spy(self, z_s, z_t):
        calls.append(z_s.shape)
        return real(self, z_s, z_t)

    monkeypatch.setattr(dist_kd.DISTLoss, "forward", spy)
    registry.build(dict(type="KDLoss"))(torch.randn(4, 5), torch.randn(4, 5))
    anchor_loss = registry.build(dict(type="KDLoss", method="dist_anchor", num_classes=3))
    anchor_loss(torch.randn(2, 27, 4, 4), torch.randn(2, 27, 4, 4))
    assert calls == [torch.Size([4, 5]), torch.Size([2, 4, 9, 4, 4])]


def test_teacher_gets_no_gradient():
    z_s = torch.randn(8, 6, requires_grad=True)
    z_t = torch.randn(8, 6, requires_grad=True)
    losses.KDLoss()(z_s, z_t).backward()
    assert z_s.grad is not None and z_s.grad.abs().sum() > 0 and z_t.grad is None


def test_anchor_layout_follows_mmdet():
    """Channel a*C + c of retina_cls is anchor a, class c (mmdet: permute(0, 2, 3, 1).reshape(-1, C))."""
    n, a, c, h, w = 2, 3, 4, 5, 6
    score = torch.randn(n, a * c, h, w)
    logits = anchor_class_logits(score, num_classes=c, background=True)
    assert logits.shape == (n, c + 1, a, h, w)
    per_anchor = score.permute(0, 2, 3, 1).reshape(-1, c)  # mmdet's order: (n, h, w, a) rows
    ours = logits[:, :c].permute(0, 3, 4, 2, 1).reshape(-1, c)
    torch.testing.assert_close(ours, per_anchor)
    assert torch.all(logits[:, c] == 0)
    assert anchor_class_logits(score, c, background=False).shape == (n, c, a, h, w)
    with pytest.raises(ValueError, match="multiple of num_classes"):
        anchor_class_logits(score, num_classes=5)


def test_background_logit_extends_the_sigmoid():
    """One class: softmax([z, 0]) is exactly [sigmoid(z), 1 - sigmoid(z)]; many: p_c = e^z_c / (1 + sum e^z)."""
    z = torch.randn(2, 9, 3, 3)  # 9 anchors, 1 class
    p = anchor_class_logits(z, num_classes=1).softmax(dim=1)
    torch.testing.assert_close(p[:, 0], torch.sigmoid(z))
    torch.testing.assert_close(p[:, 1], 1 - torch.sigmoid(z))
    z = torch.randn(1, 2 * 4, 2, 2)
    p = anchor_class_logits(z, num_classes=4).softmax(dim=1)
    odds = z.reshape(1, 2, 4, 2, 2).transpose(1, 2).exp()
    torch.testing.assert_close(p[:, :4], odds / (1 + odds.sum(1, keepdim=True)))


def test_every_anchor_is_a_sample():
    """The dense DIST equals DIST on the (anchors, C+1) matrix of per-anchor logits."""
    n, a, c, h, w = 2, 9, 80, 4, 5
    s, t = torch.randn(n, a * c, h, w), torch.randn(n, a * c, h, w)
    loss = losses.KDLoss("dist_anchor", num_classes=c, loss_weight=2.0)(s, t)

    def matrix(x):
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)
        return torch.cat([rows, torch.zeros(len(rows), 1)], dim=1)

    torch.testing.assert_close(loss, 2.0 * dist_kd.dist_loss(matrix(s), matrix(t)))
    assert float(losses.KDLoss("dist_anchor", num_classes=c)(s, s)) == pytest.approx(0.0, abs=1e-5)


def numpy_paper_retina_dist(cls_s: np.ndarray, cls_t: np.ndarray, eps: float = 1e-8) -> float:
    """The paper's RetinaNet DIST written out in numpy, float64: ``(N, 720, H, W)`` -> transpose(1, 3)
    -> ``(N*W*H, 720)`` rows, element-wise sigmoid, Pearson with ``eps`` added to the norm product,
    beta = gamma = 1."""
    def rows(x):
        x = x.transpose(0, 3, 2, 1).reshape(-1, x.shape[1])
        return 1 / (1 + np.exp(-x))

    def mean_pearson(a, b):  # over axis 1, one value per row
        a = a - a.mean(1, keepdims=True)
        b = b - b.mean(1, keepdims=True)
        return ((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + eps)).mean()

    p_s, p_t = rows(cls_s), rows(cls_t)
    return (1 - mean_pearson(p_s, p_t)) + (1 - mean_pearson(p_s.T, p_t.T))


def retina_dist_losses(registry):
    """The five DIST losses of the RetinaNet DIST config, built as its distiller builds them."""
    from mmengine.config import Config

    from detection.tiny import DET_CONFIGS

    cfg = Config.fromfile(str(DET_CONFIGS / "retinanet_r50_dist_retinanet_x101_2x_coco.py"))
    specs = cfg.model.distiller.distill_losses
    assert sorted(specs) == [f"loss_dist_cls_fpn{i}" for i in range(5)]
    return [registry.build(specs[f"loss_dist_cls_fpn{i}"]) for i in range(5)]


@pytest.mark.parametrize("shape", [(2, 720, 5, 7), (1, 720, 3, 3)])
def test_paper_retina_dist_equals_numpy(registry, shape):
    rng = np.random.default_rng(sum(shape))
    # retina_cls-like scores: around RetinaNet's prior bias -log(99) = -4.6, some confident positives
    cls_s = rng.normal(-4.6, 2.0, shape)
    cls_t = cls_s + rng.normal(0.0, 1.5, shape)
    cls_t.flat[rng.choice(cls_t.size, 50, replace=False)] = 6.0
    for loss in retina_dist_losses(registry):
        assert type(loss.kd) is SigmoidDIST and loss.kd.probs == "sigmoid"
        for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
            value = loss(torch.tensor(cls_s, dtype=dtype), torch.tensor(cls_t, dtype=dtype))
            assert float(value) == pytest.approx(numpy_paper_retina_dist(cls_s, cls_t), rel=tol, abs=tol)


def test_paper_retina_dist_is_not_the_per_anchor_variant(registry):
    """Sigmoid rows of 720 scores and per-anchor 81-way softmax rows are different losses; the
    per-anchor config swaps in the alternative on all five levels."""
    from mmengine.config import Config

    from detection.tiny import DET_CONFIGS

    s, t = torch.randn(2, 720, 4, 4) - 4, torch.randn(2, 720, 4, 4) - 4
    paper = retina_dist_losses(registry)[0](s, t)
    cfg = Config.fromfile(str(DET_CONFIGS / "retinanet_r50_dist-anchor_retinanet_x101_2x_coco.py"))
    specs = cfg.model.distiller.distill_losses
    assert sorted(specs) == [f"loss_dist_cls_fpn{i}" for i in range(5)]
    for spec in specs.values():
        per_anchor = registry.build(spec)
        assert type(per_anchor.kd) is PerAnchorDIST and per_anchor.kd.background
        assert abs(float(paper) - float(per_anchor(s, t))) > 1e-3
    with pytest.raises(ValueError, match="method 'dist_anchor' has no option 'probs'"):
        registry.build(dict(type="KDLoss", method="dist_anchor", probs="sigmoid"))


@pytest.mark.parametrize(("spec", "message"), [
    (dict(method="dkd"), "method='dkd' needs one class target per sample, which an mmrazor distill loss"),
    (dict(method="mse"), "method='mse' distils feature maps"),
    (dict(method="dsit"), "unknown --kd method 'dsit'. Did you mean: dist"),
    (dict(method="dist", alpha=1.0), "method 'dist' has no option 'alpha'"),
    (dict(method="dist_sigmoid", ls=True), "method 'dist_sigmoid' has no option 'ls'"),
])
def test_methods_an_mmrazor_loss_cannot_run_are_refused_in_one_line(registry, spec, message):
    with pytest.raises(ValueError) as err:
        registry.build(dict(type="KDLoss", **spec))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_logit_method_of_the_registry_by_name(registry):
    z_s, z_t = torch.randn(16, 81), torch.randn(16, 81)
    kd = registry.build(dict(type="KDLoss", method="kd", tau=2.0, ls=True, loss_weight=0.5))
    torch.testing.assert_close(kd(z_s, z_t), 0.5 * kl_kd_loss(z_s, z_t, 2.0, ls=True))
    dist = registry.build(dict(type="KDLoss", method="dist_t4", ls=1))
    torch.testing.assert_close(dist(z_s, z_t), dist_kd.dist_loss(z_s, z_t, tau=4.0, ls=True))


def test_a_method_registered_once_is_available_by_name(registry, scaled_kd_method):
    loss = registry.build(dict(type="KDLoss", method="scaled", scale=3.0, loss_weight=2.0))
    z_s, z_t = torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(loss(z_s, z_t), 6.0 * (z_s - z_t).pow(2).mean())


def test_registered_variants():
    from distkd.losses import kd_config

    assert isinstance(kd_config("dist_sigmoid").build(), SigmoidDIST) and kd_config("dist_sigmoid").build().probs == \
        "sigmoid"
    anchor = kd_config("dist_anchor", {"num_classes": 3}).build()
    assert isinstance(anchor, PerAnchorDIST) and (anchor.num_classes, anchor.background) == (3, True)
