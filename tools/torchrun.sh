#!/usr/bin/env sh
# Run a Python script on GPUS processes per node with torch.distributed.run (torchrun), the one
# launcher behind dist_train.sh, dist_train_mmdet.sh and dist_test_mmdet.sh:
#   sh tools/torchrun.sh GPUS SCRIPT [script options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT (or PORT) on every node.
set -e
if [ $# -lt 2 ]; then
    echo "usage: sh tools/torchrun.sh GPUS SCRIPT [options...]" >&2
    exit 2
fi
GPUS=$1
SCRIPT=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec python -m torch.distributed.run \
    --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$GPUS" \
    --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${PORT:-${MASTER_PORT:-29500}}" \
    "$SCRIPT" "$@"
