#!/usr/bin/env bash
# The prepared GPU check of issue 25: every CUDA measurement in one go, on one NVIDIA GPU, in under
# 8 minutes (H100). From the repository root:
#
#     bash benchmarks/gpu_check.sh              # the GPU run: tables to $OUT, else ./gpu_check_out
#     bash benchmarks/gpu_check.sh --dry-run    # the same steps on the CPU at tiny sizes (CI runs it)
#     bash benchmarks/gpu_check.sh --only step,compile --budget 300
#
# It writes gpu_check.md (the Markdown tables, the targets, a status line per step) and
# gpu_check.log (every command and its output). Exit status: 0 all ran and every target was met,
# 1 a step failed or ran out of time, 2 all ran and a target was missed. The steps, sizes and
# targets: benchmarks/gpu_check.py. Needs Python with torch, torchvision, timm and the trainer's
# imports (the project need not be pip-installed: the repository goes on PYTHONPATH).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" benchmarks/gpu_check.py "$@"
