"""Forward+backward time and peak memory of the DIST loss against a straightforward reference.

Columns: the reference formula written below (softmax, centre, cosine along each axis, plain
autograd), the project's ``build_kd_loss("dist")``, and the project's KL KD loss
``build_kd_loss("kd")`` (T=4) at the same logits size. Times are medians over ``--repeats``
fwd+bwd calls per loss, in one process: rounds of ``--block`` back-to-back calls of each loss in
turn, so that the ratios share the machine's load while each loss runs in its own steady state
(``--block 1`` alternates every call: each call then starts with caches filled by another loss).
Peak memory is the largest amount of memory the call itself holds at once
(allocations minus frees from the call's start; inputs are not counted, the input gradient is):

- CPU: every allocation and free of PyTorch's CPU allocator recorded by ``torch.profiler``
  (``profile_memory=True``) during one fwd+bwd call, summed in time order. The project's loss is
  measured on a fresh module, so the scratch workspace it keeps between calls is counted;
- CUDA: ``torch.cuda.max_memory_allocated`` minus the memory allocated before the call.

    PYTHONPATH=. python benchmarks/bench_loss.py                  # CPU, the issue's sizes
    PYTHONPATH=. python benchmarks/bench_loss.py --device cuda    # adds 8x19x512x1024
    PYTHONPATH=. python benchmarks/bench_loss.py --sizes 256x1000,8x19x64x64 --repeats 50
    PYTHONPATH=. python benchmarks/bench_loss.py --smoke          # tiny sizes, seconds
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start-up chatter on stderr

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from benchmarks.common import machine_header, parse_shape
from benchmarks.common import peak_bytes as allocator_peak_bytes  # noqa: E402
from distkd.losses import build_kd_loss  # noqa: E402

CPU_SIZES = "256x1000,1024x1000,128x100,8x19x128x256"
GPU_SIZES = CPU_SIZES + ",8x19x512x1024"
SMOKE_SIZES = "16x10,2x3x4x5"

LossFn = Callable[[Tensor, Tensor], Tensor]


def reference_dist(z_s: Tensor, z_t: Tensor, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0,
                   eps: float = 1e-8) -> Tensor:
    """DIST as the formula reads: softmax, then centre + cosine along each axis (transposing)."""
    n_cls = z_s.shape[1]
    s = F.softmax(z_s.float() / tau, dim=1).movedim(1, -1).reshape(-1, n_cls)
    t = F.softmax(z_t.float() / tau, dim=1).movedim(1, -1).reshape(-1, n_cls)

    def pearson_rows(a: Tensor, b: Tensor) -> Tensor:
        a = a - a.mean(1, keepdim=True)
        b = b - b.mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)

    inter = 1 - pearson_rows(s, t).mean()
    intra = 1 - pearson_rows(s.T, t.T).mean()
    return tau**2 * (beta * inter + gamma * intra)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fwd_bwd(loss: LossFn, z_s: Tensor, z_t: Tensor) -> Tensor:
    x = z_s.detach().requires_grad_()
    value = loss(x, z_t)
    value.backward()
    return value.detach()


def time_ms(loss: LossFn, z_s: Tensor, z_t: Tensor, device: torch.device, clock=time.perf_counter) -> float:
    _sync(device)
    start = clock()
    fwd_bwd(loss, z_s, z_t)
    _sync(device)
    return (clock() - start) * 1e3


def peak_bytes(make_loss: Callable[[], LossFn], z_s: Tensor, z_t: Tensor, device: torch.device) -> int:
    """Peak memory held by one fwd+bwd call of a freshly built loss (see ``_memory.py``)."""
    loss = make_loss()
    return allocator_peak_bytes(lambda: fwd_bwd(loss, z_s, z_t), device)


def bench_size(shape: tuple[int, ...], repeats: int, block: int, device: torch.device, compile_too: bool,
               clock) -> dict:
    gen = torch.Generator().manual_seed(0)
    z_s = (3 * torch.randn(shape, generator=gen)).to(device)
    z_t = (3 * torch.randn(shape, generator=gen)).to(device)
    makers: dict[str, Callable[[], LossFn]] = {
        "ref": lambda: reference_dist,
        "ours": lambda: build_kd_loss("dist").to(device),
        "kl": lambda: build_kd_loss("kd").to(device),
    }
    if compile_too:
        makers["compiled"] = lambda: build_kd_loss("dist", compile=True).to(device)
    losses = {name: make() for name, make in makers.items()}
    check = (fwd_bwd(losses["ours"], z_s, z_t) - fwd_bwd(reference_dist, z_s, z_t)).abs().item()
    for loss in losses.values():  # warm-up (and compilation)
        fwd_bwd(loss, z_s, z_t)
    times: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(max(1, repeats // block)):
        for name, loss in losses.items():
            times[name] += [time_ms(loss, z_s, z_t, device, clock) for _ in range(block)]
    row = {name: statistics.median(values) for name, values in times.items()}
    row.update({f"mem_{name}": peak_bytes(makers[name], z_s, z_t, device) for name in ("ref", "ours", "kl")})
    row["diff"] = check
    return row


def format_table(rows: list[tuple[str, dict]], compile_too: bool) -> str:
    head = ["logits", "ref ms", "ours ms", "ours/ref", "KL KD ms", "ours/KL", "peak MiB ref / ours / KL"]
    if compile_too:
        head.insert(5, "compiled ms")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    mib = 2.0**20
    for size, r in rows:
        cells = [size, f"{r['ref']:.3f}", f"{r['ours']:.3f}", f"{r['ours'] / r['ref']:.2f}", f"{r['kl']:.3f}",
                 f"{r['ours'] / r['kl']:.2f}",
                 " / ".join(f"{r[k] / mib:.2f}" for k in ("mem_ref", "mem_ours", "mem_kl"))]
        if compile_too:
            cells.insert(5, f"{r['compiled']:.3f}")
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
                        help="wall: time.perf_counter; cpu: time.process_time (CPU seconds of this process, "
                        "robust to other jobs on a shared machine; use with --threads 1)")
    parser.add_argument("--compile", action="store_true", help="also time DISTLoss(compile=True)")
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
    print(f"DIST: build_kd_loss('dist') (beta=gamma=tau=1); KL KD: build_kd_loss('kd') (T=4); "
          f"fwd+bwd medians over {repeats} calls per loss (a third at the per-pixel size), blocks of "
          f"{args.block} ({clock.__name__})")
    rows = []
    for size in sizes.split(","):
        shape = parse_shape(size)
        # The per-pixel sizes take ~0.1 s per reference call on 2 cores: fewer repeats there.
        reps = repeats if shape.numel() <= 4_000_000 or device.type == "cuda" else max(2, repeats // 3)
        row = bench_size(tuple(shape), reps, min(args.block, reps), device, args.compile, clock)
        if row["diff"] > 1e-4:
            raise SystemExit(f"{size}: the project's DIST differs from the reference by {row['diff']:.2e}")
        rows.append((size, row))
    print(format_table(rows, args.compile))


if __name__ == "__main__":
    main()
