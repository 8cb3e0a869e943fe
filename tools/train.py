#!/usr/bin/env python
"""Train a classifier with or without KD. Example (8 GPUs; see tools/dist_train.sh):

    torchrun --nproc_per_node 8 tools/train.py -c configs/strategies/distill/resnet_dist.yaml \
        --model tv_resnet18 --teacher-model tv_resnet34 --experiment r18_r34_dist

The installed command ``distkd-train`` is the same.
"""
from classification.commands import train

if __name__ == "__main__":
    train()
