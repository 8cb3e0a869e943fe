"""Peak memory of per-pixel DIST, measured as benchmarks/bench_seg_memory.py does."""
import importlib.util
from pathlib import Path

import pytest
import torch

from distkd.losses.dist_kd import dist_loss

_SPEC = importlib.util.spec_from_file_location(
    "bench_seg_memory", Path(__file__).resolve().parents[2] / "benchmarks" / "bench_seg_memory.py"
)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)
CPU = torch.device("cpu")


def test_the_method_counts_live_tensors():
    x = torch.randn(4, 19, 32, 64)
    size = x.numel() * 4
    close = lambda measured, expected: expected <= measured <= expected + 1024  # noqa: E731 (+ scalars)
    assert close(bench.peak_bytes(lambda: x * 2, CPU), size)
    assert close(bench.peak_bytes(lambda: (x * 2).exp().sum(), CPU), 2 * size)  # x*2 lives while exp runs

    def freed_in_between():
        a = x * 2
        b = a * 3
        del a
        return b * 4

    assert close(bench.peak_bytes(freed_in_between, CPU), 2 * size)


def test_dist_peak_is_measured_at_least_for_its_saved_probabilities():
    result = bench.measure(dist_loss, (2, 19, 32, 64), torch.float32, CPU)
    assert result["ratio"] >= 1.0  # the two softmax tensors kept for backward alone are 1x
    assert result["peak_MiB"] > 0


@pytest.mark.parametrize("shape", [(8, 19, 128, 256), (8, 19, 64, 128)])
def test_dist_peak_within_3x_the_two_logits(shape):
    """Issue budget at Cityscapes 1/8 resolution (512x1024 crops, batch 8), and a smaller case."""
    assert bench.measure(dist_loss, shape, torch.float32, CPU)["ratio"] <= 3.0
