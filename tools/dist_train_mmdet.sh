#!/usr/bin/env sh
# Distillation training of an OpenMMLab config with torchrun (the paper's command form):
#   sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR [train_mmdet.py options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT (or PORT) on every node
# (see tools/torchrun.sh). An error is one line, printed once, exit code 2.
# CPU (gloo): add --cfg-options env_cfg.dist_cfg.backend=gloo.
set -e
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 3 ] || fail "tools/dist_train_mmdet.sh needs CONFIG GPUS WORK_DIR: sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR [options...]"
CONFIG=$1
GPUS=$2
WORK_DIR=$3
shift 3
[ -f "$CONFIG" ] || fail "config file not found: '$CONFIG' (e.g. configs/detection/retinanet_r50_dist_retinanet_x101_2x_coco.py)"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec sh "$ROOT/tools/torchrun.sh" "$GPUS" "$ROOT/tools/train_mmdet.py" "$CONFIG" --work-dir "$WORK_DIR" \
    --launcher pytorch "$@"
