#!/usr/bin/env bash
# Teacher: DeepLabV3-ResNet101, Cityscapes val mIoU 78.07 in the paper.
# Usage: GPUS=8 DATA=data/cityscapes CKPTS=ckpts bash segmentation/train_scripts/train_baseline/deeplabv3_res101.sh [extra train_seg.py options]
set -euo pipefail
cd "$(dirname "$0")/../../.."
GPUS=${GPUS:-8}
DATA=${DATA:-data/cityscapes}
CKPTS=${CKPTS:-ckpts}
BACKBONE=${BACKBONE:-resnet101}
torchrun --nproc_per_node "$GPUS" tools/train_seg.py \
    --student-model deeplabv3 \
    --student-backbone "$BACKBONE" \
    --data "$DATA" \
    --save-dir work_dirs/seg/deeplabv3_r101 \
    --student-pretrained-base "$CKPTS/$BACKBONE-imagenet.pth" \
    --batch-size 16 --max-iterations 40000 --lr 0.02 --amp "$@"
