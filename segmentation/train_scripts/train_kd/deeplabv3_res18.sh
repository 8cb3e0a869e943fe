#!/usr/bin/env bash
# DIST: DeepLabV3-ResNet101 -> DeepLabV3-ResNet18, Cityscapes val mIoU 77.10 in the paper (baseline 74.21).
# Usage: GPUS=8 DATA=data/cityscapes CKPTS=ckpts bash segmentation/train_scripts/train_kd/deeplabv3_res18.sh [extra train_seg.py options]
set -euo pipefail
cd "$(dirname "$0")/../../.."
GPUS=${GPUS:-8}
DATA=${DATA:-data/cityscapes}
CKPTS=${CKPTS:-ckpts}
BACKBONE=${BACKBONE:-resnet18}
TEACHER_BACKBONE=${TEACHER_BACKBONE:-resnet101}
TEACHER_CKPT=${TEACHER_CKPT:-work_dirs/seg/deeplabv3_r101/best.pth}
torchrun --nproc_per_node "$GPUS" tools/train_seg.py \
    --teacher-model deeplabv3 \
    --student-model deeplabv3 \
    --teacher-backbone "$TEACHER_BACKBONE" \
    --student-backbone "$BACKBONE" \
    --data "$DATA" \
    --save-dir work_dirs/seg/dist_dv3-r101_dv3-r18 \
    --teacher-pretrained "$TEACHER_CKPT" \
    --student-pretrained-base "$CKPTS/$BACKBONE-imagenet.pth" \
    --batch-size 16 --max-iterations 40000 --lr 0.02 --lambda-kd 1.0 --eval-teacher --amp "$@"
