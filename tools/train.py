#!/usr/bin/env python
"""Train a classifier with or without KD. Example (8 GPUs; see tools/dist_train.sh):

    torchrun --nproc_per_node 8 tools/train.py -c configs/strategies/distill/resnet_dist.yaml \
        --model tv_resnet18 --teacher-model tv_resnet34 --experiment r18_r34_dist
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from classification.train import main  # noqa: E402
from distkd_cli.run import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(main, fast_exit=True)
