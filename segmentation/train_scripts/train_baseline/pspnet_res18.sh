#!/usr/bin/env bash
# Student baseline: PSPNet-ResNet18, Cityscapes val mIoU 72.55 in the paper.
# Usage: GPUS=8 DATA=data/cityscapes CKPTS=ckpts bash segmentation/train_scripts/train_baseline/pspnet_res18.sh [extra train_seg.py options]
set -euo pipefail
cd "$(dirname "$0")/../../.."
GPUS=${GPUS:-8}
DATA=${DATA:-data/cityscapes}
CKPTS=${CKPTS:-ckpts}
BACKBONE=${BACKBONE:-resnet18}
torchrun --nproc_per_node "$GPUS" tools/train_seg.py \
    --student-model psp \
    --student-backbone "$BACKBONE" \
    --data "$DATA" \
    --save-dir work_dirs/seg/pspnet_r18 \
    --student-pretrained-base "$CKPTS/$BACKBONE-imagenet.pth" \
    --batch-size 16 --max-iterations 40000 --lr 0.02 --amp "$@"
