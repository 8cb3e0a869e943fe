"""Throughput of the trainer's ImageNet train pipeline (decode + augment + collate), to size ``--workers``.

Writes ``--images`` JPEGs of ImageNet-like size (default 500x375, quality 90) in ImageFolder layout
under a temporary folder (``--repeat R``: a list file naming each R times, for big batches x many
workers), builds the trainer's own loaders (``classification.data.build_loaders`` with options
from ``classification.config.load_config``: dataset imagenet, timm's RandomResizedCrop + flip, and
with ``--aa``/``--reprob`` RandAugment and random erasing), and for each pipeline and worker count
reads ``--batches`` batches after a warm-up, on the device the trainer would use (CUDA when present:
pinned memory, the batch copied there). Two pipelines (``--pipeline``):

- ``float32``: the workers convert each crop to float32 and normalise it (the pipeline before
  issue 25); the batch crosses to the device as float32;
- ``uint8``: the workers stop at the uint8 crop; the batch crosses as uint8 NHWC and is converted,
  normalised (and randomly erased) on the device, one batch ahead in a side stream on CUDA
  (``classification/data/on_device.py``), as the trainer now does.

Reports wall-clock img/s, **bytes per batch** (what the workers hand over and the device receives)
and, with 0 workers, the workers' **CPU ms per image** (``time.process_time`` around the loader's
own work, without the device conversion: robust to other jobs on the machine).

Sizing rule: the loader must deliver the GPU step's img/s (``bench_step.py``);
``--workers`` >= GPU img/s x CPU ms per image / 1000, plus one or two to spare.

    python benchmarks/bench_data.py                                   # workers 0,1,2; both pipelines
    python benchmarks/bench_data.py --workers 0,2,4,8 --aa rand-m9-mstd0.5 --reprob 0.2
    python benchmarks/bench_data.py --smoke                           # tiny run, seconds
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from classification.config import load_config
from classification.data import build_loaders
from classification.data.on_device import DeviceLoader, DeviceSample
from classification.options import TrainConfig
from distkd.utils.distributed import DistInfo
from distkd_cli.measure import machine_header


def _write_jpeg(job: tuple[Path, int, int, int, int]) -> None:
    path, width, height, seed, index = job
    rng = np.random.default_rng([seed, index])
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-24, 25, (height, width, 3), dtype=np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)


def write_jpegs(root: Path, count: int, width: int, height: int, classes: int, seed: int = 0, repeat: int = 1,
                val_count: int | None = None, processes: int = 1) -> None:
    """``count`` JPEGs in ``root/train/<class>/`` (and ``val_count``, default 2 per class, in
    ``root/val``): smooth colour fields plus noise, so they compress like photos rather than like
    flat colour or pure noise. ``repeat`` > 1: also list files ``root/meta/{train,val}.txt`` (the
    original's ImageNet layout, which the trainer reads first) naming each train image ``repeat``
    times; the val list's first label is ``classes - 1``, so both lists count ``classes`` classes."""
    val_count = 2 * classes if val_count is None else val_count
    jobs, lists = [], {"train": [], "val": []}
    for split, n in (("train", count), ("val", val_count)):
        for i in range(n):
            label = i % classes if split == "train" else (classes - 1 - i) % classes
            rel = f"n{label:08d}/img_{i:06d}.JPEG"
            jobs.append((root / split / rel, width, height, seed + (split == "val"), i))
            lists[split].append(f"{rel} {label}")
    if processes > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(_write_jpeg, jobs, chunksize=16)
    else:
        for job in jobs:
            _write_jpeg(job)
    if repeat > 1:
        (root / "meta").mkdir(parents=True, exist_ok=True)
        (root / "meta" / "train.txt").write_text("\n".join(lists["train"] * repeat) + "\n")
        (root / "meta" / "val.txt").write_text("\n".join(lists["val"]) + "\n")


def trainer_args(root: Path, workers: int, opts: argparse.Namespace) -> TrainConfig:
    argv = ["--model", "tv_resnet18", "--dataset", "imagenet", "--data-path", str(root),
            "-b", str(opts.batch_size), "-j", str(workers), "--image-size", str(opts.image_size)]
    if opts.aa:
        argv += ["--aa", opts.aa]
    if opts.reprob:
        argv += ["--reprob", str(opts.reprob), "--remode", opts.remode]
    return load_config(argv)


def batch_bytes(raw, batch_size: int) -> int:
    """Bytes of one batch as the workers hand it over (images, augmentation params, targets)."""
    key = next(iter(raw.batch_sampler))[0]
    image, _ = raw.dataset[key]
    parts = [image.image, image.params] if isinstance(image, DeviceSample) else [image]
    return batch_size * (sum(t.nbytes for t in parts) + torch.empty((), dtype=torch.int64).element_size())


def measure(root: Path, workers: int, pipeline: str, opts: argparse.Namespace, device: torch.device) -> dict:
    """Wall-clock img/s over ``opts.batches`` batches after ``warmup`` batches (epochs repeat as needed),
    each batch on ``device`` as a normalised float batch, as the trainer's step receives it."""
    loader = build_loaders(trainer_args(root, workers, opts), DistInfo(device=device), uint8=pipeline == "uint8")[0]
    raw = loader.loader if isinstance(loader, DeviceLoader) else loader
    if isinstance(loader, DeviceLoader):
        convert = loader.convert
    else:
        def convert(batch):  # the engine's to_device
            return [t.to(device, non_blocking=True) for t in batch]
    # 0 workers: the loader's own work runs here, timed apart from the conversion; else the trainer's loader
    source = raw if workers == 0 or not isinstance(loader, DeviceLoader) else loader
    apart = source is raw
    warmup = max(2, 2 * workers)
    seen, epoch, start, worker_cpu, shape = 0, 0, 0.0, 0.0, ()
    while seen < warmup + opts.batches:
        loader.batch_sampler.set_epoch(epoch)
        iterator = iter(source)
        while seen < warmup + opts.batches:
            tick = time.process_time()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            if seen >= warmup:
                worker_cpu += time.process_time() - tick
            images = (convert(batch) if apart else batch)[0]
            seen, shape = seen + 1, tuple(images.shape)
            if seen == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
        epoch += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    images_read = opts.batches * opts.batch_size  # the clock starts after the warm-up's last batch
    row = {"workers": workers, "pipeline": pipeline, "img_s": images_read / wall, "pinned": raw.pin_memory,
           "shape": shape, "bytes": batch_bytes(raw, opts.batch_size)}
    if workers == 0:
        row["cpu_ms"] = 1e3 * worker_cpu / images_read
    del loader, raw, source  # joins the persistent workers
    return row


def format_table(rows: list[dict]) -> str:
    lines = ["| workers | pipeline | img/s (wall) | CPU ms / img | bytes / batch | pinned | batch |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = f"{r['cpu_ms']:.2f}" if "cpu_ms" in r else ""
        shape = "x".join(map(str, r["shape"]))
        size = f"{r['bytes'] / 2**20:.2f} MiB" if r["bytes"] >= 2**20 else f"{r['bytes'] / 2**10:.1f} KiB"
        lines.append(f"| {r['workers']} | {r['pipeline']} | {r['img_s']:.1f} | {cpu} | {size} | {r['pinned']} | "
                     f"{shape} |")
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
    parser.add_argument("--pipeline", default="float32,uint8",
                        help="comma-separated: float32 (normalised in the workers), uint8 (on the device)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="list each JPEG this many times (a larger epoch from the same files)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--aa", default=None, help="timm auto-augment policy, e.g. rand-m9-mstd0.5 (dist_b2)")
    parser.add_argument("--reprob", type=float, default=0.0, help="random erasing probability (dist_b2: 0.2)")
    parser.add_argument("--remode", default="pixel", help="random erasing mode (dist_b2: pixel)")
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
    pipelines = opts.pipeline.split(",")
    if set(pipelines) - {"float32", "uint8"}:
        raise SystemExit(f"--pipeline {opts.pipeline}: choose from float32, uint8")
    if opts.images * opts.repeat < opts.batch_size:
        raise SystemExit(f"--images x --repeat ({opts.images * opts.repeat}) must be at least --batch-size "
                         f"{opts.batch_size}")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if opts.device == "auto" else opts.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        root = Path(opts.root or tmp)
        start = time.perf_counter()
        write_jpegs(root, opts.images, width, height, opts.classes, repeat=opts.repeat,
                    processes=min(16, os.cpu_count() or 1))
        jpeg_kb = sum(p.stat().st_size for p in (root / "train").rglob("*.JPEG")) / opts.images / 1024
        print(machine_header(torch.device("cpu")) + f" | {os.cpu_count()} CPUs for workers | batches to {device}")
        print(f"{opts.images} JPEGs {width}x{height} (mean {jpeg_kb:.0f} KiB, written in "
              f"{time.perf_counter() - start:.1f}s) -> train crop {opts.image_size}, aa={opts.aa} "
              f"reprob={opts.reprob}{' ' + opts.remode if opts.reprob else ''}; {opts.batches} timed batches of "
              f"{opts.batch_size} per row"
              + (f"; list file x{opts.repeat}" if opts.repeat > 1 else ""))
        rows = [measure(root, w, p, opts, device) for w in workers for p in pipelines]
    print(format_table(rows))


if __name__ == "__main__":
    main()
