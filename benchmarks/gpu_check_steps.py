"""The steps of the GPU check (``benchmarks/gpu_check.py``): each runs one benchmark or the trainer as
a subprocess (:class:`~benchmarks.gpu_check_runner.Runner`), copies its tables into the report and
keeps the numbers the targets need (:class:`~benchmarks.gpu_check_report.Report`)."""
from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import time
from pathlib import Path

from benchmarks.gpu_check_report import Report, join_tables, parse_rows
from benchmarks.gpu_check_runner import ROOT, Runner

REQUIRED_IMPORTS = ["torch", "torchvision", "timm", "numpy", "PIL", "yaml", "tqdm", "matplotlib", "sklearn",
                    "torch.utils.tensorboard"]
COMPILE_BOTH_PAIRS_S = 200  # less time left than this: the compiled step measures the first pair only


class Check(Runner, Report):
    """The steps (``env``, ``tests``, ``step``, ``seg``, ``e2e``, ``data``, ``store``, ``compile``)."""

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
            "shm = (f'{shutil.disk_usage(\"/dev/shm\").free / 2**30:.1f} GiB free' if os.path.isdir('/dev/shm') "
            "else 'ABSENT: loader workers cannot hand batches over')\n"
            "print(f'| /dev/shm (loader workers hand batches over there) | {shm} |')\n"
            "try:\n    import xdist  # noqa\n    print('| pytest-xdist | yes |')\n"
            "except ImportError:\n    print('| pytest-xdist | no |')\n"
            "if missing:\n    print('MISSING: ' + '; '.join(missing)); sys.exit(3)\n"
        )
        out = self.run("env", self.python("-c", code), self.s.limits["env"], fresh=True)  # a new interpreter
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
        if compile_ and (self.dry_run or self.remaining() < COMPILE_BOTH_PAIRS_S):
            pairs = pairs.split(",")[0]  # compiling takes minutes: the first pair only, when time is short
            # (the dry run always: it takes this branch, and compiles half as much)
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
                             + "\n".join(f"    {h}" for h in header) + "\n\n" + join_tables(tables) + "\n")
        rows = parse_rows(tables, "student : teacher", "c / (a+b)")
        suffix = "_compiled" if compile_ else ""
        ratios = []
        for row in rows:
            pair, _, loss = row["student : teacher"].partition(" (")
            loss = loss.rstrip(")")
            self.metrics[f"{pair}|{loss}|ratio{suffix}"] = float(row["c / (a+b)"])
            self.metrics[f"{pair}|{loss}|img_s{suffix}"] = float(row["(c) img/s"])
            ratios.append(f"{pair} {loss} {row['c / (a+b)']}")
        for row in parse_rows(tables, "student : teacher", "KD step dist / kd"):
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
                             + join_tables([h for h in lines if h.startswith("|")]) + "\n")
        step = [h for h in lines if h.startswith("| KD step")]
        return step[0] if step else ""

    # ---- generated data and the trainer --------------------------------------------------------------------------
    def data_root(self, iterations: int | None = None) -> Path:
        """The generated JPEGs in the original's list-file layout, each listed many times: an epoch of
        ``iterations`` full batches (default: the end-to-end run's), the same files."""
        base = self.work / "jpegs"
        if not (base / "meta" / "train.txt").is_file():
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
                             + join_tables(tables) + "\n")
        for row in parse_rows(tables, "workers"):
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

