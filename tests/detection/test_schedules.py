"""The paper's schedule (mmdet 2.x schedule_2x + coco_detection, as its detection configs ran them),
asserted on every detection config after `_base_` inheritance, and pinned in this project's own
files rather than left to mmdet's base configs."""
from __future__ import annotations

import ast

import pytest

pytest.importorskip("mmengine")
pytest.importorskip("mmdet")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

from detection.tiny import DET_CONFIGS  # noqa: E402

# config -> the paper's SGD lr (0.02 for Faster R-CNN; its RetinaNet configs set 0.01 explicitly)
PAPER_LR = {
    "faster-rcnn_r50_fpn_2x_coco.py": 0.02,
    "faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py": 0.02,
    "faster-rcnn_r50_dist-mimic_cascade-mask-rcnn_x101_2x_coco.py": 0.02,
    "retinanet_r50_fpn_2x_coco.py": 0.01,
    "retinanet_r50_dist_retinanet_x101_2x_coco.py": 0.01,
    "retinanet_r50_dist-mimic_retinanet_x101_2x_coco.py": 0.01,
    "retinanet_r50_dist-anchor_retinanet_x101_2x_coco.py": 0.01,  # the project's per-anchor alternative
}
PINNED_KEYS = ("optim_wrapper", "param_scheduler", "train_cfg", "auto_scale_lr", "train_pipeline",
               "test_pipeline", "train_dataloader", "val_dataloader", "test_dataloader")


def unscoped(node):
    """A config node as plain dicts / lists, without the `_scope_` tags mmengine adds to inherited dicts."""
    if hasattr(node, "to_dict"):
        node = node.to_dict()
    if isinstance(node, dict):
        return {k: unscoped(v) for k, v in node.items() if k != "_scope_"}
    return [unscoped(v) for v in node] if isinstance(node, (list, tuple)) else node


def step(pipeline, name):
    (found,) = [s for s in pipeline if s["type"] == name]
    return found


def test_every_detection_config_is_in_the_table():
    assert sorted(p.name for p in DET_CONFIGS.glob("*.py")) == sorted(PAPER_LR)


@pytest.mark.parametrize("name", list(PAPER_LR))
def test_resolved_schedule_is_the_papers(name):
    from mmengine.config import Config

    cfg = Config.fromfile(str(DET_CONFIGS / name))
    optim = unscoped(cfg.optim_wrapper)
    assert optim["type"] == "OptimWrapper" and "clip_grad" not in optim and "paramwise_cfg" not in optim
    assert optim["optimizer"] == dict(type="SGD", lr=PAPER_LR[name], momentum=0.9, weight_decay=1e-4)
    assert unscoped(cfg.param_scheduler) == [
        dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=500),  # warmup: 500 iterations
        dict(type="MultiStepLR", begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)]
    assert unscoped(cfg.train_cfg) == dict(type="EpochBasedTrainLoop", max_epochs=24, val_interval=1)
    assert cfg.train_dataloader.batch_size == 2  # per GPU
    assert unscoped(cfg.auto_scale_lr) == dict(enable=False, base_batch_size=16)  # 8 GPUs x 2 images
    train = cfg.train_dataloader.dataset.pipeline
    assert unscoped(step(train, "Resize")) == dict(type="Resize", scale=[1333, 800], keep_ratio=True)  # (w, h)
    assert unscoped(step(train, "RandomFlip")) == dict(type="RandomFlip", prob=0.5)
    for loader in ("val_dataloader", "test_dataloader"):
        resize = step(cfg[loader].dataset.pipeline, "Resize")
        assert unscoped(resize) == dict(type="Resize", scale=[1333, 800], keep_ratio=True)  # (w, h)
        assert cfg[loader].batch_size == 1


@pytest.mark.parametrize("name", ["faster-rcnn_r50_fpn_2x_coco.py", "retinanet_r50_fpn_2x_coco.py"])
def test_schedule_is_pinned_in_our_files(name):
    """The baselines set every schedule key themselves (the DIST configs inherit them from the
    baselines, the +mimic and per-anchor configs from the DIST configs), so a change in mmdet's base files cannot
    reach them; the DIST configs' _base_ is this project's baseline, not mmdet's."""
    tree = ast.parse((DET_CONFIGS / name).read_text())
    assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert set(PINNED_KEYS) <= assigned
    stem = name.split("_")[0]
    for dist in (n for n in PAPER_LR if n.startswith(f"{stem}_r50_dist_")):
        assert f"_base_ = ['./{name}']" in (DET_CONFIGS / dist).read_text()
    for variant in (n for n in PAPER_LR if n.startswith(f"{stem}_r50_dist-")):  # +mimic, per-anchor
        dist = variant.replace("dist-mimic", "dist").replace("dist-anchor", "dist")
        assert f"_base_ = ['./{dist}']" in (DET_CONFIGS / variant).read_text()
