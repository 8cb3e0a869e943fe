#!/usr/bin/env sh
# Run a Python script on GPUS processes per node with torch.distributed.run (torchrun), the one
# launcher behind dist_train.sh, dist_train_mmdet.sh, dist_test_mmdet.sh and the segmentation scripts:
#   sh tools/torchrun.sh GPUS SCRIPT [script options...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT (or PORT) on every node.
# It runs torchrun through distkd_cli/launch.py: an error of the script (bad option, missing file,
# ...) is printed once, as the script's one line, with its exit code (2), however many processes.
# Env: PYTHON (default python), OMP_NUM_THREADS (default 1).
set -e
fail() { echo "error: $*" >&2; exit 2; }
if [ $# -lt 2 ]; then
    fail "tools/torchrun.sh needs GPUS and SCRIPT: sh tools/torchrun.sh GPUS SCRIPT [options...]"
fi
GPUS=$1
SCRIPT=$2
shift 2
case $GPUS in
    ''|*[!0-9]*|0) fail "GPUS must be a number of processes per node (1, 2, 8, ...), got '$GPUS'" ;;
esac
[ -f "$SCRIPT" ] || fail "script not found: '$SCRIPT' (run from the repository root, e.g. tools/train.py)"
for var in NNODES NODE_RANK; do
    eval "value=\${$var:-}"
    case $value in
        ''|*[!0-9]*) [ -z "$value" ] || fail "$var must be a number, got '$value'" ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" -m distkd_cli.launch \
    --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$GPUS" \
    --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${PORT:-${MASTER_PORT:-29500}}" \
    "$SCRIPT" "$@"
