#!/usr/bin/env bash
# Evaluate a checkpoint on Cityscapes val (add SCALES="0.75 1.0 1.25 1.5 1.75" FLIP=1 for multi-scale +
# flip), or write test-set predictions for the server with SPLIT=test.
# The input format (and, for this trainer's checkpoints, the backbone) are read from the checkpoint.
# Usage: MODEL=deeplabv3 CKPT=work_dirs/seg/dist_dv3-r101_dv3-r18/best.pth [BACKBONE=resnet18_v1s] \
#        GPUS=8 bash segmentation/train_scripts/test_seg.sh [extra test_seg.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-8}
SPLIT=${SPLIT:-val}
read -r -a scales <<< "${SCALES:-1.0}"
extra=()
if [ "${FLIP:-0}" = 1 ]; then extra+=(--flip); fi
if [ -n "${BACKBONE:-}" ]; then extra+=(--backbone "$BACKBONE"); fi
if [ "$SPLIT" = test ]; then extra+=(--save-pred "${PRED_DIR:-work_dirs/seg/test_pred}"); fi
torchrun --nproc_per_node "$GPUS" tools/test_seg.py \
    --model "${MODEL:-deeplabv3}" \
    --checkpoint "${CKPT:?set CKPT to a checkpoint}" \
    --data-path "${DATA:-data/cityscapes}" --split "$SPLIT" --scales "${scales[@]}" "${extra[@]}" "$@"
