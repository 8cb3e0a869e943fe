#!/usr/bin/env bash
# Distillation training through slurm, one task per GPU (mmengine reads SLURM_* itself):
#   GPUS=16 GPUS_PER_NODE=8 sh tools/slurm_train_mmdet.sh PARTITION JOB_NAME CONFIG WORK_DIR [options...]
set -e
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 4 ] || fail "tools/slurm_train_mmdet.sh needs PARTITION JOB_NAME CONFIG WORK_DIR: sh tools/slurm_train_mmdet.sh PARTITION JOB_NAME CONFIG WORK_DIR [options...]"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
[ -f "$CONFIG" ] || fail "config file not found: '$CONFIG'"
for var in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
    eval "value=\$$var"
    case $value in ''|*[!0-9]*|0) fail "$var must be a positive number, got '$value'" ;; esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    python -u "$ROOT/tools/train_mmdet.py" "$CONFIG" --work-dir "$WORK_DIR" --launcher slurm "$@"
