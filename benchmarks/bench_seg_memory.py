"""Peak memory of per-pixel DIST on segmentation logits (forward + backward).

Default case: Cityscapes logits at 1/8 resolution, ``(8, 19, 128, 256)`` float32 (a 512x1024
crop, batch 8), the budget being 3x the size of the two logit tensors.

Method (allocator-free, works on CPU and CUDA): ``torch.distributed._tools.mem_tracker.MemTracker``
records every tensor storage created while the loss runs (a dispatch mode plus weak references on
the storages, so a storage counts from its creation until it is freed) and keeps the peak of the
live total. The two input logit tensors exist before and are not counted; everything the loss
creates is: probabilities, temporaries, tensors saved for backward, the gradient of the student
logits. On CUDA the allocator's ``max_memory_allocated`` increase is printed as a cross-check.

    PYTHONPATH=$PWD python benchmarks/bench_seg_memory.py [--shape 8 19 128 256] [--dtype float16]
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch.distributed._tools.mem_tracker import MemTracker

from distkd.losses.dist_kd import dist_loss, dist_loss_autograd

MiB = 2**20


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak of the live bytes of tensors created while ``fn`` runs (MemTracker, all categories)."""
    tracker = MemTracker()
    with tracker:
        fn()
    return int(tracker.get_tracker_snapshot("peak")[device]["Total"])


def measure(loss_fn, shape, dtype: torch.dtype, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    z_s = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
    z_t = torch.randn(shape, device=device, dtype=dtype)
    logits_bytes = 2 * z_s.numel() * z_s.element_size()

    def step():
        loss_fn(z_s, z_t).backward()
        z_s.grad = None

    step()  # warm-up outside the measurement
    peak = peak_bytes(step, device)
    result = {"logits_MiB": logits_bytes / MiB, "peak_MiB": peak / MiB, "ratio": peak / logits_bytes}
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        result["cuda_allocator_peak_MiB"] = (torch.cuda.max_memory_allocated() - base) / MiB
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", type=int, nargs=4, default=[8, 19, 128, 256], metavar=("N", "C", "H", "W"))
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--budget", type=float, default=3.0, help="allowed peak as a multiple of the two logits")
    args = p.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"DIST on logits {tuple(args.shape)} {args.dtype} on {device}; method: MemTracker peak of live tensors")
    for name, fn in (("dist_loss (core, hand-written backward)", dist_loss), ("plain autograd", dist_loss_autograd)):
        r = measure(fn, tuple(args.shape), dtype, device)
        verdict = "within" if r["ratio"] <= args.budget else "OVER"
        extra = f", CUDA allocator {r['cuda_allocator_peak_MiB']:.1f} MiB" if "cuda_allocator_peak_MiB" in r else ""
        print(f"{name:42s} peak {r['peak_MiB']:7.1f} MiB = {r['ratio']:.2f} x the two logits "
              f"({r['logits_MiB']:.1f} MiB): {verdict} the {args.budget:g}x budget{extra}")


if __name__ == "__main__":
    main()
