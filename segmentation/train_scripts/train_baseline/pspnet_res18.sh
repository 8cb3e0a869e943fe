#!/usr/bin/env bash
# Student baseline: PSPNet-ResNet18, Cityscapes val mIoU 72.55 in the paper.
# The paper's train_baseline.py settings, every value explicit: deep-stem resnet18_v1s from the paper's
# $CKPTS/resnet18-imagenet.pth, its input format, weight decay 1e-4, plain poly (no floor),
# validation every 800 iterations (best kept), float32. Files: "Released files" in segmentation/README.md.
# Usage: GPUS=8 DATA=data/cityscapes CKPTS=ckpts bash segmentation/train_scripts/train_baseline/pspnet_res18.sh [extra train_seg.py options, which win]
set -euo pipefail
cd "$(dirname "$0")/../../.."
GPUS=${GPUS:-8}
DATA=${DATA:-data/cityscapes}
CKPTS=${CKPTS:-ckpts}
sh tools/torchrun.sh "$GPUS" tools/train_seg.py \
    --student-model psp --student-backbone resnet18_v1s \
    --student-pretrained-base "$CKPTS/resnet18-imagenet.pth" \
    --data-path "$DATA" --input-format paper --crop-size 512 1024 \
    --output work_dirs/seg --experiment pspnet_r18 \
    --batch-size 16 --max-iterations 40000 --lr 0.02 --momentum 0.9 --weight-decay 1e-4 \
    --min-lr 0 --power 0.9 --aux-weight 0.4 --no-amp \
    --val-interval 800 "$@"
