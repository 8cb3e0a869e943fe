#!/usr/bin/env python
"""Train an OpenMMLab distillation config of this project (mmdet / mmseg student, mmrazor algorithm).

    python tools/train_mmdet.py configs/detection/faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py \
        --work-dir work_dirs/frcnn_dist [--teacher-ckpt FILE] [--resume [CHECKPOINT]] [--amp] [--cfg-options k=v ...]

Multi-GPU: ``sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR``; see detection/train.py.

The installed command ``distkd-train-mmdet`` is the same.
"""
from detection.commands import train

if __name__ == "__main__":
    train()
