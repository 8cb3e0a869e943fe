#!/usr/bin/env bash
# Launch classification training through slurm, one task per GPU:
#   GPUS=16 GPUS_PER_NODE=8 sh tools/slurm_train.sh PARTITION JOB_NAME CONFIG MODEL [options...]
set -e
if [ $# -lt 4 ]; then
    echo "usage: sh tools/slurm_train.sh PARTITION JOB_NAME CONFIG MODEL [options...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
MODEL=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Each task maps slurm's variables to the ones torch.distributed reads.
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    bash -c 'export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID \
        MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1) MASTER_PORT=${MASTER_PORT:-29500}; \
        exec python "$0" "$@"' "$ROOT/tools/train.py" -c "$CONFIG" --model "$MODEL" "$@"
