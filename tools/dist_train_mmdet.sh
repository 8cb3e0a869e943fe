#!/usr/bin/env sh
# Distillation training of an OpenMMLab config with torchrun (the paper's command form):
#   sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR [train_mmdet.py options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
# CPU (gloo): add --cfg-options env_cfg.dist_cfg.backend=gloo.
set -e
if [ $# -lt 3 ]; then
    echo "usage: sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR [options...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
WORK_DIR=$3
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
    "$ROOT/tools/train_mmdet.py" "$CONFIG" --work-dir "$WORK_DIR" --launcher pytorch "$@"
