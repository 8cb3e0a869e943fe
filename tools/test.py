#!/usr/bin/env python
"""Evaluate a checkpoint:

    python tools/test.py -c configs/strategies/distill/resnet_dist.yaml --model tv_resnet18 \
        --data-path data/imagenet --ckpt experiments/r18_r34_dist/best.pth

The installed command ``distkd-test`` is the same.
"""
from classification.commands import test

if __name__ == "__main__":
    test()
