"""Forward+backward time and peak memory of the DIST loss, beside KL KD, at given logits sizes.

Columns: ``build_kd_loss("dist")`` (beta = gamma = tau = 1) and ``build_kd_loss("kd")`` (T=4) on
the same logits. Times are medians over ``--repeats`` fwd+bwd calls per loss, alternating the two
in blocks of ``--block`` calls so that both share the machine's load. Peak memory is what one call
holds at once (``benchmarks.common.peak_bytes``; inputs not counted, the input gradient is).
What a loss costs *in a training step* is the figure that matters: ``bench_step.py`` reports the
loss's share of a KD step.

    PYTHONPATH=. python benchmarks/bench_loss.py                  # CPU
    PYTHONPATH=. python benchmarks/bench_loss.py --device cuda    # adds 8x19x512x1024
    PYTHONPATH=. python benchmarks/bench_loss.py --sizes 256x1000,8x19x64x64 --repeats 50
    PYTHONPATH=. python benchmarks/bench_loss.py --smoke          # tiny sizes, seconds
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start-up chatter on stderr

import torch
from torch import Tensor

from distkd.losses import build_kd_loss
from distkd_cli.measure import machine_header, parse_shape, peak_bytes

CPU_SIZES = "128x100,256x1000,1024x1000,8x19x128x256"
GPU_SIZES = CPU_SIZES + ",8x19x512x1024"
SMOKE_SIZES = "16x10,2x3x4x5"

LossFn = Callable[[Tensor, Tensor], Tensor]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fwd_bwd(loss: LossFn, z_s: Tensor, z_t: Tensor) -> Tensor:
    x = z_s.detach().requires_grad_()
    value = loss(x, z_t)
    value.backward()
    return value.detach()


def time_ms(loss: LossFn, z_s: Tensor, z_t: Tensor, device: torch.device, clock=time.perf_counter) -> float:
    sync(device)
    start = clock()
    fwd_bwd(loss, z_s, z_t)
    sync(device)
    return (clock() - start) * 1e3


def bench_size(shape: tuple[int, ...], repeats: int, block: int, device: torch.device, clock) -> dict:
    gen = torch.Generator().manual_seed(0)
    z_s = (3 * torch.randn(shape, generator=gen)).to(device)
    z_t = (3 * torch.randn(shape, generator=gen)).to(device)
    losses = {"dist": build_kd_loss("dist").to(device), "kl": build_kd_loss("kd").to(device)}
    for loss in losses.values():  # warm-up
        fwd_bwd(loss, z_s, z_t)
    times: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(max(1, repeats // block)):
        for name, loss in losses.items():
            times[name] += [time_ms(loss, z_s, z_t, device, clock) for _ in range(block)]
    row = {name: statistics.median(values) for name, values in times.items()}
    row.update({f"mem_{name}": peak_bytes(lambda loss=loss: fwd_bwd(loss, z_s, z_t), device)
                for name, loss in losses.items()})
    row["logits_bytes"] = 2 * z_s.numel() * z_s.element_size()
    return row


def format_table(rows: list[tuple[str, dict]]) -> str:
    head = ["logits", "DIST ms", "KL KD ms", "DIST / KL", "peak MiB DIST / KL", "DIST peak / two logits"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    mib = 2.0**20
    for size, r in rows:
        cells = [size, f"{r['dist']:.3f}", f"{r['kl']:.3f}", f"{r['dist'] / r['kl']:.2f}",
                 f"{r['mem_dist'] / mib:.2f} / {r['mem_kl'] / mib:.2f}", f"{r['mem_dist'] / r['logits_bytes']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", help=f"comma-separated logits shapes (default CPU: {CPU_SIZES}; CUDA adds "
                        "8x19x512x1024)")
    parser.add_argument("--repeats", type=int, default=30, help="timed fwd+bwd calls per loss and size")
    parser.add_argument("--block", type=int, default=5, help="back-to-back calls of one loss per round")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: time.perf_counter; cpu: time.process_time (use with --threads 1)")
    parser.add_argument("--smoke", action="store_true", help=f"tiny run: sizes {SMOKE_SIZES}, 2 repeats")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    sizes = args.sizes or (SMOKE_SIZES if args.smoke else GPU_SIZES if device.type == "cuda" else CPU_SIZES)
    repeats = 2 if args.smoke else args.repeats
    clock = time.process_time if args.clock == "cpu" and device.type == "cpu" else time.perf_counter
    print(machine_header(device))
    print(f"DIST: build_kd_loss('dist'); KL KD: build_kd_loss('kd') (T=4); fwd+bwd medians over {repeats} "
          f"calls per loss (a third above 4M elements on CPU), blocks of {args.block} ({clock.__name__})")
    rows = []
    for size in sizes.split(","):
        shape = parse_shape(size)
        reps = repeats if shape.numel() <= 4_000_000 or device.type == "cuda" else max(2, repeats // 3)
        rows.append((size, bench_size(tuple(shape), reps, min(args.block, reps), device, clock)))
    print(format_table(rows))


if __name__ == "__main__":
    main()
