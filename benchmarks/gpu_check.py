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
(seconds each; targets not judged), as CI runs it (``tests/benchmarks/test_gpu_check.py``).

At most 8 files go to the output folder (the device tool brings back 8): ``gpu_check.md`` (the
tables) and ``gpu_check.log`` (every command and its output).
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = "tv_resnet18:tv_resnet34,mobilenet_v1:tv_resnet50"
REQUIRED_IMPORTS = ["torch", "torchvision", "timm", "numpy", "PIL", "yaml", "tqdm", "matplotlib", "sklearn",
                    "torch.utils.tensorboard"]
TARGETS = {"step_ratio": 1.05, "dist_vs_kl": 0.02, "e2e_share": 0.90}
COMPILE_BOTH_PAIRS_S = 200  # less time left than this: the compiled step measures the first pair only


@dataclass
class Sizes:
    """What each step runs with: the GPU run, or the CPU dry run (tiny)."""

    device: str
    batch: int
    image: int
    repeats: int
    seg_size: tuple[int, int]
    jpegs: int
    jpeg_size: str
    val_images: int
    classes: int
    e2e_iters: int
    store_iters: int
    workers: tuple[int, ...]
    e2e_workers: int
    data_batches: int
    compile_backend: str
    pairs: str = PAIRS
    budget_s: float = 470.0
    limits: dict[str, float] = field(default_factory=dict)


GPU = Sizes(device="cuda", batch=256, image=224, repeats=10, seg_size=(512, 1024), jpegs=1024, jpeg_size="500x375",
            val_images=64, classes=1000, e2e_iters=200, store_iters=60, workers=(8, 16), e2e_workers=16,
            data_batches=12, compile_backend="inductor",
            limits={"env": 60, "tests": 200, "step": 150, "seg": 120, "e2e": 150, "data": 150, "store": 200,
                    "compile": 300})
DRY = Sizes(device="cpu", batch=4, image=32, repeats=1, seg_size=(64, 64), jpegs=24, jpeg_size="80x60",
            val_images=4, classes=4, e2e_iters=3, store_iters=2, workers=(0, 1), e2e_workers=1,
            data_batches=2, compile_backend="eager", pairs="tv_resnet18:tv_resnet18,mobilenet_v1:tv_resnet18",
            budget_s=900.0,
            limits={"env": 120, "tests": 300, "step": 300, "seg": 300, "e2e": 300, "data": 300, "store": 300,
                    "compile": 300})


class Check:
    """Runs the steps, keeps the log and the Markdown report."""

    def __init__(self, out: Path, work: Path, sizes: Sizes, dry_run: bool) -> None:
        self.out, self.work, self.s, self.dry_run = out, work, sizes, dry_run
        self.start = time.monotonic()
        self.log = open(out / "gpu_check.log", "w")
        self.sections: list[str] = []
        self.status: list[tuple[str, str, float, str]] = []  # (step, ok / FAILED / skipped, seconds, note)
        self.metrics: dict[str, float] = {}
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.setdefault("KINETO_LOG_LEVEL", "5")

    # ---- running -------------------------------------------------------------------------------------------
    def remaining(self) -> float:
        return self.s.budget_s - (time.monotonic() - self.start)

    def run(self, name: str, argv: list[str], limit: float) -> str:
        """Runs ``argv`` from the repository root; returns its stdout; raises on failure or timeout."""
        limit = min(limit, self.remaining())
        if limit < 5:
            raise TimeoutError(f"no time left for: {shlex.join(argv)}")
        self.log.write(f"\n===== [{name}] $ {shlex.join(argv)}   (limit {limit:.0f}s)\n")
        self.log.flush()
        began = time.monotonic()
        try:
            result = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired as err:
            self.log.write(_text(err.stdout) + _text(err.stderr) + f"\n----- timed out after {limit:.0f}s\n")
            raise TimeoutError(f"timed out after {limit:.0f}s: {shlex.join(argv[:4])} ...") from None
        self.log.write(result.stdout + result.stderr)
        self.log.write(f"\n----- exit {result.returncode} after {time.monotonic() - began:.1f}s\n")
        self.log.flush()
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"exit {result.returncode}: " + " / ".join(tail))
        return result.stdout

    def step(self, name: str, fn) -> None:
        began = time.monotonic()
        print(f"[gpu_check] {name} ... ({self.remaining():.0f}s left)", flush=True)
        try:
            note = fn() or ""
            state = "ok"
        except Exception as err:  # a failed step is reported; the others still run
            state, note = ("skipped (no time)" if isinstance(err, TimeoutError) and "no time" in str(err)
                           else "FAILED"), f"{type(err).__name__}: {err}"
            self.sections.append(f"## {name}\n\n**{state}**: {_md(note)}\n")
        seconds = time.monotonic() - began
        self.status.append((name, state, seconds, note))
        print(f"[gpu_check] {name}: {state} in {seconds:.0f}s {note[:200]}", flush=True)
        self.write_report()

    def python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def amp(self) -> list[str]:
        """``--amp`` for the trainer on the GPU (bf16); not in the dry run (CPU bf16 is slow, not its path)."""
        return [] if self.dry_run else ["--amp"]

    # ---- the steps -------------------------------------------------------------------------------------------
    def env_step(self) -> str:
        code = (
            "import importlib, platform, sys\n"
            "missing = []\n"
            f"for name in {REQUIRED_IMPORTS!r}:\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except Exception as err:\n        missing.append(f'{name} ({type(err).__name__}: {err})')\n"
            "import torch, torchvision, timm, numpy\n"
            "print(f'| python | {platform.python_version()} |')\n"
            "print(f'| torch | {torch.__version__} (CUDA {torch.version.cuda}) |')\n"
            "print(f'| torchvision / timm / numpy | {torchvision.__version__} / {timm.__version__} / "
            "{numpy.__version__} |')\n"
            "if torch.cuda.is_available():\n"
            "    p = torch.cuda.get_device_properties(0)\n"
            "    print(f'| GPU | {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs, "
            "sm_{p.major}{p.minor} |')\n"
            "import os, shutil\nprint(f'| CPUs | {os.cpu_count()} |')\n"
            "if os.path.isdir('/dev/shm'):\n"
            "    print(f'| /dev/shm (loader workers hand batches over there) | "
            "{shutil.disk_usage(\"/dev/shm\").free / 2**30:.1f} GiB free |')\n"
            "try:\n    import xdist  # noqa\n    print('| pytest-xdist | yes |')\n"
            "except ImportError:\n    print('| pytest-xdist | no |')\n"
            "if missing:\n    print('MISSING: ' + '; '.join(missing)); sys.exit(3)\n"
        )
        out = self.run("env", self.python("-c", code), self.s.limits["env"])
        rows = [line for line in out.splitlines() if line.startswith("|")]
        self.xdist = "| pytest-xdist | yes |" in rows
        if not self.dry_run and not any(r.startswith("| GPU |") for r in rows):
            raise RuntimeError("no CUDA GPU visible to torch (run with --dry-run on a CPU)")
        self.sections.append("## Machine\n\n| | |\n|---|---|\n" + "\n".join(rows) + "\n")
        return ""

    def tests_step(self) -> str:
        files = sorted({str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                        if "mark.cuda" in p.read_text()})
        argv = self.python("-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "-rs", *files)
        if getattr(self, "xdist", False) and not self.dry_run:
            argv += ["-n", "4"]
        out = self.run("tests", argv, self.s.limits["tests"])
        summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|skipped|failed|error)", line)]
        line = summary[-1].strip("= ") if summary else "(no summary line)"
        self.sections.append(f"## CUDA-marked tests\n\n`pytest -m cuda` on {len(files)} files: **{line}**\n")
        if not self.dry_run and ("skipped" in line and "passed" not in line):
            raise RuntimeError(f"the CUDA tests did not run: {line}")
        return line

    def bench_step_argv(self, compile_: bool) -> list[str]:
        pairs = self.s.pairs
        if compile_ and not self.dry_run and self.remaining() < COMPILE_BOTH_PAIRS_S:
            pairs = pairs.split(",")[0]  # compiling takes minutes: the first pair only, when time is short
        argv = self.python("benchmarks/bench_step.py", "--device", self.s.device, "--pairs", pairs,
                           "--batch-size", str(self.s.batch), "--image-size", str(self.s.image), "--amp",
                           "--channels-last", "--kd-loss", "dist,kd", "--repeats", str(self.s.repeats))
        if self.s.device == "cpu":
            argv += ["--threads", "1"]
        if compile_:
            argv += ["--compile", "--compile-backend", self.s.compile_backend]
        return argv

    def step_bench(self, compile_: bool = False) -> str:
        key = "compile" if compile_ else "step"
        argv = self.bench_step_argv(compile_)
        if compile_:
            argv[argv.index("--repeats") + 1] = str(max(1, self.s.repeats // 2))
        out = self.run(key, argv, self.s.limits[key])
        title = ("## KD step with torch.compile on both networks" if compile_ else "## KD step (bench_step.py)")
        header = [line for line in out.splitlines() if line.startswith(("#", "amp=", "warm-up"))]
        tables = [line for line in out.splitlines() if line.startswith("|")]
        self.sections.append(f"{title}\n\n`{shlex.join(argv[1:])}`\n\n"
                             + "\n".join(f"    {h}" for h in header) + "\n\n" + _tables(tables) + "\n")
        rows = _parse_rows(tables, "student : teacher", "c / (a+b)")
        suffix = "_compiled" if compile_ else ""
        ratios = []
        for row in rows:
            pair, _, loss = row["student : teacher"].partition(" (")
            loss = loss.rstrip(")")
            self.metrics[f"{pair}|{loss}|ratio{suffix}"] = float(row["c / (a+b)"])
            self.metrics[f"{pair}|{loss}|img_s{suffix}"] = float(row["(c) img/s"])
            ratios.append(f"{pair} {loss} {row['c / (a+b)']}")
        for row in _parse_rows(tables, "student : teacher", "KD step dist / kd"):
            self.metrics[f"{row['student : teacher']}|dist_over_kd{suffix}"] = float(row["KD step dist / kd"])
        return "; ".join(ratios)

    def seg_step(self) -> str:
        argv = self.python("benchmarks/bench_seg_memory.py", "--device", self.s.device, "--size",
                           *map(str, self.s.seg_size), "--batch", "2", "--repeats", "1" if self.dry_run else "5")
        if self.dry_run:
            argv += ["--teacher-backbone", "resnet18", "--threads", "1"]
        out = self.run("seg", argv, self.s.limits["seg"])
        lines = out.splitlines()
        self.sections.append("## Cityscapes DIST KD step (bench_seg_memory.py)\n\n"
                             + "\n".join(f"    {h}" for h in lines if h.startswith(("#", "DeepLab"))) + "\n\n"
                             + _tables([h for h in lines if h.startswith("|")]) + "\n")
        step = [h for h in lines if h.startswith("| KD step")]
        return step[0] if step else ""

    # ---- generated data and the trainer --------------------------------------------------------------------------
    def data_root(self, iterations: int | None = None) -> Path:
        """The generated JPEGs in the original's list-file layout, each listed many times: an epoch of
        ``iterations`` full batches (default: the end-to-end run's), the same files."""
        base = self.work / "jpegs"
        if not (base / "meta" / "train.txt").is_file():
            sys.path.insert(0, str(ROOT))
            from benchmarks.bench_data import write_jpegs

            width, height = (int(v) for v in self.s.jpeg_size.split("x"))
            entries = max(self.s.e2e_iters, self.s.store_iters) * self.s.batch
            began = time.monotonic()
            write_jpegs(base, self.s.jpegs, width, height, self.s.classes, repeat=max(2, -(-entries // self.s.jpegs)),
                        val_count=self.s.val_images, processes=min(16, os.cpu_count() or 1))
            self.log.write(f"\n===== wrote {self.s.jpegs} JPEGs {self.s.jpeg_size} under {base} in "
                           f"{time.monotonic() - began:.1f}s\n")
        iterations = iterations or self.s.e2e_iters
        if iterations * self.s.batch < self.s.classes or self.s.jpegs < self.s.classes:
            raise ValueError("each list must name every class (the first lines do): more iterations or images")
        root = self.work / f"jpegs_{iterations}"
        if not root.is_dir():
            (root / "meta").mkdir(parents=True)
            for split in ("train", "val"):
                (root / split).symlink_to(base / split, target_is_directory=True)
            lines = (base / "meta" / "train.txt").read_text().splitlines()[:iterations * self.s.batch]
            (root / "meta" / "train.txt").write_text("\n".join(lines) + "\n")
            shutil.copy(base / "meta" / "val.txt", root / "meta" / "val.txt")
        return root

    def teacher_ckpt(self) -> Path:
        """tv_resnet34 at its init with zero-init residual branches: logits of order 1, within float16 (store)."""
        path = self.work / "teacher_tv_resnet34.pth"
        if not path.is_file():
            code = ("import torch, sys\nfrom classification.models import build_model\ntorch.manual_seed(0)\n"
                    f"m = build_model('tv_resnet34', {self.s.classes}, zero_init_residual=True)\n"
                    f"torch.save(m.state_dict(), {str(path)!r})\n")
            self.run("teacher", self.python("-c", code), 120)
        return path

    def train(self, name: str, extra: list[str], iters: int, limit: float) -> dict[str, float]:
        """tools/train.py for 2 epochs of ``iters`` iterations; the second epoch's img/s (the first warms up)."""
        argv = self.python(
            "tools/train.py", "--dataset", "imagenet", "--data-path", str(self.data_root(iters)),
            "--model", "tv_resnet18", "-b", str(self.s.batch), "-j", str(self.s.e2e_workers),
            "--image-size", str(self.s.image),
            "--device", self.s.device, *self.amp(), "--channels-last", "--epochs", "2", "--max-iters-per-epoch",
            str(iters), "--sched", "cosine", "--lr", "0.1", "--warmup-epochs", "0", "--offline",
            "--output", str(self.work / "runs"), "--experiment", name, "--overwrite", "--log-interval", "50", *extra)
        began = time.monotonic()
        self.run(name, argv, limit)
        wall = time.monotonic() - began
        rows = list(csv.DictReader(open(self.work / "runs" / name / "metrics.csv")))
        if len(rows) < 2 or "epoch_time" not in rows[1]:
            raise RuntimeError(f"{name}: metrics.csv has no second epoch with epoch_time: {rows}")
        epoch_s = float(rows[1]["epoch_time"])
        return {"epoch_s": epoch_s, "img_s": iters * self.s.batch / epoch_s, "wall_s": wall,
                "run_img_s": 2 * iters * self.s.batch / wall}

    def kd_options(self) -> list[str]:
        return ["--kd", "dist", "--teacher-model", "tv_resnet34", "--teacher-ckpt", str(self.teacher_ckpt())]

    def e2e_step(self) -> str:
        r = self.train("e2e_kd", self.kd_options(), self.s.e2e_iters, self.s.limits["e2e"])
        self.metrics["e2e_img_s"] = r["img_s"]
        step = self.metrics.get("tv_resnet18:tv_resnet34|dist|img_s")
        step_cell = f"{step:.0f}" if step else "(step 3 did not run)"
        share = f"{r['img_s'] / step:.2f}" if step else ""
        self.sections.append(
            "## End-to-end training (tools/train.py)\n\n"
            f"tv_resnet18 <- tv_resnet34 DIST, batch {self.s.batch}, {self.s.image} px, {self.s.e2e_workers} workers, "
            f"AMP, channels-last, 2 epochs of {self.s.e2e_iters} iterations on generated JPEGs ({self.s.jpeg_size}); "
            "img/s of the second epoch (its first batch waits for a worker to fill it), and of the whole run "
            "(start-up, evaluation, checkpoints included).\n\n"
            "| second epoch s | img/s (epoch 2) | img/s (whole run) | KD step img/s (bench_step) | e2e / KD step |\n"
            "|---|---|---|---|---|\n"
            f"| {r['epoch_s']:.1f} | {r['img_s']:.0f} | {r['run_img_s']:.0f} | {step_cell} | {share} |\n")
        return f"{r['img_s']:.0f} img/s"

    def data_step(self) -> str:
        repeat = max(2, 4 * max(self.s.workers) * self.s.batch // self.s.jpegs + 1)  # 4 batches per worker
        argv = self.python("benchmarks/bench_data.py", "--workers", ",".join(map(str, self.s.workers)),
                           "--pipeline", "float32,uint8", "-b", str(self.s.batch),
                           "--batches", str(self.s.data_batches), "--images", str(self.s.jpegs),
                           "--source-size", self.s.jpeg_size, "--image-size", str(self.s.image),
                           "--repeat", str(repeat), "--device", self.s.device)
        out = self.run("data", argv, self.s.limits["data"])
        lines = out.splitlines()
        tables = [h for h in lines if h.startswith("|")]
        self.sections.append("## Loader throughput (bench_data.py)\n\n"
                             + "\n".join(f"    {h}" for h in lines if not h.startswith("|")) + "\n\n"
                             + _tables(tables) + "\n")
        for row in _parse_rows(tables, "workers"):
            self.metrics[f"data|{row['pipeline']}|{row['workers']}"] = float(row["img/s (wall)"])
        return ""

    def store_step(self) -> str:
        store = self.work / "store"
        build = self.python("tools/build_teacher_store.py", "--dataset", "imagenet", "--data-path",
                            str(self.data_root(self.s.store_iters)), "--image-size", str(self.s.image),
                            "--teacher-model", "tv_resnet34",
                            "--teacher-ckpt", str(self.teacher_ckpt()), "--views", "1", "--out", str(store),
                            "--device", self.s.device, *self.amp(), "-j", str(self.s.e2e_workers),
                            "--forward-batch", str(self.s.batch), "--chunk-images", "8192")
        began = time.monotonic()
        self.run("store_build", build, self.s.limits["store"] / 2)
        build_s = time.monotonic() - began
        limit = max(30.0, (self.s.limits["store"] - build_s) / 2)
        plain = self.train("plain", [], self.s.store_iters, limit)
        stored = self.train("store_kd", [*self.kd_options(), "--teacher-store", str(store)], self.s.store_iters, limit)
        self.metrics["store_over_plain"] = stored["epoch_s"] / plain["epoch_s"]
        self.sections.append(
            "## Teacher-store epoch vs plain epoch (tools/train.py)\n\n"
            f"tv_resnet18, batch {self.s.batch}, {self.s.image} px, {self.s.e2e_workers} workers, AMP, channels-last; "
            f"second of 2 epochs of {self.s.store_iters} iterations; store: tv_resnet34, 1 view per image, full fp16 "
            f"logits, built in {build_s:.0f}s.\n\n"
            "| run | second epoch s | img/s |\n|---|---|---|\n"
            f"| plain (CE) | {plain['epoch_s']:.2f} | {plain['img_s']:.0f} |\n"
            f"| KD from the teacher store | {stored['epoch_s']:.2f} | {stored['img_s']:.0f} |\n"
            f"| store / plain | {self.metrics['store_over_plain']:.2f} | |\n")
        return f"store / plain {self.metrics['store_over_plain']:.2f}"

    # ---- the report -----------------------------------------------------------------------------------------
    def targets(self) -> list[tuple[str, str, str, bool | None]]:
        """(target, measured, bound, met) rows; met is None where it was not measured (or a dry run)."""
        rows: list[tuple[str, str, str, bool | None]] = []
        judge = not self.dry_run
        for pair in self.s.pairs.split(","):
            for loss in ("dist", "kd"):
                for suffix in ("", "_compiled"):
                    value = self.metrics.get(f"{pair}|{loss}|ratio{suffix}")
                    label = f"{pair} {loss}{' compiled' if suffix else ''}: c / (a+b)"
                    rows.append((label, f"{value:.3f}" if value else "not measured",
                                 f"<= {TARGETS['step_ratio']}",
                                 (value <= TARGETS["step_ratio"]) if value and judge else None))
            for suffix in ("", "_compiled"):
                value = self.metrics.get(f"{pair}|dist_over_kd{suffix}")
                rows.append((f"{pair}{' compiled' if suffix else ''}: DIST / KL KD step",
                             f"{value:.3f}" if value else "not measured", f"<= {1 + TARGETS['dist_vs_kl']:.2f}",
                             (value <= 1 + TARGETS["dist_vs_kl"]) if value and judge else None))
        e2e = self.metrics.get("e2e_img_s")
        step = self.metrics.get("tv_resnet18:tv_resnet34|dist|img_s")
        loader = self.metrics.get(f"data|uint8|{self.s.e2e_workers}")
        if e2e and step:
            bound, which = step, "KD step"
            if loader and loader < step:
                bound, which = loader, f"uint8 loader, {self.s.e2e_workers} workers"
            rows.append((f"end-to-end img/s vs the bound ({which})", f"{e2e:.0f} / {bound:.0f} = {e2e / bound:.2f}",
                         f">= {TARGETS['e2e_share']}", (e2e / bound >= TARGETS["e2e_share"]) if judge else None))
        else:
            rows.append(("end-to-end img/s vs the bound", "not measured", f">= {TARGETS['e2e_share']}", None))
        return rows

    def write_report(self) -> None:
        took = time.monotonic() - self.start
        lines = [f"# GPU check{' (dry run on the CPU: tiny sizes, targets not judged)' if self.dry_run else ''}",
                 "", f"`bash benchmarks/gpu_check.sh{' --dry-run' if self.dry_run else ''}`, {took:.0f}s "
                 f"(deadline {self.s.budget_s:.0f}s).", "", "| step | status | s | note |", "|---|---|---|---|"]
        lines += [f"| {n} | {st} | {sec:.0f} | {_md(note)[:300]} |" for n, st, sec, note in self.status]
        lines += ["", "## Targets (issue 25)", "", "| target | measured | bound | met |", "|---|---|---|---|"]
        lines += [f"| {t} | {m} | {b} | {'n/a' if ok is None else ('yes' if ok else '**no**')} |"
                  for t, m, b, ok in self.targets()]
        (self.out / "gpu_check.md").write_text("\n".join(lines + [""] + self.sections) + "\n")

    def exit_code(self) -> int:
        if any(state != "ok" for _, state, _, _ in self.status):
            return 1
        if any(ok is False for *_, ok in self.targets()):
            return 2
        return 0


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _tables(lines: list[str]) -> str:
    """Markdown table lines, a blank line between tables."""
    out, previous_header = [], None
    for line in lines:
        if line.startswith("|---") or line.startswith("|-"):
            out.append(line)
            continue
        if out and out[-1].startswith("|") and previous_header is not None and line.count("|") != previous_header:
            out.append("")
        if not out or not out[-1].startswith("|"):
            previous_header = line.count("|")
        out.append(line)
    return "\n".join(out)


def _parse_rows(lines: list[str], first: str, *must: str) -> list[dict[str, str]]:
    """Rows of the Markdown table whose header starts with ``first`` (and has the columns ``must``)."""
    rows, header = [], None
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first:
            header = cells if all(m in cells for m in must) else None
        elif header and not line.startswith("|-") and len(cells) == len(header):
            rows.append(dict(zip(header, cells)))
        elif not line.startswith("|-"):
            header = None
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny sizes (seconds each)")
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu_check_out"),
                   help="folder of gpu_check.md and gpu_check.log (default $OUT, else ./gpu_check_out)")
    p.add_argument("--only", default=None, help="comma-separated steps to run (env always runs): "
                   "tests,step,seg,e2e,data,store,compile")
    p.add_argument("--budget", type=float, default=None, help="deadline in seconds (GPU default 470)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (generated data, runs)")
    args = p.parse_args(argv)
    sizes = DRY if args.dry_run else GPU
    if args.budget:
        sizes.budget_s = args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    check = Check(out, work, sizes, args.dry_run)
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
