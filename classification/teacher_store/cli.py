"""``tools/build_teacher_store.py``: options and main (the tool's docstring has the examples)."""
from __future__ import annotations

import os
import re
import sys
import time

import torch

from distkd.errors import UserError
from distkd_cli.args import ArgumentParser
from distkd_cli.config import close_matches


def store_options(argv):
    p = ArgumentParser(description="Store a teacher's outputs under replayable views", add_help=False)
    p.add_argument("--out", help="folder of the store (created; resumed if it holds an unfinished build)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--views", type=int, default=None, help="views drawn per image (default 8)")
    mode.add_argument("--exact", action="store_true",
                      help="every view the recipe can draw (RandomCrop + flip recipes: CIFAR, digits)")
    p.add_argument("--topk", type=int, default=0, help="store the top-K logits and the rest's log-mass (0: all)")
    p.add_argument("--store-seed", type=int, default=0, help="seed of the drawn views")
    p.add_argument("--chunk-images", type=int, default=1024, help="images per resumable chunk")
    p.add_argument("--forward-batch", type=int, default=256, help="teacher forward batch (views)")
    p.add_argument("-h", "--help", action="store_true")
    return p, *p.parse_known_args(argv)


def main(argv=None) -> None:
    from classification.builders import amp_dtype, build_teacher
    from classification.config import load_config
    from classification.data.loaders import build_train_set
    from classification.data.transforms import build_transform
    from classification.teacher_store.builder import build_store
    from classification.teacher_store.replay import dataset_identity, without_transform
    from classification.teacher_store.store import teacher_identity
    from classification.teacher_store.views import ReplayRecipe
    from distkd.utils.logging import setup_logger

    parser, own, rest = store_options(sys.argv[1:] if argv is None else argv)
    if own.help:
        parser.print_help()
        print("\nand the trainer's data and teacher options (python tools/train.py --help)")
        return
    if not own.out:
        raise UserError("--out DIR is required: the folder of the store")
    try:
        config = load_config(rest)
    except UserError as err:  # a typo of one of the store's own options: suggest those too
        typo = re.match(r"unknown option '(--[\w-]+)'", str(err))
        close = close_matches(typo.group(1), parser.long_options()) if typo else ""
        if close:
            raise UserError(f"unknown option '{typo.group(1)}'{close}; --help lists the options") from None
        raise
    distill, data, augment = config.distill, config.data, config.augment
    if not distill.teacher_model:
        raise UserError("no teacher: pass --teacher-model NAME (and --teacher-ckpt PATH for your own weights)")
    if augment.mixup_active:
        raise UserError("mixup / cutmix cannot be replayed from stored views: drop --mixup / --cutmix")
    transform = build_transform(data, augment)
    recipe = ReplayRecipe(transform)
    device = torch.device("cuda" if config.runtime.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    train_set = build_train_set(data, augment, transform)  # the dataset itself (the store replaces its transform)
    logger = setup_logger("distkd.store", None, True)
    teacher = build_teacher(distill, data, train_set.num_classes, logger)
    start = time.time()
    manifest = build_store(
        own.out, teacher, without_transform(train_set), recipe,
        teacher_identity(distill.teacher_model, distill.teacher_ckpt, distill.teacher_pretrained),
        dataset_identity(data.dataset, train_set), views=None if own.exact else (own.views or 8), topk=own.topk,
        seed=own.store_seed, chunk_images=own.chunk_images, batch_size=own.forward_batch, workers=data.workers,
        device=device, amp_dtype=amp_dtype(config.runtime, device), log=logger.info,
    )
    size = sum(os.path.getsize(os.path.join(own.out, f"{n}.npy")) for n in manifest["arrays"])
    logger.info(f"store '{own.out}': {manifest['dataset']['images']} images x {manifest['views']['per_image']} views, "
                f"{manifest['outputs']['classes']} classes, {size / 2**20:.1f} MiB, {time.time() - start:.1f}s")
