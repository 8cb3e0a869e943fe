#!/usr/bin/env sh
# Distillation training of an OpenMMLab config with torchrun (the paper's command form):
#   sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR [train_mmdet.py options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT (or PORT) on every node
# (see tools/torchrun.sh). An error is one line, printed once, exit code 2.
# CPU (gloo): add --cfg-options env_cfg.dist_cfg.backend=gloo.
# The bundled COCO configs (configs/detection/) are the paper's 8 GPUs x 2 images: on fewer GPUs
# (NNODES x GPUS = 1, 2 or 4) each GPU keeps 2 images and accumulates 8 / GPUs iterations per
# optimizer step (--emulate-gpus 8: mmengine's accumulative_counts), so a step sees 16 images.
set -e
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 3 ] || fail "tools/dist_train_mmdet.sh needs CONFIG GPUS WORK_DIR: sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR [options...]"
CONFIG=$1
GPUS=$2
WORK_DIR=$3
shift 3
[ -f "$CONFIG" ] || fail "config file not found: '$CONFIG' (e.g. configs/detection/retinanet_r50_dist_retinanet_x101_2x_coco.py)"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$GPUS" in
    ''|*[!0-9]*|0) fail "GPUS must be a number of processes per node (1, 2, 8, ...), got '$GPUS'" ;;
esac
case "${NNODES:-1}" in
    ''|*[!0-9]*|0) fail "NNODES must be a number of nodes (1, 2, ...), got '$NNODES'" ;;
esac
PAPER_GPUS=8
TOTAL=$((GPUS * ${NNODES:-1}))
if [ -f "$ROOT/configs/detection/$(basename "$CONFIG")" ] && [ "$(cd "$(dirname "$CONFIG")" 2>/dev/null && pwd)" = "$ROOT/configs/detection" ]; then
    if [ "$TOTAL" -lt 1 ] || [ $((PAPER_GPUS % TOTAL)) -ne 0 ]; then
        echo "error: $(basename "$CONFIG") is the paper's $PAPER_GPUS-GPU x 2-image recipe: run it on 1, 2, 4 or 8 GPUs in all (NNODES x GPUS = $TOTAL), which accumulate $PAPER_GPUS / GPUs iterations per step" >&2
        exit 2
    fi
    if [ "$TOTAL" -lt "$PAPER_GPUS" ]; then
        set -- --emulate-gpus "$PAPER_GPUS" "$@"
    fi
fi
exec sh "$ROOT/tools/torchrun.sh" "$GPUS" "$ROOT/tools/train_mmdet.py" "$CONFIG" --work-dir "$WORK_DIR" \
    --launcher pytorch "$@"
