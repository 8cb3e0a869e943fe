"""The prepared GPU check (``benchmarks/gpu_check.sh`` runs it): every CUDA measurement of issue 25 in one
go, on one NVIDIA GPU, in under 8 minutes, Markdown tables to ``$OUT`` (or ``./gpu_check_out``).

Steps (each a subprocess with its own time limit, all under one deadline; a failed step does not
stop the others):

1. ``env``: Python, torch, torchvision, timm, the GPU; the imports the trainer needs (yaml, tqdm,
   tensorboard, matplotlib, sklearn, PIL) must be there;
2. ``tests``: the CUDA-marked tests (``pytest -m cuda`` on the files that have them);
3. ``step``: ``bench_step.py`` on CUDA, ``tv_resnet18 <- tv_resnet34`` and ``mobilenet_v1 <- tv_resnet50``,
   224 px, batch 256, bf16 autocast, channels-last, DIST and KL KD interleaved: (a) student step,
   (b) teacher forward, (c) KD step, c / (a + b), peak memory;
4. ``seg``: ``bench_seg_memory.py``, the Cityscapes DIST KD step at 2 x 512 x 1024: time, peak memory;
5. ``e2e``: generated JPEGs (500x375, a list file naming each many times), ``tools/train.py``
   ``tv_resnet18 <- tv_resnet34`` DIST, 2 epochs, 16 workers, AMP, channels-last: the second epoch's
   img/s against the KD step's img/s of step 3;
6. ``data``: ``bench_data.py`` with 8 and 16 workers, float32 and uint8 pipelines, batch 256;
7. ``store``: a teacher store of the same images (1 view), then a plain epoch and a teacher-store
   KD epoch of ``tools/train.py`` (each the second of 2 epochs);
8. ``compile``: step 3 again with ``torch.compile`` on both networks (last: its compilation time is the
   least predictable part; it gets what is left of the deadline).

Targets (issue 25), judged on a GPU run only: KD step <= 1.05 x (a + b); DIST KD step within 2 % of
KL KD; end-to-end img/s >= 90 % of the bound, the smaller of the KD step's img/s and the uint8
loader's img/s at 16 workers (the table names which one binds).

Exit status: 0 every step ran and every target was met; 1 a step failed (or ran out of time);
2 every step ran, a target was missed. ``--dry-run``: the same steps on the CPU at tiny sizes
(seconds each; targets not judged), as CI runs it (``tests/benchmarks/test_gpu_check.py``), one
thread per command, each Python command forked from this process with torch and the trainer
imported once (``gpu_check_fork.py``; ``--no-fork``: fresh interpreters, as on the GPU).

At most 8 files go to the output folder (the device tool brings back 8): ``gpu_check.md`` (the
tables) and ``gpu_check.log`` (every command and its output).

This file is the command line; ``gpu_check_runner.py`` runs the commands (sizes, deadline, log),
``gpu_check_steps.py`` holds the steps, ``gpu_check_report.py`` the Markdown report and the targets.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.gpu_check_fork import preload
from benchmarks.gpu_check_report import TARGETS, join_tables, parse_rows
from benchmarks.gpu_check_runner import DRY, GPU, ROOT, Sizes
from benchmarks.gpu_check_steps import Check

__all__ = ["DRY", "GPU", "TARGETS", "Check", "Sizes", "main", "join_tables", "parse_rows"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny sizes (seconds each)")
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu_check_out"),
                   help="folder of gpu_check.md and gpu_check.log (default $OUT, else ./gpu_check_out)")
    p.add_argument("--only", default=None, help="comma-separated steps to run (env always runs): "
                   "tests,step,seg,e2e,data,store,compile")
    p.add_argument("--budget", type=float, default=None, help="deadline in seconds (GPU default 470)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (generated data, runs)")
    p.add_argument("--no-fork", action="store_true", help="dry run: each command in a fresh interpreter "
                   "(default: forked from this process, torch and the trainer imported once)")
    args = p.parse_args(argv)
    sizes = DRY if args.dry_run else GPU
    if args.budget:
        sizes.budget_s = args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    fork = args.dry_run and not args.no_fork
    if args.dry_run:  # a small shared CPU: one thread per command (threads fighting for 2 cores run 5x slower)
        os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported, here and in the commands
    if fork:
        preload()
    check = Check(out, work, sizes, args.dry_run, fork=fork)
    steps = {"tests": check.tests_step, "step": check.step_bench, "seg": check.seg_step, "e2e": check.e2e_step,
             "data": check.data_step, "store": check.store_step, "compile": lambda: check.step_bench(compile_=True)}
    chosen = args.only.split(",") if args.only else list(steps)
    if unknown := set(chosen) - set(steps):
        p.error(f"--only: unknown step(s) {sorted(unknown)}")
    try:
        check.step("env", check.env_step)
        for name in steps:
            if name in chosen:
                check.step(name, steps[name])
    finally:
        check.write_report()
        check.log.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    code = check.exit_code()
    print(f"[gpu_check] report: {out / 'gpu_check.md'} | log: {out / 'gpu_check.log'} | exit {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
