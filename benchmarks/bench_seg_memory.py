"""Peak memory and time of a segmentation DIST KD step, and the DIST loss's share of both.

One step as ``segmentation/train.py`` runs it: the teacher's ``(main, aux)`` logits under
``no_grad``, the student's forward, CE + DIST on main and aux logits (``SegCrossEntropy`` +
``HeadsKD(build_kd_loss("dist"))``, as the trainer builds it), backward and an SGD step. Beside it,
the DIST loss alone (forward + backward) on logits of the step's shape. Memory:
``benchmarks.common.peak_bytes`` (the allocator's records on the CPU, ``max_memory_allocated`` on
CUDA), counting what the call allocates (weights, optimizer
state and the input batch exist before it).

The paper's crop is 512x1024 with 2 images per GPU (``--size 512 1024 --batch 2`` on a GPU); the
CPU default is a quarter of that side so that a run takes seconds.

    PYTHONPATH=. python benchmarks/bench_seg_memory.py                      # CPU, 2x128x256
    PYTHONPATH=. python benchmarks/bench_seg_memory.py --device cuda --size 512 1024
    PYTHONPATH=. python benchmarks/bench_seg_memory.py --smoke
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start-up chatter on stderr

import torch

from distkd.distiller import Distiller
from distkd.losses import build_kd_loss
from distkd_cli.measure import machine_header, peak_bytes
from segmentation.engine.losses import HeadsKD, SegCrossEntropy
from segmentation.models import WithAux, build_segmentor

MiB = 2**20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def measure(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    student = build_segmentor("deeplabv3", args.student_backbone).to(device)
    teacher = WithAux(build_segmentor("deeplabv3", args.teacher_backbone)).to(device)
    distiller = Distiller(student, SegCrossEntropy(), teacher, HeadsKD(build_kd_loss("dist"))).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
    images = torch.randn(args.batch, 3, *args.size, device=device)
    labels = torch.randint(0, 19, (args.batch, *args.size), device=device)

    def kd_step() -> None:
        loss = sum(distiller(images, labels).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        main_t, aux_t = teacher(images)
    dist = HeadsKD(build_kd_loss("dist"))

    def loss_only() -> None:
        outputs_s = (main_t.flip(0).requires_grad_(), aux_t.flip(0).requires_grad_())
        dist(outputs_s, (main_t, aux_t)).backward()

    return {
        "step_ms": timed_ms(kd_step, device, args.repeats), "loss_ms": timed_ms(loss_only, device, args.repeats),
        "step_MiB": peak_bytes(kd_step, device) / MiB, "loss_MiB": peak_bytes(loss_only, device) / MiB,
        "logits": tuple(main_t.shape), "logits_MiB": 2 * (main_t.numel() + aux_t.numel()) * 4 / MiB,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, nargs=2, default=[128, 256], metavar=("H", "W"), help="crop size")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--student-backbone", default="resnet18")
    p.add_argument("--teacher-backbone", default="resnet101")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's)")
    p.add_argument("--smoke", action="store_true", help="tiny run: 2x64x64, resnet18 teacher, 1 repeat")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.size, args.batch, args.teacher_backbone, args.repeats = [64, 64], 2, "resnet18", 1
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    print(machine_header(device))
    r = measure(args, device)
    print(f"DeepLabV3 {args.student_backbone} <- DeepLabV3 {args.teacher_backbone}, {args.batch}x3x{args.size[0]}x"
          f"{args.size[1]}, logits {r['logits']} (main + aux: {r['logits_MiB']:.1f} MiB for both networks); "
          f"median of {args.repeats}")
    head = ["", "time ms", "peak MiB"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    print(f"| KD step (fwd + bwd + SGD) | {r['step_ms']:.1f} | {r['step_MiB']:.1f} |")
    print(f"| DIST loss alone (main + aux, fwd + bwd) | {r['loss_ms']:.1f} | {r['loss_MiB']:.1f} |")
    print(f"| loss share | {100 * r['loss_ms'] / r['step_ms']:.1f} % | {100 * r['loss_MiB'] / r['step_MiB']:.1f} % |")


if __name__ == "__main__":
    main()
