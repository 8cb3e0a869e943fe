#!/usr/bin/env sh
# Launch classification training on GPUS processes with torchrun (the paper's command form):
#   sh tools/dist_train.sh GPUS CONFIG MODEL [train.py options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT (or PORT) on every node
# (see tools/torchrun.sh). An error is one line, printed once, exit code 2.
# CPU: add --device cpu (gloo backend); GPUs use NCCL.
set -e
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 3 ] || fail "tools/dist_train.sh needs GPUS CONFIG MODEL: sh tools/dist_train.sh GPUS CONFIG MODEL [options...]"
GPUS=$1
CONFIG=$2
MODEL=$3
shift 3
[ -f "$CONFIG" ] || fail "config file not found: '$CONFIG' (e.g. configs/strategies/distill/resnet_dist.yaml)"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec sh "$ROOT/tools/torchrun.sh" "$GPUS" "$ROOT/tools/train.py" -c "$CONFIG" --model "$MODEL" "$@"
