#!/usr/bin/env bash
# Evaluate the paper's released teacher, DeepLabV3-ResNet101 (deep stem), on Cityscapes val:
# 78.07 mIoU in the paper (single scale, whole 1024x2048 images, the paper's input format, which
# tools/test_seg.py applies to the paper's files by itself).
# Usage: GPUS=8 DATA=data/cityscapes CKPTS=ckpts bash segmentation/train_scripts/eval_released_teacher.sh [extra test_seg.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-8}
DATA=${DATA:-data/cityscapes}
CKPTS=${CKPTS:-ckpts}
sh tools/torchrun.sh "$GPUS" tools/test_seg.py \
    --model deeplabv3 --backbone resnet101_v1s \
    --checkpoint "$CKPTS/deeplabv3_resnet101_citys_best_model.pth" \
    --data-path "$DATA" --split val "$@"
