#!/usr/bin/env sh
# Test a student checkpoint on GPUS processes (COCO bbox mAP / Cityscapes mIoU):
#   sh tools/dist_test_mmdet.sh CONFIG CHECKPOINT GPUS [test_mmdet.py options...]
# An error is one line, printed once, exit code 2.
set -e
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 3 ] || fail "tools/dist_test_mmdet.sh needs CONFIG CHECKPOINT GPUS: sh tools/dist_test_mmdet.sh CONFIG CHECKPOINT GPUS [options...]"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
[ -f "$CONFIG" ] || fail "config file not found: '$CONFIG'"
[ -f "$CHECKPOINT" ] || fail "checkpoint not found: '$CHECKPOINT' (student_final.pth or epoch_N.pth of a work dir)"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec sh "$ROOT/tools/torchrun.sh" "$GPUS" "$ROOT/tools/test_mmdet.py" "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "$@"
