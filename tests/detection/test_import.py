"""``import detection`` and ``import distkd`` work without any OpenMMLab package."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

BLOCK = "import sys\nfor m in ('mmcv', 'mmengine', 'mmdet', 'mmseg', 'mmrazor'): sys.modules[m] = None\n"


def test_core_packages_do_not_need_openmmlab():
    code = BLOCK + "import distkd, detection, detection.checkpoints\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
