#!/usr/bin/env bash
# Run a distkd trainer through slurm, one task per GPU, and requeue it when it is pre-empted:
#   GPUS=16 GPUS_PER_NODE=8 sh tools/slurm_run.sh PARTITION JOB_NAME TRAINER [trainer options...]
# (TRAINER: tools/train.py or tools/train_seg.py; tools/slurm_train.sh and tools/slurm_train_seg.sh
# call this.)
#
# Pre-emption: slurm sends SIGUSR1 SIGNAL_TIME seconds (default 120) before the time limit, and
# SIGTERM when it pre-empts or cancels the job; every rank then finishes its iteration, rank 0
# writes last.pth and the job exits with code 75. This script then requeues: inside an sbatch
# allocation with `scontrol requeue`, otherwise by launching again (at most MAX_RESTARTS times,
# default 20). The run always gets `--resume auto`, so every launch continues from last.pth.
set -e
fail() { echo "error: $*" >&2; exit 2; }
[ $# -ge 3 ] || fail "tools/slurm_run.sh needs PARTITION JOB_NAME TRAINER: sh tools/slurm_run.sh PARTITION JOB_NAME TRAINER [options...]"
PARTITION=$1
JOB_NAME=$2
TRAINER=$3
shift 3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SIGNAL_TIME=${SIGNAL_TIME:-120}
MAX_RESTARTS=${MAX_RESTARTS:-20}
[ -f "$TRAINER" ] || fail "trainer not found: '$TRAINER' (tools/train.py or tools/train_seg.py)"
for var in GPUS GPUS_PER_NODE CPUS_PER_TASK SIGNAL_TIME MAX_RESTARTS; do
    eval "value=\$$var"
    case $value in ''|*[!0-9]*) fail "$var must be a number, got '$value'" ;; esac
done
# The trainer imports this checkout (as the other launchers do), whichever one `pip install -e .` installed.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PREEMPTED=75
restarts=0
while true; do
    # Each task maps slurm's variables to the ones torch.distributed reads.
    status=0
    srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
        --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
        --signal=USR1@"$SIGNAL_TIME" \
        bash -c 'export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID \
            MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1) MASTER_PORT=${MASTER_PORT:-29500}; \
            exec python "$0" "$@"' "$TRAINER" --resume auto "$@" \
        || status=$?
    if [ "$status" -ne "$PREEMPTED" ]; then
        exit "$status"
    fi
    if [ -n "$SLURM_JOB_ID" ] && [ "${SLURM_JOB_NAME:-}" != "interactive" ]; then
        echo "pre-empted: requeueing slurm job $SLURM_JOB_ID (it resumes from last.pth)" >&2
        exec scontrol requeue "$SLURM_JOB_ID"
    fi
    restarts=$((restarts + 1))
    if [ "$restarts" -gt "$MAX_RESTARTS" ]; then
        echo "pre-empted $restarts times; giving up (continue later with the same command)" >&2
        exit "$PREEMPTED"
    fi
    echo "pre-empted: launching again ($restarts/$MAX_RESTARTS), resuming from last.pth" >&2
done
