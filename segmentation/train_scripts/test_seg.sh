#!/usr/bin/env bash
# Evaluate a checkpoint on Cityscapes val (add SCALES="0.75 1.0 1.25 1.5 1.75" FLIP=1 for multi-scale +
# flip), or write test-set predictions for the server with SPLIT=test.
# The input format (and, for this trainer's checkpoints, the backbone) are read from the checkpoint.
# Usage: MODEL=deeplabv3 CKPT=work_dirs/seg/dist_dv3-r101_dv3-r18/best.pth [BACKBONE=resnet18_v1s] \
#        GPUS=8 bash segmentation/train_scripts/test_seg.sh [extra test_seg.py options]
set -euo pipefail
fail() { echo "error: $*" >&2; exit 2; }
cd "$(dirname "$0")/../.."
[ -n "${CKPT:-}" ] || fail "set CKPT to the checkpoint to evaluate, e.g. CKPT=work_dirs/seg/dist_dv3-r101_dv3-r18/best.pth"
GPUS=${GPUS:-8}
SPLIT=${SPLIT:-val}
read -r -a scales <<< "${SCALES:-1.0}"
extra=()
if [ "${FLIP:-0}" = 1 ]; then extra+=(--flip); fi
if [ -n "${BACKBONE:-}" ]; then extra+=(--backbone "$BACKBONE"); fi
if [ "$SPLIT" = test ]; then extra+=(--save-pred "${PRED_DIR:-work_dirs/seg/test_pred}"); fi
sh tools/torchrun.sh "$GPUS" tools/test_seg.py \
    --model "${MODEL:-deeplabv3}" \
    --checkpoint "$CKPT" \
    --data-path "${DATA:-data/cityscapes}" --split "$SPLIT" --scales "${scales[@]}" "${extra[@]}" "$@"
