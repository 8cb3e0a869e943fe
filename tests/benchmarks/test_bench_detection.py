"""benchmarks/bench_detection.py --smoke runs on the tiny COCO set and prints both tables."""
from __future__ import annotations

import pytest

from tests.benchmarks.test_bench_smoke import run_smoke


@pytest.mark.slow
@pytest.mark.openmmlab
def test_bench_detection_smoke():
    pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
    pytest.importorskip("mmrazor")
    out = run_smoke("bench_detection.py")
    assert "| P3 | 2x720x12x16 |" in out and "| P7 | 2x720x1x1 |" in out
    assert "| RetinaNet DIST+mimic | 38.0 | 0.33 |" in out  # student R50 RetinaNet, 5 aligners 256x256 + bias
