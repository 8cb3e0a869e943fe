#!/usr/bin/env bash
# Launch Cityscapes segmentation training through slurm, one task per GPU, requeued when
# pre-empted (see tools/slurm_run.sh); the options are tools/train_seg.py's, e.g. those of a
# segmentation/train_scripts/ file:
#   GPUS=8 GPUS_PER_NODE=8 sh tools/slurm_train_seg.sh PARTITION JOB_NAME --teacher-model deeplabv3 ...
set -e
if [ $# -lt 2 ]; then
    echo "error: tools/slurm_train_seg.sh needs PARTITION JOB_NAME: sh tools/slurm_train_seg.sh PARTITION JOB_NAME [train_seg.py options...]" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PARTITION=$1
JOB_NAME=$2
shift 2
exec bash "$ROOT/tools/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$ROOT/tools/train_seg.py" "$@"
