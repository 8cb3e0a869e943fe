"""Peak memory of per-pixel DIST on segmentation logits (forward + backward).

Default case: Cityscapes logits at 1/8 resolution, ``(8, 19, 128, 256)`` float32 (a 512x1024
crop, batch 8), the budget being 3x the size of the two logit tensors.

Method: ``benchmarks.common.peak_bytes``, the allocator's own allocation / free records on the
CPU (``torch.profiler`` memory events summed in time order) or ``max_memory_allocated`` on CUDA.
The two input logit tensors exist before and are not counted; everything the loss allocates is:
probabilities, temporaries, tensors saved for backward, the gradient of the student logits.
(``torch.distributed._tools.mem_tracker.MemTracker``, tried first, counted views of one storage
more than once and reported ~1 x the logits more than the allocator allocated.)

    PYTHONPATH=$PWD python benchmarks/bench_seg_memory.py [--shape 8 19 128 256] [--dtype float16]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start-up chatter on stderr

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from benchmarks.common import peak_bytes  # noqa: E402
from distkd.losses.dist_kd import dist_loss, dist_loss_autograd  # noqa: E402

MiB = 2**20


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
    return {"logits_MiB": logits_bytes / MiB, "peak_MiB": peak / MiB, "ratio": peak / logits_bytes}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", type=int, nargs=4, default=[8, 19, 128, 256], metavar=("N", "C", "H", "W"))
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--budget", type=float, default=3.0, help="allowed peak as a multiple of the two logits")
    args = p.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"DIST on logits {tuple(args.shape)} {args.dtype} on {device}; "
          "method: allocator records (benchmarks/common.py)")
    for name, fn in (("dist_loss (core, hand-written backward)", dist_loss), ("plain autograd", dist_loss_autograd)):
        r = measure(fn, tuple(args.shape), dtype, device)
        verdict = "within" if r["ratio"] <= args.budget else "OVER"
        print(f"{name:42s} peak {r['peak_MiB']:7.1f} MiB = {r['ratio']:.2f} x the two logits "
              f"({r['logits_MiB']:.1f} MiB): {verdict} the {args.budget:g}x budget")


if __name__ == "__main__":
    main()
