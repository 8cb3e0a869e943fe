#!/usr/bin/env python
"""Cityscapes segmentation training (baseline or DIST); see segmentation/README.md.

    torchrun --nproc_per_node 8 tools/train_seg.py --teacher-model deeplabv3 --student-model deeplabv3 ...

The installed command ``distkd-train-seg`` is the same.
"""
from segmentation.commands import train

if __name__ == "__main__":
    train()
