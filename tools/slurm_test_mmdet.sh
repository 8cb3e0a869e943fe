#!/usr/bin/env bash
# Test a student checkpoint through slurm:
#   GPUS=8 sh tools/slurm_test_mmdet.sh PARTITION JOB_NAME CONFIG CHECKPOINT [options...]
set -e
if [ $# -lt 4 ]; then
    echo "usage: sh tools/slurm_test_mmdet.sh PARTITION JOB_NAME CONFIG CHECKPOINT [options...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    python -u "$ROOT/tools/test_mmdet.py" "$CONFIG" "$CHECKPOINT" --launcher slurm "$@"
