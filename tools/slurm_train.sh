#!/usr/bin/env bash
# Launch classification training through slurm, one task per GPU, requeued when pre-empted
# (see tools/slurm_run.sh):
#   GPUS=16 GPUS_PER_NODE=8 sh tools/slurm_train.sh PARTITION JOB_NAME CONFIG MODEL [options...]
set -e
if [ $# -lt 4 ]; then
    echo "usage: sh tools/slurm_train.sh PARTITION JOB_NAME CONFIG MODEL [options...]" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
MODEL=$4
shift 4
exec bash "$ROOT/tools/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$ROOT/tools/train.py" -c "$CONFIG" --model "$MODEL" "$@"
