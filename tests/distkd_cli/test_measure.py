"""The benchmarks' peak-memory method counts what a call keeps alive, and nothing else."""
import torch

from distkd_cli.measure import parse_shape, peak_bytes

CPU = torch.device("cpu")


def test_peak_bytes_counts_live_tensors():
    x = torch.randn(4, 19, 32, 64)
    size = x.numel() * 4
    close = lambda measured, expected: expected <= measured <= expected + 1024  # noqa: E731 (+ scalars)
    assert close(peak_bytes(lambda: x * 2, CPU), size)
    assert close(peak_bytes(lambda: (x * 2).exp().sum(), CPU), 2 * size)  # x*2 lives while exp runs

    def freed_in_between():
        a = x * 2
        b = a * 3
        del a
        return b * 4

    assert close(peak_bytes(freed_in_between, CPU), 2 * size)


def test_parse_shape():
    assert parse_shape("8x19x128x256") == torch.Size([8, 19, 128, 256])
