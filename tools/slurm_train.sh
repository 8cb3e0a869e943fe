#!/usr/bin/env bash
# Launch classification training through slurm, one task per GPU, requeued when pre-empted
# (see tools/slurm_run.sh):
#   GPUS=16 GPUS_PER_NODE=8 sh tools/slurm_train.sh PARTITION JOB_NAME CONFIG MODEL [options...]
set -e
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 4 ] || fail "tools/slurm_train.sh needs PARTITION JOB_NAME CONFIG MODEL: sh tools/slurm_train.sh PARTITION JOB_NAME CONFIG MODEL [options...]"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
MODEL=$4
shift 4
[ -f "$CONFIG" ] || fail "config file not found: '$CONFIG' (e.g. configs/strategies/distill/resnet_dist.yaml)"
exec bash "$ROOT/tools/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$ROOT/tools/train.py" -c "$CONFIG" --model "$MODEL" "$@"
