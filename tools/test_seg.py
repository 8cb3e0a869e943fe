#!/usr/bin/env python
"""Evaluate a Cityscapes segmentation checkpoint, save colourised predictions; see segmentation/README.md.

    torchrun --nproc_per_node 8 tools/test_seg.py --model deeplabv3 --checkpoint best.pth ...

The installed command ``distkd-test-seg`` is the same.
"""
from segmentation.commands import test

if __name__ == "__main__":
    test()
