#!/usr/bin/env sh
# Distillation training of an OpenMMLab config with torchrun (the paper's command form):
#   sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR [train_mmdet.py options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT (or PORT) on every node
# (see tools/torchrun.sh).
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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec sh "$ROOT/tools/torchrun.sh" "$GPUS" "$ROOT/tools/train_mmdet.py" "$CONFIG" --work-dir "$WORK_DIR" \
    --launcher pytorch "$@"
