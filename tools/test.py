#!/usr/bin/env python
"""Evaluate a checkpoint:

    python tools/test.py -c configs/strategies/distill/resnet_dist.yaml --model tv_resnet18 \
        --data-path data/imagenet --ckpt experiments/r18_r34_dist/best.pth
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from classification.evaluate import main  # noqa: E402
from distkd_cli.run import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(main, fast_exit=True)
