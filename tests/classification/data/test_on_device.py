"""uint8 batches normalised on the device (classification/data/on_device.py) against the float32
pipeline they replace: the same batches where no random draw moves, random erasing with the same
boxes, its distribution and its per-sample seeding; channels-last; the teacher store's replay."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from classification.config import load_config
from classification.data import build_loaders
from classification.data.on_device import (
    CutoutParams,
    DeviceLoader,
    DeviceSample,
    DeviceTransform,
    EraseParams,
    split_transform,
)
from classification.data.transforms import build_transform
from classification.teacher_store.replay import without_transform
from classification.teacher_store.views import ReplayRecipe, view_rng
from distkd.utils.distributed import DistInfo
from distkd.utils.rng import seed_everything
from distkd.utils.sampling import step_seed
from tests.conftest import ROOT, write_cifar, write_image

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("folder")
    for split, count in (("train", 8), ("val", 3)):
        for c in range(2):
            for i in range(count):
                write_image(root / split / f"c{c}" / f"{i}.png", 100 * c + i, (40, 52), "PNG")
    return root


@pytest.fixture(scope="module")
def cifar(tmp_path_factory) -> Path:
    return write_cifar(tmp_path_factory.mktemp("cifar"), "cifar100", n_train=16, n_test=4)


def options(case: str, folder: Path, cifar: Path) -> list[str]:
    base = {"folder": ["--dataset", "folder", "--data-path", str(folder), "--image-size", "24"],
            "cifar": ["--dataset", "cifar100", "--data-path", str(cifar)],
            "digits": ["--dataset", "digits", "--image-size", "16", "--train-fraction", "0.02"]}
    extra = {
        "folder": [], "folder-aa": ["--aa", "rand-m9-mstd0.5"], "folder-jitter": ["--color-jitter", "0.4"],
        "folder-bicubic-mixup": ["--interpolation", "bicubic", "--mixup", "0.8", "--cutmix", "1.0"],
        "cifar": [], "cifar-cutout": ["--cutout-length", "8"],
        "digits": ["--aa", "rand-m9-mstd0.5", "--cutout-length", "4"],
    }[case]
    return base[case.split("-")[0]] + extra + ["--model", "cifar_resnet8", "-b", "4", "-j", "0"]


def epoch_batches(loader, epoch: int = 1, mixup=None, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every batch of ``epoch`` as the engine sees it (after mixup / cutmix, reseeded per step)."""
    if hasattr(loader, "batch_sampler") and hasattr(loader.batch_sampler, "set_epoch"):
        loader.batch_sampler.set_epoch(epoch)
    out = []
    for i, (images, targets, *_) in enumerate(loader):
        if mixup is not None:
            seed_everything(step_seed(seed, epoch, i))
            images, targets = mixup(images, targets)
        out.append((images, targets))
    return out


CASES = ["folder", "folder-aa", "folder-jitter", "folder-bicubic-mixup", "cifar", "cifar-cutout", "digits"]


@pytest.mark.parametrize("case", CASES)
def test_uint8_batches_equal_the_float_pipeline_on_the_same_seeds(case, folder, cifar):
    args = load_config(options(case, folder, cifar))
    train8, val8, _, mixup8 = build_loaders(args, DistInfo(), uint8=True)
    train32, val32, _, mixup32 = build_loaders(args, DistInfo(), uint8=False)
    assert isinstance(train8, DeviceLoader) and isinstance(val8, DeviceLoader)
    assert not isinstance(train32, DeviceLoader)
    raw_images = next(iter(train8.loader))[0]
    random_on_device = "cutout" in case or case == "digits"  # else the worker hands over the image alone
    assert isinstance(raw_images, DeviceSample) == random_on_device
    assert (raw_images.image if random_on_device else raw_images).dtype == torch.uint8
    train_batches = epoch_batches(train8, mixup=mixup8, seed=args.runtime.seed)
    for new, old in ((train_batches, epoch_batches(train32, mixup=mixup32, seed=args.runtime.seed)),
                     (epoch_batches(val8), epoch_batches(val32))):
        assert len(new) == len(old) > 0
        for (x8, y8), (x32, y32) in zip(new, old):
            assert x8.dtype == torch.float32 and x8.shape == x32.shape
            torch.testing.assert_close(x8, x32, rtol=0, atol=1e-6)  # float rounding (bitwise here)
            torch.testing.assert_close(y8, y32)
    if random_on_device:
        assert all((x == 0).all(1).any() for x, _ in train_batches)  # Cutout's zeros came through


def test_every_recipe_of_the_trainer_splits(folder, cifar):
    """No shipped recipe falls back to the float pipeline (a step after ToTensor it cannot move)."""
    recipes = [options(c, folder, cifar) for c in CASES]
    recipes += [["-c", str(ROOT / "configs" / "strategies" / "distill" / name), "--data-path", str(folder)]
                for name in ("resnet_dist.yaml", "dist_b2.yaml")]
    recipes += [["-c", str(ROOT / "configs" / "strategies" / "baseline" / "b2.yaml")],
                ["--reprob", "0.5", "--remode", "rand", "--dataset", "digits", "--cutout-length", "4"]]
    for argv in recipes:
        args = load_config(argv)
        for train in (True, False):
            assert split_transform(build_transform(args.data, args.augment, train=train)) is not None, (argv, train)


def erased_pair(mode: str, folder: Path, cifar: Path, uint8: bool, batch: int = 4, workers: int = 0, epoch: int = 2):
    """(batches with random erasing at p 0.75, the same without it) of one epoch."""
    argv = options("folder-aa", folder, cifar) + ["-b", str(batch), "-j", str(workers)]
    with_erasing = build_loaders(load_config(argv + ["--reprob", "0.75", "--remode", mode]), DistInfo(),
                                 uint8=uint8)[0]
    without = build_loaders(load_config(argv), DistInfo(), uint8=uint8)[0]
    return ([x for x, _ in epoch_batches(with_erasing, epoch)], [x for x, _ in epoch_batches(without, epoch)],
            with_erasing)


@pytest.mark.parametrize("mode", ["pixel", "rand", "const"])
def test_random_erasing_erases_the_same_boxes_as_the_float_pipeline(mode, folder, cifar):
    erased8, plain8, loader8 = erased_pair(mode, folder, cifar, uint8=True)
    erased32, plain32, _ = erased_pair(mode, folder, cifar, uint8=False)
    for x8, p8, x32, p32 in zip(erased8, plain8, erased32, plain32):
        torch.testing.assert_close(p8, p32, rtol=0, atol=1e-6)
        mask32 = (x32 != p32).any(1)  # where the float pipeline erased
        mask8 = (x8 != p8).any(1)
        assert torch.equal(mask8, mask32)
        assert torch.equal(x8[~mask8[:, None].expand_as(x8)], p8[~mask8[:, None].expand_as(p8)])
        if mode == "const":
            assert torch.equal(x8, x32)  # zeros: no noise, the same batch
    assert sum(int(m.any()) for x8, p8 in zip(erased8, plain8) for m in (x8 != p8).any(1)) >= 4  # boxes were drawn
    params = next(iter(loader8.loader))[0].params
    assert params.shape == (4, 5) and params.dtype == torch.int64


def test_random_erasing_noise_is_standard_normal_and_seeded_per_sample(folder, cifar):
    # per sample: two batches of 2 hold the samples of one batch of 4 (the same stream positions),
    # and two workers load what the main process loads
    erased4, plain4, _ = erased_pair("pixel", folder, cifar, uint8=True, batch=4)
    erased2, _, _ = erased_pair("pixel", folder, cifar, uint8=True, batch=2, workers=2)
    assert torch.equal(torch.cat(erased4), torch.cat(erased2))
    # the distribution: timm's per-pixel N(0, 1), in normalised units
    noise = torch.cat([x[(x != p).any(1)[:, None].expand_as(x)] for x, p in zip(erased4, plain4)])
    assert noise.numel() > 500
    assert abs(noise.mean().item()) < 0.15 and abs(noise.std().item() - 1) < 0.1
    # the device part alone: a box's noise depends on its seed only, not on its row or its batch
    transform = DeviceTransform((0.5,) * 3, (0.25,) * 3, [("erase", EraseParams(_erasing("pixel")))])
    images = torch.full((3, 32, 32, 3), 128, dtype=torch.uint8)
    params = torch.tensor([[0, 0, 0, 0, 0], [2, 3, 16, 16, 7], [2, 3, 16, 16, 8]])
    out = transform(images, params)
    alone = transform(images[:1], params[1:2])
    torch.testing.assert_close(out[1, :, 2:18, 3:19], alone[0, :, 2:18, 3:19], rtol=0, atol=0)
    assert not torch.equal(out[1, :, 2:18, 3:19], out[2, :, 2:18, 3:19])  # another seed, other noise
    assert (out[0] == out[0, 0, 0, 0]).all()  # no box: untouched (128 / 255 normalised)
    big = transform(torch.zeros((64, 64, 64, 3), dtype=torch.uint8),
                    torch.tensor([[0, 0, 64, 63, s] for s in range(64)]))[:, :, :, :63]
    stats = big.flatten(1)
    assert abs(stats.mean().item()) < 0.01 and abs(stats.std().item() - 1) < 0.01
    assert stats.std(1).min() > 0.95  # every sample got its own noise


def _erasing(mode: str, probability: float = 1.0):
    from timm.data.random_erasing import RandomErasing

    return RandomErasing(probability, mode=mode, max_count=1, device="cpu")


def test_erase_params_draw_what_timm_draws():
    """The worker's draws are timm's RandomErasing draws, call for call (box by box)."""
    for mode in ("pixel", "rand", "const"):
        timm_erasing, drawer = _erasing(mode, 0.5), EraseParams(_erasing(mode, 0.5))
        for seed in range(60):
            seed_everything(seed)
            image = torch.full((3, 20, 30), 5.0)
            timm_erasing(image)
            changed = (image != 5.0).any(0)
            seed_everything(seed)
            boxes = drawer.boxes(20, 30)
            expected = torch.zeros(20, 30, dtype=torch.bool)
            for top, left, h, w, _ in boxes:
                expected[top:top + h, left:left + w] = True
            assert torch.equal(changed, expected), (mode, seed)
            after_drawer = random.random()  # the drawer took as many numbers from `random` as timm
            seed_everything(seed)
            timm_erasing(image)
            assert random.random() == after_drawer


def test_the_device_conversion_draws_nothing_from_the_global_generators():
    transform = DeviceTransform((0.5,) * 3, (0.25,) * 3, [("erase", EraseParams(_erasing("pixel"))),
                                                         ("cutout", CutoutParams(8))])
    seed_everything(3)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    transform(torch.zeros((2, 16, 16, 3), dtype=torch.uint8),
              torch.tensor([[1, 1, 8, 8, 5, 0, 8, 0, 8], [0, 0, 0, 0, 0, 4, 12, 4, 12]]))
    assert random.getstate() == states[0] and (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])


@pytest.mark.parametrize("channels_last", [False, True])
def test_batches_cross_as_uint8_nhwc_and_arrive_in_the_student_memory_format(channels_last, folder, cifar):
    argv = options("folder", folder, cifar) + (["--channels-last"] if channels_last else [])
    train, val, _, _ = build_loaders(load_config(argv), DistInfo(), uint8=True)
    float_train = build_loaders(load_config(argv), DistInfo(), uint8=False)[0]
    raw = next(iter(train.loader))[0]
    assert raw.dtype == torch.uint8 and raw.shape == (4, 24, 24, 3)  # NHWC: channels-last in memory
    assert raw.nbytes * 4 == next(iter(float_train))[0].nbytes  # a quarter of the bytes
    for loader in (train, val):
        images = next(iter(loader))[0]
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        assert images.is_contiguous(memory_format=fmt) and images.shape[1] == 3


def test_replayed_store_views_in_uint8_equal_the_float_replay(cifar):
    args = load_config(options("cifar-cutout", Path("."), cifar))
    recipe = ReplayRecipe(build_transform(args.data, args.augment, train=True))
    _, device_part = split_transform(build_transform(args.data, args.augment, train=True))
    train = build_loaders(args, DistInfo())[0]
    raw = without_transform(train.dataset)
    for i in range(6):
        image = raw[i][0]
        view = recipe.draw(image, view_rng(0, i, 0))
        sample = recipe.apply(image, view, uint8=True)
        assert sample.params.shape == (device_part.param_count,)
        out = device_part(sample.image[None], sample.params[None])[0]
        torch.testing.assert_close(out, recipe.apply(image, view), rtol=0, atol=1e-6)


def test_the_side_stream_converts_one_batch_ahead_and_hands_each_batch_over(monkeypatch, folder, cifar):
    """The CUDA branch's order of events, with stand-ins for the streams (the real ones: CUDA tests below)."""
    events: list[str] = []

    class Stream:
        def __init__(self, name: str) -> None:
            self.name = name

        def wait_stream(self, other) -> None:
            events.append(f"{self.name} waits for {other.name}")

    class StreamContext:
        def __init__(self, stream) -> None:
            self.stream = stream

        def __enter__(self):
            events.append(f"on {self.stream.name}")

        def __exit__(self, *exc) -> None:
            events.append("off")

    main_stream = Stream("main")
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: Stream("side"))
    monkeypatch.setattr(torch.cuda, "stream", StreamContext)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: main_stream)
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, stream: events.append(f"record on {stream.name}"),
                        raising=False)
    argv = options("cifar-cutout", folder, cifar)
    loader = build_loaders(load_config(argv), DistInfo())[0]
    expected = epoch_batches(loader, 0)
    loader.side_stream = True
    loader.batch_sampler.set_epoch(0)
    got = []
    for images, targets in loader:
        events.append("yield")
        got.append((images, targets))
    assert len(got) == len(expected) == 4
    for (x, y), (xe, ye) in zip(got, expected):
        assert torch.equal(x, xe) and torch.equal(y, ye)
    convert = ["on side", "off"]
    handed = ["main waits for side", "record on main", "record on main"]  # images and targets
    assert events == convert + handed + (convert + ["yield"] + handed) * 3 + ["yield"]


# ---- CUDA: the side stream and the pinned copies (benchmarks/gpu_check.sh runs these) ----------------------------
@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("workers", [0, 2])
def test_cuda_prefetched_batches_equal_the_cpu_conversion(workers, folder, cifar):
    argv = options("folder-aa", folder, cifar) + ["-j", str(workers), "--reprob", "0.5", "--remode", "const",
                                                  "--channels-last"]
    args = load_config(argv)
    gpu = build_loaders(args, DistInfo(device=torch.device("cuda")))[0]
    cpu = build_loaders(args, DistInfo())[0]
    assert gpu.pin_memory
    for epoch in (0, 1):
        expected = epoch_batches(cpu, epoch)
        gpu.batch_sampler.set_epoch(epoch)
        count = 0
        for (x, y), (xc, yc) in zip(gpu, expected):  # each batch read as it comes, the next one in flight
            assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(x.cpu(), xc, rtol=0, atol=1e-6)
            torch.testing.assert_close(y.cpu(), yc)
            x.mul_(0)  # the main stream writes the batch it was given; the next one must not see it
            count += 1
        assert count == len(expected) > 1


@pytest.mark.cuda
@cuda
def test_cuda_erasing_and_cutout_match_the_cpu_boxes_and_noise_statistics():
    transform = DeviceTransform((0.5,) * 3, (0.25,) * 3, [("erase", EraseParams(_erasing("pixel"))),
                                                         ("cutout", CutoutParams(8))])
    images = torch.randint(0, 256, (64, 48, 48, 3), dtype=torch.uint8)
    params = torch.tensor([[i % 7, i % 5, 24 + i % 9, 20, 1000 + i, i % 40, i % 40 + 8, 3, 11] for i in range(64)])
    cpu = transform(images, params)
    gpu = transform(images.cuda(), params.pin_memory(), torch.channels_last)
    assert gpu.is_contiguous(memory_format=torch.channels_last)
    noise = torch.zeros(64, 48, 48, dtype=torch.bool)
    for i, (top, left, h, w, *_rest) in enumerate(params.tolist()):
        noise[i, top:top + h, left:left + w] = True
    noise &= (cpu != 0).any(1)  # Cutout's square after the noise: zeros on both
    keep = ~noise[:, None].expand_as(cpu)
    torch.testing.assert_close(gpu.cpu()[keep], cpu[keep], rtol=0, atol=1e-6)
    values = gpu.cpu()[~keep]
    assert abs(values.mean().item()) < 0.02 and abs(values.std().item() - 1) < 0.02
    again = transform(images.cuda(), params)
    assert torch.equal(again, gpu.contiguous())  # per-sample seeded on the device too


@pytest.mark.cuda
@cuda
def test_cuda_training_with_workers_and_every_augmentation(tmp_path, folder, cifar):
    from classification.train import main

    stats = main(options("folder-aa", folder, cifar) + [
        "--device", "cuda", "-j", "2", "--reprob", "0.25", "--remode", "pixel", "--mixup", "0.2", "--cutmix", "1.0",
        "--amp", "--channels-last", "--epochs", "2", "--max-iters-per-epoch", "3", "--kd", "dist",
        "--teacher-model", "cifar_resnet14", "--teacher-no-pretrained", "--sched", "cosine",
        "--output", str(tmp_path)])
    assert 0 <= stats["top1"] <= 100
