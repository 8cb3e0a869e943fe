"""Tiny inputs for quick CPU runs of the OpenMMLab configs (the tests, ``benchmarks/bench_detection.py``):
a COCO-format set written to disk and the repository's configs shrunk for CPU.

The configs keep their distillation wiring (algorithm, recorders, loss names, RoI sharing); only the
image scale, the data paths and the teacher's backbone width change, and no weights are loaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]  # the repository (its configs/)
DET_CONFIGS = ROOT / "configs" / "detection"
SEG_CONFIGS = ROOT / "configs" / "segmentation_mmseg"
ANN_FILE = "annotations/instances_tiny.json"
IMAGE_SIZE = (128, 96)  # (w, h)
# (category id, box x, y, w, h) per image; ids number the 80 COCO classes from 1: 1 person, 3 car, 17 dog
BOXES = [
    [(1, 10, 12, 40, 60), (3, 70, 40, 50, 30)],
    [(17, 20, 20, 60, 50)],
    [(1, 60, 8, 30, 70), (17, 5, 50, 40, 40)],
]


def write_tiny_coco(root: Path) -> Path:
    """``root/images/*.jpg`` and ``root/annotations/instances_tiny.json`` with the 80 COCO categories."""
    from mmdet.datasets import CocoDataset

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    w, h = IMAGE_SIZE
    for image_id, boxes in enumerate(BOXES, start=1):
        pixels = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        for cat, x, y, bw, bh in boxes:
            pixels[y:y + bh, x:x + bw] = rng.integers(120, 255, 3, dtype=np.uint8)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": cat,
                "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0,
                "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]],
            })
        name = f"{image_id:012d}.jpg"
        Image.fromarray(pixels).save(root / "images" / name, quality=95)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
    categories = [{"id": i + 1, "name": n, "supercategory": "none"}
                  for i, n in enumerate(CocoDataset.METAINFO["classes"])]
    # COCO's real category ids skip numbers; the tiny set numbers them 1..80 in METAINFO order.
    (root / ANN_FILE).write_text(json.dumps({"images": images, "annotations": annotations,
                                             "categories": categories}))
    return root


def point_data(cfg, data_root: Path) -> None:
    """Point every dataloader and evaluator of ``cfg`` at the tiny set, at the tiny image scale."""
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg[key]
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        dataset = loader.dataset
        dataset.update(data_root=str(data_root), ann_file=ANN_FILE, data_prefix=dict(img="images/"))
        for step in dataset.pipeline:
            if step.type == "Resize":
                step.scale = IMAGE_SIZE
    for key in ("val_evaluator", "test_evaluator"):
        cfg[key].ann_file = str(data_root / ANN_FILE)


def small_resnet_fpn(model_cfg, depth: int = 18) -> None:
    """Swap a detector's backbone for an uninitialised ResNet-``depth`` (FPN inputs adjusted)."""
    widths = [64, 128, 256, 512] if depth in (18, 34) else [256, 512, 1024, 2048]
    model_cfg.backbone = dict(type="ResNet", depth=depth, num_stages=4, out_indices=(0, 1, 2, 3),
                              frozen_stages=1, norm_cfg=dict(type="BN", requires_grad=True),
                              norm_eval=True, style="pytorch", init_cfg=None)
    model_cfg.neck.in_channels = widths


def tiny_detection_config(name: str, data_root: Path, small_teacher: bool = True):
    """``configs/detection/<name>`` pointed at the tiny set; no weights; small teacher backbone."""
    from mmengine.config import Config
    from mmengine.hub import get_config

    cfg = Config.fromfile(str(DET_CONFIGS / name))
    point_data(cfg, data_root)
    cfg.model.teacher_ckpt = None
    cfg.model.architecture.backbone.init_cfg = None
    teacher = get_config(cfg.model.teacher.cfg_path).model
    teacher.backbone.init_cfg = None
    if small_teacher:
        small_resnet_fpn(teacher)
    teacher._scope_ = "mmdet"
    cfg.model.teacher = teacher
    student_train_cfg = cfg.model.architecture.train_cfg
    if "rcnn" in student_train_cfg:  # fewer sampled RoIs on CPU (512 per image in the paper's setup)
        student_train_cfg.rpn_proposal.max_per_img = 300
        student_train_cfg.rcnn.sampler.num = 64
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.env_cfg.dist_cfg = dict(backend="gloo")
    cfg.randomness = dict(seed=0)
    return cfg
