"""Every distillation config builds its student and teacher (weights uninitialised, teacher backbone
shrunk for CPU) and runs one training iteration on a tiny COCO-format set: the distillation losses
come back by name, finite, and only the student (and the +mimic aligners) gets gradients. The RoI-sharing path runs the
teacher's first cascade stage on exactly the student's sampled RoIs."""
from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
pytest.importorskip("mmdet")
pytest.importorskip("mmrazor")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

import detection.plugin  # noqa: E402,F401
from detection.tiny import tiny_detection_config  # noqa: E402

MIMIC = [f"distill.loss_mimic_fpn{i}" for i in range(5)]
FRCNN = "faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py"
FRCNN_MIMIC = "faster-rcnn_r50_dist-mimic_cascade-mask-rcnn_x101_2x_coco.py"
RETINA = "retinanet_r50_dist_retinanet_x101_2x_coco.py"
RETINA_MIMIC = "retinanet_r50_dist-mimic_retinanet_x101_2x_coco.py"
RETINA_DIST = [f"distill.loss_dist_cls_fpn{i}" for i in range(5)]
EXPECTED = {
    FRCNN: (["distill.loss_dist_cls"], "roi_head.bbox_head.fc_cls.weight"),
    FRCNN_MIMIC: (["distill.loss_dist_cls", *MIMIC], "roi_head.bbox_head.fc_cls.weight"),
    RETINA: (RETINA_DIST, "bbox_head.retina_cls.weight"),
    RETINA_MIMIC: (RETINA_DIST + MIMIC, "bbox_head.retina_cls.weight"),
}


def build_model_and_batch(cfg):
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)  # no init_weights(): weights stay as constructed
    model.train()
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    return model, model.data_preprocessor(batch, True)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_one_training_iteration(name, tiny_coco):
    expected, distilled_param = EXPECTED[name]
    model, data = build_model_and_batch(tiny_detection_config(name, tiny_coco))
    losses = model(**data, mode="loss")

    distill = {k: v for k, v in losses.items() if k.startswith("distill.")}
    assert sorted(distill) == sorted(expected)
    assert any(k.startswith("student.loss_cls") for k in losses)
    for key, value in distill.items():
        assert value.dim() == 0 and torch.isfinite(value) and value > 0, (key, value)

    student_params = dict(model.student.named_parameters())
    dist_keys = [k for k in expected if "dist" in k.split(".")[1]]
    grad = torch.autograd.grad(sum(distill[k] for k in dist_keys), student_params[distilled_param], retain_graph=True)
    assert grad[0].abs().sum() > 0, "DIST gives the student's classifier no gradient"

    total, log_vars = model.parse_losses(losses)
    assert set(expected) <= set(log_vars)
    total.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    trainable = [p for p in model.student.parameters() if p.requires_grad]  # frozen_stages=1 freezes the stem
    assert len(trainable) > 0.8 * len(student_params) and all(p.grad is not None for p in trainable)
    aligners = list(model.distiller.connectors.parameters())  # +mimic: one 1x1 conv per FPN level
    assert len(aligners) == (10 if "mimic" in name else 0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in aligners)


def test_teacher_runs_on_the_student_rois(tiny_coco):
    """Same RoIs (count and boxes) into the teacher's stage-0 RoI head; its RPN never runs."""
    model, data = build_model_and_batch(tiny_detection_config(FRCNN, tiny_coco))
    teacher_roi_head = model.teacher.roi_head
    seen = {"teacher_rois": [], "rpn_calls": 0, "later_stages": 0}
    teacher_roi_head.bbox_roi_extractor[0].register_forward_hook(
        lambda m, inputs, out: seen["teacher_rois"].append(inputs[1].clone()))
    model.teacher.rpn_head.register_forward_hook(lambda *a: seen.__setitem__("rpn_calls", seen["rpn_calls"] + 1))
    for stage in (1, 2):
        teacher_roi_head.bbox_head[stage].register_forward_hook(
            lambda *a: seen.__setitem__("later_stages", seen["later_stages"] + 1))

    model(**data, mode="loss")
    student_rois = model.student_rois()
    s_cls = model.distiller.get_record("cls", from_student=True)
    t_cls = model.distiller.get_record("cls", from_student=False)

    assert len(seen["teacher_rois"]) == 1 and seen["rpn_calls"] == 0 and seen["later_stages"] == 0
    assert student_rois.shape[1] == 5 and len(student_rois) > len(data["data_samples"])
    torch.testing.assert_close(seen["teacher_rois"][0], student_rois, rtol=0, atol=0)
    assert s_cls.shape == t_cls.shape == (len(student_rois), 81)
    # the recorded teacher logits are its stage-0 head on those RoIs
    with torch.no_grad():
        feats = model.teacher.extract_feat(data["inputs"])
        extractor = teacher_roi_head.bbox_roi_extractor[0]
        expected_cls, _ = teacher_roi_head.bbox_head[0](extractor(feats[: extractor.num_inputs], student_rois))
    torch.testing.assert_close(t_cls, expected_cls)


@pytest.mark.parametrize("name", [FRCNN, RETINA])
def test_full_size_teacher_and_student_build(name):
    """The configs as written (X101-64x4d teachers, R50 students), built with no weights loaded."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from detection.tiny import DET_CONFIGS

    cfg = Config.fromfile(str(DET_CONFIGS / name))
    cfg.model.teacher_ckpt = None
    init_default_scope(cfg.default_scope)
    with pytest.warns(UserWarning, match="teacher keeps random weights"):
        model = MODELS.build(cfg.model)
    backbone = model.teacher.backbone
    assert type(backbone).__name__ == "ResNeXt" and backbone.depth == 101 and backbone.groups == 64
    assert type(model.student.backbone).__name__ == "ResNet" and model.student.backbone.depth == 50
    assert model.teacher._is_init  # its ImageNet init_cfg will not download
    if name == FRCNN:
        heads = model.teacher.roi_head.bbox_head
        assert len(heads) == 3 and heads[0].fc_cls.out_features == 81


def test_weights_load_from_local_files(tiny_coco, tmp_path):
    """teacher_ckpt (an mmdet-style checkpoint) and the student's torchvision backbone file load
    through mmengine under torch's weights_only loading; the teacher's own init never runs."""
    import torchvision
    from mmengine.registry import MODELS, init_default_scope

    cfg = tiny_detection_config(FRCNN, tiny_coco)
    init_default_scope(cfg.default_scope)
    teacher = MODELS.build(cfg.model.teacher)
    with torch.no_grad():
        for p in teacher.parameters():
            p.normal_()
    meta = {"CLASSES": ("person",) * 80, "mmdet_version": "2.3.0", "config": "...", "epoch": 20}
    torch.save({"meta": meta, "state_dict": teacher.state_dict()}, tmp_path / "teacher.pth")
    resnet = torchvision.models.resnet50()
    torch.save(resnet.state_dict(), tmp_path / "resnet50.pth")
    cfg.model.teacher_ckpt = str(tmp_path / "teacher.pth")
    cfg.model.architecture.backbone.init_cfg = dict(type="Pretrained", checkpoint=str(tmp_path / "resnet50.pth"))

    model = MODELS.build(cfg.model)
    model.init_weights()
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(model.teacher.state_dict()[key], value)
    torch.testing.assert_close(model.student.backbone.conv1.weight, resnet.conv1.weight)
    torch.testing.assert_close(model.student.backbone.layer4[2].conv3.weight, resnet.layer4[2].conv3.weight)


@pytest.mark.parametrize("name", ["faster-rcnn_r50_fpn_2x_coco.py", "retinanet_r50_fpn_2x_coco.py"])
def test_baseline_configs_are_mmdets_with_a_local_backbone(name, tiny_coco, tmp_path):
    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.registry import MODELS, init_default_scope

    from detection.checkpoints import weight_files
    from detection.tiny import DET_CONFIGS

    cfg = Config.fromfile(str(DET_CONFIGS / name))
    mmdet_cfg = get_config(f"mmdet::{name.split('_')[0]}/{name}".replace("faster-rcnn/", "faster_rcnn/"))
    assert list(weight_files(cfg.model, "model")) == [
        ("model.backbone.init_cfg.checkpoint", "checkpoints/resnet50-0676ba61.pth")]
    cfg.model.backbone.init_cfg = mmdet_cfg.model.backbone.init_cfg = None
    def unscoped(node):  # mmengine tags dicts inherited through `mmdet::` with _scope_
        if isinstance(node, dict):
            return {k: unscoped(v) for k, v in node.items() if k != "_scope_"}
        return [unscoped(v) for v in node] if isinstance(node, (list, tuple)) else node

    assert unscoped(cfg.model.to_dict()) == unscoped(mmdet_cfg.model.to_dict())
    assert unscoped(cfg.train_cfg.to_dict()) == unscoped(mmdet_cfg.train_cfg.to_dict())
    init_default_scope("mmdet")
    assert type(MODELS.build(cfg.model)).__name__ in ("FasterRCNN", "RetinaNet")


@pytest.mark.parametrize(("name", "spec"), [
    (FRCNN, dict(method="kd", tau=4.0)),
    (FRCNN, dict(method="kd", tau=2.0, ls=True)),
    (FRCNN, dict(method="dist", tau=1.0, ls=True)),
    ("retinanet_r50_dist-anchor_retinanet_x101_2x_coco.py", None),
])
def test_other_registry_methods_train_one_iteration(name, spec, tiny_coco):
    """A method of the KD registry, chosen by name in the config, trains: finite KD terms in the logged losses."""
    cfg = tiny_detection_config(name, tiny_coco)
    losses_cfg = cfg.model.distiller.distill_losses
    if spec is not None:
        for key in losses_cfg:
            losses_cfg[key] = dict(type="KDLoss", loss_weight=1.0, **spec)
    model, data = build_model_and_batch(cfg)
    assert all(type(loss).__name__ == "KDLoss" for loss in model.distiller.distill_losses.values())
    total, log_vars = model.parse_losses(model(**data, mode="loss"))
    distill = {k: v for k, v in log_vars.items() if k.startswith("distill.")}
    assert len(distill) == len(losses_cfg) and all(math.isfinite(float(v)) and v > 0 for v in distill.values())
    total.backward()
