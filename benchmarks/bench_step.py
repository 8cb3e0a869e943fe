"""Overhead of a DIST KD train step over its parts, for (student, teacher) pairs.

For each pair, on one batch, medians over ``--repeats`` interleaved rounds of:

(a) a plain student train step: forward, cross-entropy, backward, SGD step;
(b) a teacher forward: eval mode, under ``torch.inference_mode``;
(c) the project's KD step: ``Distiller(student, CE, teacher, build_kd_loss("dist"))``, forward,
    sum of the loss dict, backward, SGD step (what the trainer does per batch). ``--kd-loss kd``
    times KL KD instead; ``--kd-loss dist,kd`` times both, interleaved (one row per loss, the
    same (a) and (b)), and prints the DIST / KL KD step ratio. On CUDA the table adds the peak
    memory allocated during (a) and (c);
(d) the KD loss alone, forward + backward, on logits of the step's shape (batch x classes):
    ``d / c`` is the loss's share of the KD step;
(e) the trainer's per-step reseeding (``seed_everything(step_seed(...))``, which makes mixup /
    cutmix / dropout depend on (seed, epoch, iteration, rank) only, for exact resume): ``e / c``;
(f) an accumulated step as the trainer runs it for ``--grad-accum-steps K`` / ``--emulate-gpus``
    (``--accum-steps``, default 8): K micro-batches, each forward and ``backward(loss / K)`` in
    :class:`classification.accumulation.MicroSteps`' context (BatchNorm buffers of micro-batch 0
    kept), one SGD step; against (g) the same K micro-steps without that context (plain accumulation:
    forward, backward, one SGD step): ``f / g`` is what the accumulation adds (target <= 1.02), and
    ``f / (K c)`` what it saves against K separate KD steps.

Target: (c) <= 1.03 x ((a) + (b)). Both networks use the same memory format (``--channels-last``)
and autocast dtype (``--amp``: bfloat16). ``--compile`` runs both networks through ``torch.compile``
(``--compile-backend``, default inductor; compiled in the warm-up round). On CUDA, cuDNN's
autotuner is on, as in the trainer.

    PYTHONPATH=. python benchmarks/bench_step.py                       # the default pairs, CPU
    PYTHONPATH=. python benchmarks/bench_step.py --pairs tv_resnet18:tv_resnet34 --batch-size 32
    PYTHONPATH=. python benchmarks/bench_step.py --device cuda --amp --channels-last
    PYTHONPATH=. python benchmarks/bench_step.py --device cuda --batch-size 256 --kd-loss dist,kd --compile
    PYTHONPATH=. python benchmarks/bench_step.py --smoke               # tiny run, seconds
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from classification.accumulation import MicroSteps
from classification.models import build_model
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.losses import build_kd_loss
from distkd.utils.rng import seed_everything
from distkd.utils.sampling import step_seed
from distkd_cli.measure import machine_header

DEFAULT_PAIRS = "tv_resnet18:tv_resnet34,cifar_resnet8x4:cifar_resnet32x4"
SMOKE_PAIRS = "tv_resnet18:tv_resnet18"
# Per family: (classes, image size, CPU batch). CPU batches keep a full run to a few minutes on 2 cores.
FAMILY = {"cifar": (100, 32, 64), "default": (1000, 224, 8)}


def family(name: str) -> tuple[int, int, int]:
    return FAMILY["cifar"] if name.startswith("cifar") else FAMILY["default"]


class StepBench:
    """The three timed callables of one pair, sharing one batch."""

    def __init__(self, student: nn.Module, teacher: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                 amp: bool, kd_loss: str = "dist") -> None:
        self.images, self.targets = images, targets
        self.device_type = images.device.type
        self.amp = amp
        self.ce = nn.CrossEntropyLoss()
        self.student, self.teacher = student.train(), teacher.eval()
        self.plain_opt = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
        self.kd_losses = kd_loss.split(",")
        self.distillers = {name: Distiller(student, self.ce, teacher, build_kd_loss(name)).train()
                           for name in self.kd_losses}
        self.kd_opts = {name: torch.optim.SGD(d.trainable_modules().parameters(), lr=1e-4, momentum=0.9)
                        for name, d in self.distillers.items()}
        self.distiller, self.kd_opt = self.distillers[self.kd_losses[0]], self.kd_opts[self.kd_losses[0]]
        self.kd_loss = build_kd_loss(self.kd_losses[0])
        with torch.no_grad():
            self.logits_t = teacher(images).float()

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def plain_step(self) -> None:
        with self.autocast():
            loss = self.ce(self.student(self.images), self.targets)
        self.plain_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.plain_opt.step()

    def teacher_forward(self) -> None:
        with torch.inference_mode(), self.autocast():
            self.teacher(self.images)

    def loss_only(self) -> None:
        if getattr(self.kd_loss, "inputs", "logits") != "logits":
            return  # a feature loss: (d) times nothing
        logits_s = self.logits_t.flip(0).requires_grad_()
        self.kd_loss(logits_s, self.logits_t).backward()

    def reseed(self) -> None:
        self.iteration = getattr(self, "iteration", 0) + 1
        seed_everything(step_seed(0, 0, self.iteration))

    def kd_step(self, name: str | None = None) -> None:
        distiller = self.distillers[name] if name else self.distiller
        opt = self.kd_opts[name] if name else self.kd_opt
        with self.autocast():
            losses = distiller(self.images, self.targets)
            loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def accumulated_step(self, steps: int, trainer_context: bool = True) -> None:
        """(f) / (g): ``steps`` micro-batches (the step's batch each time), one optimizer step."""
        micro = MicroSteps(self.distiller, steps) if trainer_context else None
        self.kd_opt.zero_grad(set_to_none=True)
        for k in range(steps):
            with micro.context(k) if micro is not None else contextlib.nullcontext():
                with self.autocast():
                    loss = sum(self.distiller(self.images, self.targets).values())
                (loss / steps).backward()
        self.kd_opt.step()


def timed(fn: Callable[[], None], device: torch.device, clock=time.perf_counter) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = clock()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (clock() - start) * 1e3


def bench_pair(student_name: str, teacher_name: str, args: argparse.Namespace, device: torch.device) -> dict | str:
    classes, image_size, cpu_batch = family(student_name)
    batch = args.batch_size or (cpu_batch if device.type == "cpu" else 4 * cpu_batch)
    image_size = args.image_size or image_size
    try:
        student = build_model(student_name, classes).to(device)
        teacher = build_model(teacher_name, classes).to(device)
    except UserError as err:
        return f"skipped: {err}"
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, image_size, image_size, generator=gen).to(device)
    targets = torch.randint(0, classes, (batch,), generator=gen).to(device)
    if args.channels_last:
        student, teacher = student.to(memory_format=torch.channels_last), teacher.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    if args.compile:  # in place: the Distiller and the plain step call the compiled modules
        student.compile(backend=args.compile_backend)
        teacher.compile(backend=args.compile_backend)
    bench = StepBench(student, teacher, images, targets, args.amp, args.kd_loss)
    losses = bench.kd_losses
    steps = {"a": bench.plain_step, "b": bench.teacher_forward}
    steps.update({f"c:{name}": (lambda name=name: bench.kd_step(name)) for name in losses})
    steps.update({"d": bench.loss_only, "e": bench.reseed})
    if args.accum_steps > 1:  # (f), (g) with the first KD loss
        steps["f"] = lambda: bench.accumulated_step(args.accum_steps)
        steps["g"] = lambda: bench.accumulated_step(args.accum_steps, trainer_context=False)
    compile_start = time.perf_counter()
    for fn in steps.values():  # warm-up (and compilation)
        fn()
    warmup_s = time.perf_counter() - compile_start
    times: dict[str, list[float]] = {k: [] for k in steps}
    peak: dict[str, float] = {}
    for _ in range(args.repeats):
        for key, fn in steps.items():
            times[key].append(timed(fn, device, args.clock_fn))
            if device.type == "cuda":
                peak[key] = max(peak.get(key, 0.0), torch.cuda.max_memory_allocated(device) / 2**20)
    medians = {k: statistics.median(v) for k, v in times.items()}
    rows = {}
    for name in losses:  # one row per KD loss, sharing (a), (b), (d), (e)
        row = {k: medians[k] for k in ("a", "b", "d", "e", "f", "g") if k in medians}
        row["c"] = medians[f"c:{name}"]
        row["peak"] = {"a": peak["a"], "c": peak[f"c:{name}"]} if peak else {}
        row["batch"], row["image"], row["warmup_s"], row["K"] = batch, image_size, warmup_s, args.accum_steps
        rows[name] = row
    return rows


def format_table(rows: list[tuple[str, dict | str]]) -> str:
    head = ["student : teacher", "batch", "(a) student step ms", "(b) teacher fwd ms", "(c) KD step ms",
            "c / (a+b)", "(c) img/s", "(d) loss ms", "loss share d / c", "reseed share e / c", "peak MiB a / c"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pair, r in rows:
        if isinstance(r, str):
            lines.append(f"| {pair} | {r} |" + " |" * (len(head) - 2))
            continue
        cells = [pair, f"{r['batch']}x{r['image']}px", f"{r['a']:.1f}", f"{r['b']:.1f}", f"{r['c']:.1f}",
                 f"{r['c'] / (r['a'] + r['b']):.3f}", f"{1e3 * r['batch'] / r['c']:.1f}", f"{r['d']:.2f}",
                 f"{100 * r['d'] / r['c']:.2f} %", f"{100 * r['e'] / r['c']:.3f} %",
                 f"{r['peak']['a']:.0f} / {r['peak']['c']:.0f}" if r["peak"] else "(CUDA only)"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def loss_ratios(results: list[tuple[str, dict | str]], losses: list[str]) -> str:
    """``(c) first loss / (c) second loss`` per pair (``--kd-loss dist,kd``: DIST / KL KD)."""
    if len(losses) < 2:
        return ""
    lines = [f"\n| student : teacher | KD step {losses[0]} / {losses[1]} |", "|---|---|"]
    for pair, r in results:
        if not isinstance(r, str):
            lines.append(f"| {pair} | {r[losses[0]]['c'] / r[losses[1]]['c']:.3f} |")
    return "\n".join(lines)


def format_accumulation_table(rows: list[tuple[str, dict | str]]) -> str:
    """(f) against (g) and against K x (c)."""
    head = ["student : teacher", "batch", "K", "(f) accumulated step ms", "(g) K micro-steps ms", "f / g",
            "K x (c) ms", "f / (K c)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pair, r in rows:
        if isinstance(r, str) or "f" not in r:
            continue
        cells = [pair, f"{r['batch']}x{r['image']}px", str(r["K"]), f"{r['f']:.1f}", f"{r['g']:.1f}",
                 f"{r['f'] / r['g']:.3f}", f"{r['K'] * r['c']:.1f}", f"{r['f'] / (r['K'] * r['c']):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", default=None, help=f"comma-separated student:teacher (default {DEFAULT_PAIRS})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--kd-loss", default="dist",
                        help="KD loss of step (c), a build_kd_loss name (dist, kd, ...); comma-separated: each, "
                        "interleaved, one row per loss")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast for student and teacher")
    parser.add_argument("--channels-last", action="store_true", help="channels_last models and images")
    parser.add_argument("--compile", action="store_true", help="torch.compile student and teacher (in the warm-up)")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (eager: a quick check)")
    parser.add_argument("--batch-size", type=int, help="default per family: CPU 8 (ImageNet) / 64 (CIFAR), "
                        "CUDA 4x that")
    parser.add_argument("--image-size", type=int, help="default per family: 224 (ImageNet) / 32 (CIFAR)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds of (a), (b), (c)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: time.perf_counter; cpu: time.process_time (CPU seconds of this process, "
                        "robust to other jobs on a shared machine; use with --threads 1)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's)")
    parser.add_argument("--accum-steps", type=int, default=8,
                        help="K of the accumulated step (f) and its K micro-steps (g); 0 or 1: not timed")
    parser.add_argument("--smoke", action="store_true", help="one tiny pair, batch 2 at 32 px, 1 round")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.pairs = args.pairs or SMOKE_PAIRS
        args.batch_size, args.image_size, args.repeats, args.accum_steps = 2, 32, 1, 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the trainer (classification/train.py)
    args.clock_fn = time.process_time if args.clock == "cpu" and device.type == "cpu" else time.perf_counter
    torch.manual_seed(0)
    print(machine_header(device))
    losses = args.kd_loss.split(",")
    compiled = f" compile={args.compile_backend}" if args.compile else ""
    print(f"amp={'bf16' if args.amp else 'off'} channels_last={args.channels_last}{compiled}; medians over "
          f"{args.repeats} rounds ({args.clock_fn.__name__}); (c) = Distiller + build_kd_loss('{args.kd_loss}') + SGD")
    results, rows = [], []
    for pair in (args.pairs or DEFAULT_PAIRS).split(","):
        student_name, sep, teacher_name = pair.partition(":")
        if not sep:
            raise SystemExit(f"bad pair '{pair}': expected student:teacher")
        result = bench_pair(student_name, teacher_name, args, device)
        results.append((pair, result))
        for name in losses:
            label = pair if len(losses) == 1 else f"{pair} ({name})"
            rows.append((label, result if isinstance(result, str) else result[name]))
    print(format_table(rows))
    print(loss_ratios(results, losses))
    warmups = [f"{pair} {r[losses[0]]['warmup_s']:.1f}s" for pair, r in results if not isinstance(r, str)]
    print(f"warm-up round{' (with compilation)' if args.compile else ''}: " + ", ".join(warmups))
    if args.accum_steps > 1:
        print()
        print(format_accumulation_table(rows))


if __name__ == "__main__":
    main()
