#!/usr/bin/env bash
# Install the optional OpenMMLab stack (mmengine, mmcv 2.1.0 with ops, mmdet 3.3.0,
# mmsegmentation 1.2.2, mmrazor 1.0.0) into the current Python environment.
#
#   sh tools/install_openmmlab.sh          # idempotent; a working install exits in seconds
#
# mmcv 2.x has no PyPI wheels, so its sdist is built once (~14 min on 2 cores), with two fixes:
#   * setuptools<81: mmcv's setup.py (and mmengine at run time) import pkg_resources;
#   * -std=c++17 -> -std=c++20 in setup.py: torch >= 2.10 headers require C++20 and setup.py
#     appends its flag last, so CXXFLAGS cannot override it.
# The wheel is cached in ${DISTKD_WHEEL_CACHE:-$HOME/.cache/distkd/wheels}/<python>-torch<ver>,
# so later installs on the same machine take seconds. torch, torchvision and numpy are pinned
# to their installed versions during the install and checked afterwards.
# Env: PYTHON (default python), DISTKD_WHEEL_CACHE, MAX_JOBS (default: nproc),
#      FORCE_CUDA=1 to build the CUDA ops (needs nvcc), DISTKD_FORCE_REINSTALL=1.
set -eu

PY=${PYTHON:-python}
fail() { echo "error: $*" >&2; exit 2; }
"$PY" -c "import sys" >/dev/null 2>&1 || fail "PYTHON='$PY' is not a Python interpreter (set PYTHON=path/to/python, or unset it)"
case ${FORCE_CUDA:-0} in 0|1) ;; *) fail "FORCE_CUDA must be 0 or 1, got '$FORCE_CUDA'" ;; esac
case ${MAX_JOBS:-1} in ''|*[!0-9]*) fail "MAX_JOBS must be a number of compile jobs, got '$MAX_JOBS'" ;; esac
case ${DISTKD_FORCE_REINSTALL:-0} in 0|1) ;; *) fail "DISTKD_FORCE_REINSTALL must be 0 or 1" ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQS="$ROOT/requirements/openmmlab.txt"
MMCV_VERSION=2.1.0
FORCE_CUDA=${FORCE_CUDA:-0}
CACHE_ROOT=${DISTKD_WHEEL_CACHE:-$HOME/.cache/distkd/wheels}

log() { echo "[install_openmmlab] $*"; }

# 1. Fast exit when the stack is already installed and mmcv's compiled ops load.
if [ "${DISTKD_FORCE_REINSTALL:-0}" != 1 ] && "$PY" - <<PYEOF 2>/dev/null
from importlib.metadata import version
want = {"mmcv": "$MMCV_VERSION", "mmdet": "3.3.0", "mmsegmentation": "1.2.2",
        "mmrazor": "1.0.0", "mmengine": "0.10.7"}
assert all(version(k) == v for k, v in want.items())
import setuptools, mmcv._ext, pycocotools, cv2, ftfy  # noqa: E401,F401
assert int(setuptools.__version__.split(".")[0]) < 81
PYEOF
then
    log "OpenMMLab stack already installed and working; nothing to do."
    exit 0
fi

# 2. Pin what must not move.
PINS=$(mktemp)
trap 'rm -f "$PINS"' EXIT
"$PY" - >"$PINS" <<'PYEOF'
from importlib.metadata import version
for name in ("torch", "torchvision", "numpy"):
    print(f"{name}=={version(name)}")
PYEOF
log "keeping: $(tr '\n' ' ' <"$PINS")"
PIP="$PY -m pip"
$PIP install -q -c "$PINS" "setuptools>=64,<81" wheel ninja

# 3. The mmcv wheel: from the cache, or built from the patched sdist.
TAG=$("$PY" -c "import sys, torch; print(f'cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}')")
[ "$FORCE_CUDA" = 1 ] && TAG="$TAG-cuda" || TAG="$TAG-cpuops"
CACHE="$CACHE_ROOT/$TAG"
mkdir -p "$CACHE"
WHEEL=$(ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$WHEEL" ]; then
    BUILD=$(mktemp -d)
    log "building mmcv $MMCV_VERSION with ops (FORCE_CUDA=$FORCE_CUDA); ~14 min on 2 cores; in $BUILD"
    START=$(date +%s)
    $PIP download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    grep -q -- '-std=c++20' "$SRC/setup.py" || { log "could not patch $SRC/setup.py"; exit 1; }
    (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA="$FORCE_CUDA" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        $PIP wheel --no-deps --no-build-isolation -w "$BUILD/wheel" .)
    WHEEL_BUILT=$(ls "$BUILD"/wheel/mmcv-*.whl)
    cp "$WHEEL_BUILT" "$CACHE/.tmp.whl" && mv "$CACHE/.tmp.whl" "$CACHE/$(basename "$WHEEL_BUILT")"
    WHEEL="$CACHE/$(basename "$WHEEL_BUILT")"
    rm -rf "$BUILD"
    log "built and cached $WHEEL in $(( $(date +%s) - START )) s"
else
    log "using cached $WHEEL"
fi

# 4. Install: mmcv without deps (its wheel would ask for opencv and mmengine, listed in REQS).
$PIP install -q -c "$PINS" --no-deps --force-reinstall "$WHEEL"
$PIP install -q -c "$PINS" -r "$REQS" addict packaging Pillow pyyaml yapf

# 5. Verify: pinned packages untouched, ops load, the stack imports.
"$PY" - "$PINS" <<'PYEOF'
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    name, want = line.strip().split("==")
    assert version(name) == want, f"{name} changed: {version(name)} != {want}"
import mmcv, mmcv._ext, mmdet, mmseg, mmengine  # noqa: E401,F401
print(f"[install_openmmlab] OK: mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops), "
      f"mmdet {mmdet.__version__}, mmseg {mmseg.__version__}")
PYEOF
