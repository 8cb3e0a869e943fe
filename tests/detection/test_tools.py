"""tools/train_mmdet.py -> student_final.pth -> tools/test_mmdet.py on the tiny COCO set (COCO mAP
through pycocotools), plain-mmdet loading of the student, and the one-line errors / launchers."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
pytest.importorskip("mmdet")
pytest.importorskip("mmrazor")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

import detection.plugin  # noqa: E402,F401
import detection.test as test_mmdet  # noqa: E402
import detection.train as train_mmdet  # noqa: E402
from detection.tiny import DET_CONFIGS, point_data, tiny_detection_config  # noqa: E402
from distkd.errors import UserError  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

FRCNN = DET_CONFIGS / "faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py"
PLAIN_STUDENT = "mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py"


@pytest.fixture(scope="module")
def trained(tiny_coco, tmp_path_factory):
    """One epoch (2 iterations) of the Faster R-CNN DIST config through mmengine's Runner."""
    from mmengine.runner import Runner

    cfg = tiny_detection_config(FRCNN.name, tiny_coco)
    cfg.work_dir = str(tmp_path_factory.mktemp("frcnn_dist"))
    cfg.model.architecture.test_cfg.rcnn.score_thr = 0.0  # random weights: keep every box for COCOeval
    runner = Runner.from_cfg(cfg)
    runner.train()
    return cfg.work_dir, runner


def test_training_writes_a_plain_student_checkpoint(trained):
    from mmdet.apis import inference_detector, init_detector
    from mmengine.hub import get_config

    work_dir, runner = trained
    path = os.path.join(work_dir, "student_final.pth")
    ckpt = torch.load(path, map_location="cpu")  # weights_only loading
    plain_cfg = get_config(PLAIN_STUDENT)
    detector = init_detector(plain_cfg, path, device="cpu")  # plain mmdet, no plugin involved
    assert set(ckpt["state_dict"]) == set(detector.state_dict())
    for key, value in runner.model.student.state_dict().items():
        torch.testing.assert_close(ckpt["state_dict"][key], value)
    assert ckpt["meta"]["dataset_meta"]["classes"][0] == "person"
    image = os.path.join(runner.train_dataloader.dataset.data_root, "images", "000000000001.jpg")
    pred = inference_detector(detector, image).pred_instances
    classes = len(ckpt["meta"]["dataset_meta"]["classes"])
    assert pred.bboxes.shape == (len(pred), 4) and len(pred.scores) == len(pred.labels) == len(pred)
    assert bool(((pred.scores >= 0) & (pred.scores <= 1)).all()) and bool((pred.labels < classes).all())


def test_test_tool_reports_coco_map(trained, tiny_coco):
    work_dir, _ = trained
    args = test_mmdet.parse_args([str(FRCNN), os.path.join(work_dir, "epoch_1.pth"), "--work-dir", work_dir])
    cfg = test_mmdet.build_config(args)  # full distillation checkpoint -> its student part
    assert "architecture" not in cfg.model and cfg.model.type == "FasterRCNN"
    point_data(cfg, tiny_coco)
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    from mmengine.runner import Runner

    metrics = Runner.from_cfg(cfg).test()
    for key in ("coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_s"):
        assert key in metrics and -1 <= metrics[key] <= 1


def test_coco_metric_scores_perfect_boxes_one(tiny_coco):
    """The evaluator (mmdet's CocoMetric -> pycocotools) gives mAP 1.0 to the ground truth itself."""
    import json

    from mmdet.datasets import CocoDataset
    from mmdet.evaluation import CocoMetric

    ann = json.loads((tiny_coco / "annotations/instances_tiny.json").read_text())
    metric = CocoMetric(ann_file=str(tiny_coco / "annotations/instances_tiny.json"), metric="bbox")
    metric.dataset_meta = CocoDataset.METAINFO
    for image in ann["images"]:
        boxes = [a for a in ann["annotations"] if a["image_id"] == image["id"]]
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in boxes)], dtype=torch.float)
        pred = dict(bboxes=xyxy, scores=torch.ones(len(boxes)),
                    labels=torch.tensor([a["category_id"] - 1 for a in boxes]))
        metric.process({}, [dict(img_id=image["id"], ori_shape=(image["height"], image["width"]), pred_instances=pred)])
    results = metric.evaluate(size=len(ann["images"]))
    assert results["coco/bbox_mAP"] == pytest.approx(1.0)


def test_missing_weights_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the configs' relative checkpoints/ paths must not exist
    with pytest.raises(UserError, match="checkpoints/resnet50-0676ba61.pth.*wget"):
        train_mmdet.main([str(FRCNN), "--work-dir", str(tmp_path)])
    backbone = tmp_path / "r50.pth"
    torch.save({}, backbone)
    with pytest.raises(UserError, match="teacher_ckpt not found: checkpoints/cascade_mask_rcnn_x101_64x4d"):
        train_mmdet.main([str(FRCNN), "--work-dir", str(tmp_path), "--student-backbone-ckpt", str(backbone)])
    with pytest.raises(UserError, match="must be a local file"):
        train_mmdet.main([str(FRCNN), "--teacher-ckpt", "https://x/y.pth", "--student-backbone-ckpt", str(backbone)])
    result = subprocess.run([sys.executable, str(ROOT / "tools/train_mmdet.py"), str(FRCNN)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("error: model.architecture.backbone.init_cfg.checkpoint not found")


def test_launchers_print_usage():
    for script in ("dist_train_mmdet.sh", "dist_test_mmdet.sh", "slurm_train_mmdet.sh", "slurm_test_mmdet.sh"):
        result = subprocess.run(["sh", str(ROOT / "tools" / script)], capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.startswith("error: "), script


@pytest.mark.slow
def test_dist_train_launcher_runs_one_cpu_process(tiny_coco, tmp_path):
    """`sh tools/dist_train_mmdet.sh CONFIG 1 WORK_DIR` through torchrun on the tiny set (CPU: gloo)."""
    cfg = tiny_detection_config("retinanet_r50_dist_retinanet_x101_2x_coco.py", tiny_coco)
    for key in ("val_dataloader", "val_cfg", "val_evaluator"):
        cfg[key] = None
    config = tmp_path / "tiny_retina_dist.py"
    cfg.dump(str(config))
    env = {**os.environ, "PORT": str(29500 + os.getpid() % 1000), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        ["sh", str(ROOT / "tools/dist_train_mmdet.sh"), str(config), "1", str(tmp_path / "work")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (tmp_path / "work" / "student_final.pth").is_file()
    assert "distill.loss_dist_cls_fpn4" in (result.stdout + result.stderr)
