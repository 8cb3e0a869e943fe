"""Teacher store: KD epochs at the cost of plain training, store size / build time, top-K error.

Tables (CPU, generated data, the trainer's own transforms and ``Distiller``):

1. **Epoch time** per pair: (a) a plain student epoch (online recipe, CE); (b) an online KD epoch
   (teacher forward per batch, DIST); (c) a KD epoch replayed from a store (``ReplayDataset``:
   stored view applied, stored logits, no teacher). Target: c / a <= 1.1. Each epoch = data loading
   (0 workers) + forward, backward, SGD step over ``--images`` images.
   Pairs: ``cifar_resnet8x4 <- cifar_resnet32x4`` (CIFAR recipe on generated 32x32 CIFAR pickles),
   ``tv_resnet18 <- tv_resnet152`` (RandomResizedCrop recipe on a generated ImageFolder at
   ``--image-size``, 1000 classes).
2. **Store size and build time per 1k images** (one view each), full fp16 and top-K, for the
   1000-class teacher.
3. **Top-K error**: relative error of the DIST loss (tau 1 and 4) and of its gradient with respect
   to the student logits, top-K rebuild against full logits on the same stored views. The teacher
   here has random weights (no pretrained weights offline), whose outputs are nearly flat; the
   rows ``sharpened`` rescale those logits so the mean top-1 probability is 0.5 / 0.8, closer to a
   trained teacher on training crops. Measure your own with ``--teacher-ckpt``.
4. **Teacher forward passes of the CIFAR-100 table** with and without stores (arithmetic).

    PYTHONPATH=. python benchmarks/bench_teacher_store.py --threads 2
    PYTHONPATH=. python benchmarks/bench_teacher_store.py --smoke --threads 1
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from classification.config import load_config
from classification.data.datasets import build_dataset
from classification.data.transforms import build_transform
from classification.models import build_model
from classification.teacher_store.builder import build_store
from classification.teacher_store.replay import ReplayDataset
from classification.teacher_store.store import TeacherStore, rebuild_topk, topk_split
from classification.teacher_store.views import ReplayRecipe
from distkd.context import Batch, BatchContext
from distkd.distiller import Distiller
from distkd.losses import build_kd_loss
from distkd.losses.dist_kd import dist_loss
from distkd.teacher import StoredTeacher
from distkd.utils.checkpoint import load_weights
from distkd.utils.sampling import SeededBatchSampler
from distkd_cli.measure import machine_header

IDENTITY = {"teacher_id": {"model": "bench", "checkpoint_sha256": "random"},
            "dataset_id": {"name": "bench", "images": 0, "sha256": ""}}


def write_cifar100(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, count in (("train", n), ("test", 4)):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 255, (count, 3072), dtype=np.uint8),
                         "fine_labels": [i % 100 for i in range(count)]}, f)


def write_folder(root: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("val", 4)):
        for i in range(count):
            path = root / split / f"c{i % 4}" / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size + size // 4, size + size // 3, 3), dtype=np.uint8)).save(path)


class Setup:
    """One pair's data, recipe, student, teacher and store."""

    def __init__(self, student: str, teacher: str, dataset: str, root: Path, classes: int, image_size: int,
                 views: int, batch: int, teacher_ckpt: str | None = None) -> None:
        opts = ["--dataset", dataset, "--data-path", str(root)]
        if dataset == "folder":
            opts += ["--image-size", str(image_size)]
        self.args = load_config(opts).data
        self.transform = build_transform(self.args, load_config(opts).augment)
        self.recipe = ReplayRecipe(self.transform)
        self.raw = build_dataset(dataset, str(root), "train", None)
        self.classes, self.batch = classes, batch
        torch.manual_seed(0)
        # torchvision ResNets at their random init give logits beyond float16 (1e5 for ResNet-152): start their
        # residual branches at zero, as a trained network's outputs are of order 1-10
        kw = {"zero_init_residual": True} if teacher.startswith("tv_resnet") else {}
        self.student, self.teacher = build_model(student, classes), build_model(teacher, classes, **kw).eval()
        if teacher_ckpt:
            load_weights(self.teacher, teacher_ckpt, "--teacher-ckpt")
        self.store_dir = root / "store"
        start = time.perf_counter()
        build_store(self.store_dir, self.teacher, self.raw, self.recipe, **IDENTITY, views=views, seed=0,
                    chunk_images=10**6, batch_size=64, log=lambda _: None)
        self.build_s = time.perf_counter() - start
        self.views = views

    def online_loader(self) -> DataLoader:
        ds = build_dataset(self.args.dataset, str(self.args.data_path), "train", self.transform)
        return DataLoader(ds, batch_size=self.batch, shuffle=True, drop_last=True)

    def replay_loader(self) -> DataLoader:
        ds = ReplayDataset(self.raw, self.recipe, TeacherStore(self.store_dir), seed=0)
        batches = SeededBatchSampler(len(self.raw), self.batch, epoch_iterations=len(self.raw) // self.batch)
        return DataLoader(ds, batch_sampler=batches)  # the trainer's seeded batches of (index, sample seed)


def epoch(model: nn.Module, loader: DataLoader, params) -> float:
    """One epoch as the trainer's engine runs it; returns seconds."""
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    model.train()
    start = time.perf_counter()
    for batch in loader:
        batch = Batch(*batch)
        losses = model(batch.images, batch.targets, BatchContext(teacher_outputs=batch.teacher_outputs))
        loss = sum(losses.values()) if isinstance(losses, dict) else losses
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


class PlainStep(nn.Module):
    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student, self.ce = student, nn.CrossEntropyLoss()

    def forward(self, images, targets, ctx=None):
        return self.ce(self.student(images), targets)


def bench_epochs(s: Setup, repeats: int) -> dict[str, float]:
    ce = nn.CrossEntropyLoss()
    plain = PlainStep(s.student)
    online = Distiller(s.student, ce, s.teacher, build_kd_loss("dist"))
    replay = Distiller(s.student, ce, StoredTeacher(), build_kd_loss("dist"))
    runs = {"a": (plain, s.online_loader()), "b": (online, s.online_loader()), "c": (replay, s.replay_loader())}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats + 1):  # the first round warms up
        for key, (model, loader) in runs.items():
            if hasattr(loader.batch_sampler, "set_epoch"):
                loader.batch_sampler.set_epoch(r)
            t = epoch(model, loader, s.student.parameters())
            if r:
                times[key].append(t)
    return {k: statistics.median(v) for k, v in times.items()}


def size_and_build(s: Setup, topks: list[int], root: Path) -> list[tuple[str, float, float]]:
    """(label, MiB per 1k images per view, build s per 1k images per view) for full and each K."""
    rows = []
    n = len(s.raw)
    for k in [0, *topks]:
        out = root / f"size_k{k}"
        start = time.perf_counter()
        manifest = build_store(out, s.teacher, s.raw, s.recipe, **IDENTITY, views=1, topk=k, seed=0,
                               chunk_images=10**6, batch_size=64, log=lambda _: None)
        secs = time.perf_counter() - start
        size = sum((out / f"{name}.npy").stat().st_size for name in manifest["arrays"])
        per = 1000 / n
        rows.append(("full fp16" if not k else f"top-{k}", size / 2**20 * per, secs * per))
    return rows


def topk_errors(s: Setup, topks: list[int], sharpen: list[float]) -> list[tuple]:
    """Relative DIST loss / gradient error of the top-K rebuild on the store's views."""
    store = TeacherStore(s.store_dir)
    z = torch.from_numpy(np.asarray(store.arrays["logits"], dtype=np.float32)).flatten(0, 1)
    views = torch.from_numpy(np.array(store.arrays["views"])).flatten(0, 1)
    images = torch.stack([s.recipe.apply(s.raw[i // s.views][0], views[i].numpy()) for i in range(len(views))])
    with torch.no_grad():
        z_s = s.student.eval()(images)
    rows = []
    for target in [None, *sharpen]:
        zt, label = z, "random teacher"
        if target is not None:  # rescale so that the mean top-1 probability is `target` (bisection)
            lo, hi = 0.01, 1000.0
            for _ in range(60):
                mid = (lo * hi) ** 0.5
                lo, hi = (mid, hi) if (z * mid).softmax(1).max(1).values.mean() < target else (lo, mid)
            zt, label = z * lo, f"sharpened, top-1 p {target}"
        top1 = zt.softmax(1).max(1).values.mean().item()
        for k in topks:
            values, classes, rest = topk_split(zt, k)
            rebuilt = rebuild_topk(values.half().float(), classes, rest, zt.shape[1])
            row = [label, f"{top1:.2f}", k]
            for tau in (1.0, 4.0):
                full_zs = z_s.clone().requires_grad_()
                full = dist_loss(full_zs, zt.half().float(), tau=tau)
                full.backward()
                re_zs = z_s.clone().requires_grad_()
                approx = dist_loss(re_zs, rebuilt, tau=tau)
                approx.backward()
                row += [abs(approx - full).item() / full.item(),
                        ((re_zs.grad - full_zs.grad).norm() / full_zs.grad.norm()).item()]
            rows.append(tuple(row))
    return rows


def forward_counts(views: int) -> list[tuple[str, float]]:
    """The CIFAR-100 table (6 students x 3 seeds x KD/DIST from 4 teachers, 240 epochs, 50k images)."""
    runs, epochs, images, teachers = 6 * 3 * 2, 240, 50_000, 4
    online = runs * epochs * images
    return [("online (every run)", online), (f"stores, exact ({views} views)", teachers * views * images),
            ("stores, 16 drawn views", teachers * 16 * images)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=256, help="training images per pair")
    p.add_argument("--image-size", type=int, default=64, help="ImageNet-pair image size (reduced)")
    p.add_argument("--views", type=int, default=4, help="views per image of the benchmark stores")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per variant (median)")
    p.add_argument("--topk", default="10,20,50,100")
    p.add_argument("--teacher-ckpt", help="weights of the 1000-class teacher (tv_resnet152 state_dict): measure the "
                   "top-K error on a trained teacher")
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    p.add_argument("--smoke", action="store_true", help="tiny pairs and data, seconds")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = [("cifar_resnet8x4", "cifar_resnet32x4", "cifar100", 100, 64),
             ("tv_resnet18", "tv_resnet152", "folder", 1000, 32)]
    if args.smoke:
        args.images, args.image_size, args.views, args.repeats = 8, 32, 2, 1
        pairs = [("cifar_resnet8", "cifar_resnet14", "cifar100", 100, 4), ("tv_resnet18", "tv_resnet18", "folder",
                                                                             1000, 4)]
    topks = [int(k) for k in args.topk.split(",")]
    print(machine_header(torch.device("cpu")))
    print(f"{args.images} generated training images per pair, {args.views} views per image, 0 loader workers, "
          f"fp32, DIST; median of {args.repeats} epoch(s) after one warm-up epoch")
    with tempfile.TemporaryDirectory() as tmp:
        setups = []
        print("\n| student <- teacher | input | batch | (a) plain epoch s | (b) online KD epoch s | "
              "(c) store KD epoch s | c / a | b / a |")
        print("|---|---|---|---|---|---|---|---|")
        for student, teacher, dataset, classes, batch in pairs:
            root = Path(tmp) / teacher
            root.mkdir()
            if dataset == "cifar100":
                write_cifar100(root, args.images)
                size = 32
            else:
                write_folder(root, args.images, args.image_size)
                size = args.image_size
            ckpt = args.teacher_ckpt if classes == 1000 else None
            s = Setup(student, teacher, dataset, root, classes, size, args.views, batch, ckpt)
            setups.append(s)
            t = bench_epochs(s, args.repeats)
            print(f"| {student} <- {teacher} | {size}px, {classes} classes | {batch} | {t['a']:.2f} | {t['b']:.2f} | "
                  f"{t['c']:.2f} | {t['c'] / t['a']:.2f} | {t['b'] / t['a']:.2f} |")
        big = setups[-1]
        print(f"\nStore of {big.teacher.__class__.__name__} ({pairs[-1][1]}, {big.classes} classes, "
              f"{args.image_size}px), per 1k images x 1 view (multiply by V):")
        print("| outputs | MiB / 1k images | build s / 1k images |")
        print("|---|---|---|")
        for label, mib, secs in size_and_build(big, topks, Path(tmp)):
            print(f"| {label} | {mib:.3f} | {secs:.1f} |")
        print(f"\nTop-K rebuild vs full fp16 logits on the same {len(big.raw) * args.views} stored views "
              f"({pairs[-1][1]} teacher, {pairs[-1][0]} student logits, {big.classes} classes):")
        print("| teacher logits | mean top-1 p | K | loss err tau 1 | grad err tau 1 | loss err tau 4 | "
              "grad err tau 4 |")
        print("|---|---|---|---|---|---|---|")
        for label, top1, k, l1, g1, l4, g4 in topk_errors(big, topks, [0.5, 0.8]):
            print(f"| {label} | {top1} | {k} | {100 * l1:.3f} % | {100 * g1:.2f} % | {100 * l4:.3f} % | "
                  f"{100 * g4:.2f} % |")
    print("\nTeacher forward passes of the CIFAR-100 table (36 runs of 240 epochs on 50k images, 4 teachers):")
    print("| teacher outputs from | forward passes | vs online |")
    print("|---|---|---|")
    counts = forward_counts(162)
    for label, n in counts:
        print(f"| {label} | {n / 1e6:.1f} M | {counts[0][1] / n:.1f}x fewer |" if n != counts[0][1]
              else f"| {label} | {n / 1e6:.1f} M | 1x |")


if __name__ == "__main__":
    main()
