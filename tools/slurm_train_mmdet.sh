#!/usr/bin/env bash
# Distillation training through slurm, one task per GPU (mmengine reads SLURM_* itself):
#   GPUS=16 GPUS_PER_NODE=8 sh tools/slurm_train_mmdet.sh PARTITION JOB_NAME CONFIG WORK_DIR [options...]
set -e
if [ $# -lt 4 ]; then
    echo "usage: sh tools/slurm_train_mmdet.sh PARTITION JOB_NAME CONFIG WORK_DIR [options...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    python -u "$ROOT/tools/train_mmdet.py" "$CONFIG" --work-dir "$WORK_DIR" --launcher slurm "$@"
