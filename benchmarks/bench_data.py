"""Throughput of the trainer's ImageNet train pipeline (decode + augment + collate), to size ``--workers``.

Writes ``--images`` JPEGs of ImageNet-like size (default 500x375, quality 90) in ImageFolder layout
under a temporary folder, builds the trainer's own loaders (``classification.data.build_loaders``
with options from ``classification.config.parse_args``: dataset imagenet, timm's
RandomResizedCrop + flip, and with ``--aa``/``--reprob`` RandAugment and random erasing), and for
each worker count reads ``--batches`` batches after a warm-up. Memory is pinned exactly when the
trainer pins it (CUDA present). Reports wall-clock img/s per worker count and, with 0 workers,
CPU ms per image of the pipeline (``time.process_time``: robust to other jobs on the machine).

Sizing rule: the loader must deliver the GPU step's img/s (``bench_step.py``);
``--workers`` >= GPU img/s x CPU ms per image / 1000, plus one or two to spare.

    python benchmarks/bench_data.py                                   # workers 0,1,2
    python benchmarks/bench_data.py --workers 0,2,4,8 --aa rand-m9-mstd0.5 --reprob 0.2
    python benchmarks/bench_data.py --smoke                           # tiny run, seconds
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from benchmarks.common import machine_header  # noqa: E402
from classification.config import parse_args  # noqa: E402
from classification.data import build_loaders  # noqa: E402
from distkd.utils.distributed import DistInfo  # noqa: E402


def write_jpegs(root: Path, count: int, width: int, height: int, classes: int, seed: int = 0) -> None:
    """``count`` JPEGs in ``root/train/<class>/`` (and 2 per class in ``root/val``): smooth colour
    fields plus noise, so they compress like photos rather than like flat colour or pure noise."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", count), ("val", 2 * classes)):
        for i in range(n):
            folder = root / split / f"n{i % classes:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
            image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
            pixels = np.asarray(image, dtype=np.int16) + rng.integers(-24, 25, (height, width, 3), dtype=np.int16)
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"img_{i:06d}.JPEG", quality=90)


def trainer_args(root: Path, workers: int, opts: argparse.Namespace) -> argparse.Namespace:
    argv = ["--model", "tv_resnet18", "--dataset", "imagenet", "--data-path", str(root),
            "-b", str(opts.batch_size), "-j", str(workers), "--image-size", str(opts.image_size)]
    if opts.aa:
        argv += ["--aa", opts.aa]
    if opts.reprob:
        argv += ["--reprob", str(opts.reprob)]
    return parse_args(argv)


def measure(root: Path, workers: int, opts: argparse.Namespace, device: torch.device) -> dict:
    """Wall-clock img/s over ``opts.batches`` batches after ``warmup`` batches (epochs repeat as needed)."""
    loader = build_loaders(trainer_args(root, workers, opts), DistInfo(device=device))[0]
    warmup = max(2, 2 * workers)
    seen, epoch, start, cpu_start, shape = 0, 0, 0.0, 0.0, ()
    while seen < warmup + opts.batches:
        loader.batch_sampler.set_epoch(epoch)
        for batch, _ in loader:
            seen, shape = seen + 1, tuple(batch.shape)
            if seen == warmup:
                start, cpu_start = time.perf_counter(), time.process_time()
            if seen == warmup + opts.batches:
                break
        epoch += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    images_read = (opts.batches - 1) * opts.batch_size  # the clock starts after the warm-up's last batch
    row = {"workers": workers, "img_s": images_read / wall, "pinned": loader.pin_memory,
           "shape": shape}
    if workers == 0:
        row["cpu_ms"] = 1e3 * cpu / images_read
    del loader  # joins the persistent workers
    return row


def format_table(rows: list[dict]) -> str:
    lines = ["| workers | img/s (wall) | CPU ms / img | pinned | batch |", "|---|---|---|---|---|"]
    for r in rows:
        cpu = f"{r['cpu_ms']:.2f}" if "cpu_ms" in r else ""
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"| {r['workers']} | {r['img_s']:.1f} | {cpu} | {r['pinned']} | {shape} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256, help="train JPEGs to generate")
    parser.add_argument("--source-size", default="500x375", help="JPEG width x height (ImageNet's typical size)")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224, help="train crop size")
    parser.add_argument("-b", "--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=24, help="timed batches per worker count")
    parser.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
    parser.add_argument("--aa", default=None, help="timm auto-augment policy, e.g. rand-m9-mstd0.5 (dist_b2)")
    parser.add_argument("--reprob", type=float, default=0.0, help="random erasing probability (dist_b2: 0.2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads in the main process (1, as in a DataLoader worker)")
    parser.add_argument("--root", default=None, help="write the JPEGs here (kept) instead of a temp folder")
    parser.add_argument("--smoke", action="store_true", help="16 small JPEGs, batch 4, workers 0,1, 3 batches")
    opts = parser.parse_args(argv)
    torch.set_num_threads(opts.threads)
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # more workers than CPUs: wanted
    if opts.smoke:
        opts.images, opts.source_size, opts.classes, opts.image_size = 16, "160x120", 2, 64
        opts.batch_size, opts.batches, opts.workers = 4, 3, "0,1"
    width, height = (int(v) for v in opts.source_size.lower().split("x"))
    workers = [int(w) for w in opts.workers.split(",")]
    if opts.images < opts.batch_size:
        raise SystemExit(f"--images {opts.images} must be at least --batch-size {opts.batch_size}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        root = Path(opts.root or tmp)
        start = time.perf_counter()
        write_jpegs(root, opts.images, width, height, opts.classes)
        jpeg_kb = sum(p.stat().st_size for p in (root / "train").rglob("*.JPEG")) / opts.images / 1024
        print(machine_header(torch.device("cpu")) + f" | {os.cpu_count()} CPUs for workers")
        print(f"{opts.images} JPEGs {width}x{height} (mean {jpeg_kb:.0f} KiB, written in "
              f"{time.perf_counter() - start:.1f}s) -> train crop {opts.image_size}, aa={opts.aa} "
              f"reprob={opts.reprob}; {opts.batches} timed batches of {opts.batch_size} per row")
        rows = [measure(root, w, opts, device) for w in workers]
    print(format_table(rows))


if __name__ == "__main__":
    main()
