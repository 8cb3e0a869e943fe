#!/usr/bin/env python
"""Evaluate a student: COCO bbox mAP through pycocotools (mmdet's CocoMetric), or mIoU for mmseg.

    python tools/test_mmdet.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] [--launcher ...]

Multi-GPU: ``sh tools/dist_test_mmdet.sh CONFIG CHECKPOINT GPUS``; see detection/test.py.

The installed command ``distkd-test-mmdet`` is the same.
"""
from detection.commands import test

if __name__ == "__main__":
    test()
