#!/usr/bin/env python
"""Run a teacher once over the training set under V replayable views per image and store its outputs.

Takes the trainer's data and teacher options (the same -c config and --dataset / --data-path /
--image-size / --cutout-length / --teacher-model / --teacher-ckpt), plus the store's own:

    # CIFAR-100, exact mode: all 81 crop offsets x 2 flips of every image (docs/teacher_store.md)
    python tools/build_teacher_store.py -c configs/strategies/distill/dist_cifar.yaml --exact \
        --teacher-model cifar_resnet32x4 --teacher-ckpt checkpoints/cifar100/cifar_resnet32x4.pth \
        --out stores/c100_r32x4
    # ImageNet: 8 RandomResizedCrop + flip views per image, top-50 logits
    python tools/build_teacher_store.py -c configs/strategies/distill/resnet_dist.yaml --views 8 --topk 50 \
        --teacher-model tv_resnet34 --out stores/in1k_r34 --device cuda --amp

Killed, the same command resumes it (finished chunks are kept). Train with ``--teacher-store DIR``.

The installed command ``distkd-build-teacher-store`` is the same.
"""
from classification.commands import build_teacher_store

if __name__ == "__main__":
    build_teacher_store()
