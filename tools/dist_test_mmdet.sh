#!/usr/bin/env sh
# Test a student checkpoint on GPUS processes (COCO bbox mAP / Cityscapes mIoU):
#   sh tools/dist_test_mmdet.sh CONFIG CHECKPOINT GPUS [test_mmdet.py options...]
set -e
if [ $# -lt 3 ]; then
    echo "usage: sh tools/dist_test_mmdet.sh CONFIG CHECKPOINT GPUS [options...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec sh "$ROOT/tools/torchrun.sh" "$GPUS" "$ROOT/tools/test_mmdet.py" "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "$@"
