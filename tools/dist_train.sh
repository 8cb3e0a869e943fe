#!/usr/bin/env sh
# Launch classification training on GPUS processes with torchrun (the paper's command form):
#   sh tools/dist_train.sh GPUS CONFIG MODEL [train.py options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and MASTER_PORT) on every node.
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
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec python -m torch.distributed.run --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS" \
    --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
    "$ROOT/tools/train.py" -c "$CONFIG" --model "$MODEL" "$@"
