"""Each benchmark's ``--smoke`` mode runs from the command line and prints its table."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(script: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_bench_loss_smoke():
    out = run_smoke("bench_loss.py")
    assert "| logits | ref ms | ours ms |" in out
    assert "| 16x10 |" in out and "| 2x3x4x5 |" in out


@pytest.mark.slow
def test_bench_step_smoke():
    out = run_smoke("bench_step.py")
    assert "| student : teacher |" in out
    assert "| tv_resnet18:tv_resnet18 | 2x32px |" in out
