"""DDP scaling of the DIST KD train step: 1 process vs ``--world`` gloo processes on this machine.

Each process builds the pair as the trainer does (``Distiller`` + ``build_kd_loss("dist")``, SGD)
and runs ``--steps`` timed KD train steps after ``--warmup`` steps on a batch of its own. With
one process nothing is wrapped (as in the trainer); with several, ``DistributedDataParallel`` is
used in these variants:

- ``default``: only the student is wrapped (``Distiller.distribute``, the trainer's set-up), the
  teacher stays outside; ``bucket_cap_mb`` 25, dynamic graph;
- ``bucket N``: the same with ``bucket_cap_mb=N`` (``--bucket-mb``);
- ``static_graph``: the same with ``static_graph=True``;
- ``teacher in DDP``: the whole distiller is wrapped, so DDP broadcasts the teacher's buffers every step.

Variants run in turn, ``--rounds`` times (the order rotates each round), each on freshly built
models. Per variant: median step wall time per process, img/s per process and in total (world x batch / slowest rank's
step), and the CPU time per step (``time.process_time``, which leaves out time spent waiting on
the other process and on other jobs).

    python benchmarks/bench_ddp.py                      # tv_resnet18 <- tv_resnet34, 64 px, batch 16
    python benchmarks/bench_ddp.py --pair cifar_resnet8x4:cifar_resnet32x4 --image-size 32 --batch-size 64
    python benchmarks/bench_ddp.py --smoke              # tiny run, seconds
"""
from __future__ import annotations

import argparse
import gc
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from classification.models import build_model
from distkd.distiller import Distiller
from distkd.losses import build_kd_loss
from distkd_cli.measure import machine_header


def variants(opts: argparse.Namespace, world: int) -> dict[str, dict]:
    """Name -> DDP options (``None``: no DDP wrapper, the single-process trainer)."""
    if world == 1:
        return {"no DDP (1 process)": None}
    return {
        "default": {"ignore_teacher": True},
        f"bucket {opts.bucket_mb:g}": {"ignore_teacher": True, "bucket_cap_mb": opts.bucket_mb},
        "static_graph": {"ignore_teacher": True, "static_graph": True},
        "teacher in DDP": {"ignore_teacher": False},
    }


def build(opts: argparse.Namespace, ddp: dict | None) -> tuple[nn.Module, torch.optim.Optimizer]:
    student_name, _, teacher_name = opts.pair.partition(":")
    torch.manual_seed(0)
    student, teacher = build_model(student_name, opts.classes), build_model(teacher_name, opts.classes)
    distiller = Distiller(student, nn.CrossEntropyLoss(), teacher, build_kd_loss("dist")).train()
    optimizer = torch.optim.SGD(distiller.trainable_modules().parameters(), lr=1e-4, momentum=0.9)
    if ddp is None:
        return distiller, optimizer
    kwargs = {k: v for k, v in ddp.items() if k != "ignore_teacher"}
    if not ddp["ignore_teacher"]:
        return DistributedDataParallel(distiller, **kwargs), optimizer
    distiller.distribute(lambda module: DistributedDataParallel(module, **kwargs))
    return distiller, optimizer


def run_variant(opts: argparse.Namespace, ddp: dict | None, images: torch.Tensor, targets: torch.Tensor) -> dict:
    model, optimizer = build(opts, ddp)

    def step() -> None:
        loss = sum(model(images, targets).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(opts.warmup):
        step()
    walls, cpus = [], []
    if dist.is_initialized():
        dist.barrier()
    for _ in range(opts.steps):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}


def worker(rank: int, world: int, port: int, opts: argparse.Namespace, queue) -> None:
    torch.set_num_threads(opts.threads)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    gen = torch.Generator().manual_seed(rank)
    images = torch.randn(opts.batch_size, 3, opts.image_size, opts.image_size, generator=gen)
    targets = torch.randint(0, opts.classes, (opts.batch_size,), generator=gen)
    try:
        todo = list(variants(opts, world).items())
        for round_ in range(opts.rounds):
            for name, ddp in todo[round_ % len(todo):] + todo[:round_ % len(todo)]:  # rotate: no variant always first
                queue.put((world, name, round_, run_variant(opts, ddp, images, targets)))
                gc.collect()  # the variant's models and DDP reducer go before the next are built
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, opts: argparse.Namespace) -> list[tuple]:
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(worker, args=(world, free_port(), opts, queue), nprocs=world, join=True,
                       start_method=ctx.get_start_method())
    results = []
    while not queue.empty():
        results.append(queue.get())
    return results


def summarize(results: list[tuple], batch: int) -> list[dict]:
    """Per (world, variant): medians over rounds of the per-round figures."""
    by_key: dict[tuple, dict[int, list[dict]]] = {}
    for world, name, round_, r in results:
        by_key.setdefault((world, name), {}).setdefault(round_, []).append(r)
    rows = []
    for (world, name), rounds in sorted(by_key.items(), key=lambda item: item[0][0]):  # 1 process first
        slowest = [max(r["wall"] for r in ranks) for ranks in rounds.values()]
        per_proc = [batch / r["wall"] for ranks in rounds.values() for r in ranks]
        cpu = [r["cpu"] for ranks in rounds.values() for r in ranks]
        wall = statistics.median(slowest)
        rows.append({"world": world, "variant": name, "wall_ms": 1e3 * wall, "cpu_ms": 1e3 * statistics.median(cpu),
                     "img_s_proc": statistics.median(per_proc), "img_s_total": world * batch / wall})
    return rows


def format_table(rows: list[dict]) -> str:
    base = rows[0]["img_s_total"]
    lines = ["| processes | variant | step ms (slowest rank) | CPU ms / step | img/s per process | img/s total | "
             "speed-up vs 1 |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['world']} | {r['variant']} | {r['wall_ms']:.1f} | {r['cpu_ms']:.1f} | "
                     f"{r['img_s_proc']:.1f} | {r['img_s_total']:.1f} | {r['img_s_total'] / base:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", default="tv_resnet18:tv_resnet34", help="student:teacher")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=64, help="input size (small to keep CPU runs short)")
    parser.add_argument("-b", "--batch-size", type=int, default=16, help="per process")
    parser.add_argument("--world", type=int, default=2, help="processes of the DDP run (compared with 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--bucket-mb", type=float, default=100.0, help="bucket_cap_mb of the 'bucket' variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the variants")
    parser.add_argument("--smoke", action="store_true", help="cifar_resnet8 pair, batch 2 at 32 px, 1 step")
    opts = parser.parse_args(argv)
    if opts.smoke:
        opts.pair, opts.classes, opts.image_size, opts.batch_size = "cifar_resnet8:cifar_resnet8", 10, 32, 2
        opts.warmup, opts.steps, opts.rounds = 1, 1, 1
    if ":" not in opts.pair:
        raise SystemExit(f"bad pair '{opts.pair}': expected student:teacher")
    torch.set_num_threads(opts.threads)
    print(machine_header(torch.device("cpu")) + " | gloo")
    print(f"{opts.pair}, batch {opts.batch_size} per process at {opts.image_size} px, {opts.threads} thread(s) per "
          f"process; {opts.rounds} round(s) x {opts.steps} timed steps per variant")
    results = launch(1, opts) + launch(opts.world, opts)
    print(format_table(summarize(results, opts.batch_size)))


if __name__ == "__main__":
    main()
