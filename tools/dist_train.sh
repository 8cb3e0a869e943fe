#!/usr/bin/env sh
# Launch classification training on GPUS processes with torchrun (the paper's command form):
#   sh tools/dist_train.sh GPUS CONFIG MODEL [train.py options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT (or PORT) on every node
# (see tools/torchrun.sh).
# CPU: add --device cpu (gloo backend); GPUs use NCCL.
set -e
if [ $# -lt 3 ]; then
    echo "usage: sh tools/dist_train.sh GPUS CONFIG MODEL [options...]" >&2
    exit 2
fi
GPUS=$1
CONFIG=$2
MODEL=$3
shift 3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec sh "$ROOT/tools/torchrun.sh" "$GPUS" "$ROOT/tools/train.py" -c "$CONFIG" --model "$MODEL" "$@"
