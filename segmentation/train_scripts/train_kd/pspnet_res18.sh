#!/usr/bin/env bash
# DIST: DeepLabV3-ResNet101 -> PSPNet-ResNet18, Cityscapes val mIoU 76.31 in the paper (baseline 72.55).
# The paper's train_kd.py settings, every value explicit: the released DeepLabV3-ResNet101 teacher
# ($CKPTS/deeplabv3_resnet101_citys_best_model.pth, 78.07 mIoU), a deep-stem resnet18_v1s student from
# $CKPTS/resnet18-imagenet.pth, the paper's input format, weight decay 5e-4, poly with floor 1e-4,
# validation every 400 iterations (best kept), float32. Files: "Released files" in segmentation/README.md.
# Usage: GPUS=8 DATA=data/cityscapes CKPTS=ckpts bash segmentation/train_scripts/train_kd/pspnet_res18.sh [extra train_seg.py options, which win]
set -euo pipefail
cd "$(dirname "$0")/../../.."
GPUS=${GPUS:-8}
DATA=${DATA:-data/cityscapes}
CKPTS=${CKPTS:-ckpts}
TEACHER_CKPT=${TEACHER_CKPT:-$CKPTS/deeplabv3_resnet101_citys_best_model.pth}
sh tools/torchrun.sh "$GPUS" tools/train_seg.py \
    --teacher-model deeplabv3 --teacher-backbone resnet101_v1s \
    --teacher-ckpt "$TEACHER_CKPT" --teacher-input-format paper \
    --student-model psp --student-backbone resnet18_v1s \
    --student-pretrained-base "$CKPTS/resnet18-imagenet.pth" \
    --data-path "$DATA" --input-format paper --crop-size 512 1024 \
    --output work_dirs/seg --experiment dist_dv3-r101_psp-r18 \
    --batch-size 16 --max-iterations 40000 --lr 0.02 --momentum 0.9 --weight-decay 5e-4 \
    --min-lr 1e-4 --power 0.9 --aux-weight 0.4 --no-amp \
    --kd-loss-weight 1.0 --kd-temperature 1.0 \
    --val-interval 400 --eval-teacher "$@"
