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
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-${MASTER_PORT:-29500}}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec python -m torch.distributed.run \
    --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS" \
    --master_addr "$MASTER_ADDR" --master_port "$PORT" \
    "$ROOT/tools/test_mmdet.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
