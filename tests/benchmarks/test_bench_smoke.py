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
    assert "| logits | DIST ms | KL KD ms |" in out
    assert "| 16x10 |" in out and "| 2x3x4x5 |" in out


@pytest.mark.slow
def test_bench_step_smoke():
    out = run_smoke("bench_step.py")
    assert "| student : teacher |" in out
    assert "| tv_resnet18:tv_resnet18 | 2x32px |" in out
    assert "| student : teacher | batch | K | (f) accumulated step ms | (g) K micro-steps ms | f / g |" in out
    assert "| tv_resnet18:tv_resnet18 | 2x32px | 2 |" in out


@pytest.mark.slow
def test_bench_data_smoke():
    out = run_smoke("bench_data.py")
    assert "| workers | pipeline | img/s (wall) | CPU ms / img | bytes / batch |" in out
    rows = [line for line in out.splitlines() if line.startswith(("| 0 |", "| 1 |"))]
    assert len(rows) == 4 and all("| 4x3x64x64 |" in row for row in rows), out  # the trainer's batches came through
    sizes = {row.split("|")[2].strip(): row.split("|")[5].strip() for row in rows}
    assert sizes == {"float32": "192.0 KiB", "uint8": "48.0 KiB"}, out  # uint8 crosses in a quarter of the bytes


@pytest.mark.slow
def test_bench_ddp_smoke():
    out = run_smoke("bench_ddp.py")
    assert "| processes | variant |" in out
    for row in ("| 1 | no DDP (1 process) |", "| 2 | default |", "| 2 | bucket 100 |", "| 2 | static_graph |",
                "| 2 | teacher in DDP |"):
        assert row in out, out


@pytest.mark.slow
def test_bench_seg_memory_smoke():
    out = run_smoke("bench_seg_memory.py")
    for row in ("| KD step (fwd + bwd + SGD) |", "| DIST loss alone (main + aux, fwd + bwd) |", "| loss share |"):
        assert row in out, out


@pytest.mark.slow
def test_bench_teacher_store_smoke():
    out = run_smoke("bench_teacher_store.py")
    assert "| student <- teacher | input | batch | (a) plain epoch s |" in out
    assert "| cifar_resnet8 <- cifar_resnet14 |" in out and "| tv_resnet18 <- tv_resnet18 |" in out
    rows = ("| full fp16 |", "| top-10 |", "| top-100 |", "| random teacher | ", "| online (every run) | 432.0 M |")
    for row in rows:
        assert row in out, out
