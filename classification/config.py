"""Command-line options of the trainer (the paper's names) and YAML configs.

YAML and precedence as both trainers (:mod:`distkd_cli.config`): built-in defaults < YAML file
given with ``-c`` < the command line.
"""
from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from classification.data.catalog import DATASETS
from classification.options import DEFAULT_DECAY_RATE, TrainConfig, fill_defaults  # noqa: F401 (fill_defaults)
from distkd.errors import UserError
from distkd_cli.args import ArgumentParser
from distkd_cli.config import add_experiment_options, add_kd_options, kd_options, option_names, parse_with_config

FOREIGN_OPTIONS = {  # options of the original's other projects (NAS, DBB, DyRep, EdgeNN): default only
    "model_config": "", "auxiliary": False, "auxiliary_weight": 0.4, "dbb": False, "dyrep": False,
    "dyrep_adjust_interval": 10, "dyrep_max_adjust_epochs": 100, "dyrep_recal_bn_iters": 20,
    "dyrep_recal_bn_every_epoch": False, "edgenn_config": "",
}


def _add_foreign_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("options of the original's other projects (accepted at their defaults only)")
    for name, default in FOREIGN_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            g.add_argument(flag, action="store_true", default=default, help=argparse.SUPPRESS)
        else:
            g.add_argument(flag, type=type(default), default=default, help=argparse.SUPPRESS)


def build_parser(for_test: bool = False) -> argparse.ArgumentParser:
    """The original trainer's options, names and defaults (``lib/utils/args.py`` of
    hunto/image_classification_sota), plus this project's extras (marked 'extension')."""
    p = ArgumentParser(
        description="Evaluate a classification checkpoint" if for_test else "Train a classifier, with or without KD",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Every --long-option may also be written with underscores (--color_jitter).",
    )
    p.add_argument("-c", "--config", default=None, help="YAML file of option defaults (CLI wins)")
    p.add_argument("--model", default=None, help="student model name (tv_*, timm_*, cifar_*, mobilenet_v1)")
    p.add_argument("--list-models", nargs="?", const="", default=None, metavar="FILTER",
                   help="print model names (with FILTER: those containing it, torchvision and timm ones too), exit")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="imagenet", choices=DATASETS.names(),
                   help="digits: scikit-learn's bundled digits (extension, CPU demo); folder: your own class "
                   "folders under --data-path/{train,val} (extension)")
    g.add_argument("--data-path", default=None, help="dataset root (default data/imagenet or data/cifar)")
    g.add_argument("--image-size", type=int, default=None, help="extension: input size (224 / 32 as the original)")
    g.add_argument("-b", "--batch-size", type=int, default=32, help="batch size per GPU/process")
    g.add_argument("--val-batch-size-multiplier", type=float, default=1.0, help="val batch = batch size x this")
    g.add_argument("-j", "--workers", type=int, default=4, help="data-loading workers per process")
    g.add_argument("--image-mean", type=float, nargs=3, default=None, help="normalization mean (dataset default)")
    g.add_argument("--image-std", type=float, nargs=3, default=None, help="normalization std (dataset default)")
    g.add_argument("--interpolation", default="bilinear", choices=["bilinear", "bicubic"], help="resize interpolation")
    g.add_argument("--crop-pct", type=float, default=0.875, help="extension: eval center-crop fraction (ImageNet)")
    g.add_argument("--skip-bad-images", action=argparse.BooleanOptionalAction, default=False,
                   help="extension: skip (and count) unreadable images instead of stopping")
    g = p.add_argument_group("model")
    g.add_argument("--drop", type=float, default=0.0,
                   help="the original's dropout rate: only its NAS/DARTS builders used it, so it has no effect on "
                        "tv_*, timm_*, cifar_* and mobilenet_v1 models (see --classifier-dropout)")
    g.add_argument("--classifier-dropout", type=float, default=0.0,
                   help="extension: real dropout before the classifier of any model (off in the paper's recipes)")
    g.add_argument("--drop-path-rate", type=float, default=0.0, help="stochastic depth of timm_* models")
    g.add_argument("--drop-path-strategy", default="const", choices=["const", "linear"],
                   help="linear: set the student's drop_path_rate attribute to rate x epoch / epochs (as the "
                        "original, this changes only models that read that attribute)")
    if not for_test:
        g.add_argument("--initial-checkpoint", default=None, metavar="PATH",
                       help="extension (timm's name): start the student from these weights (a state_dict, or a "
                            "checkpoint holding one, e.g. best.pth), loaded strictly; not a resume: the schedule "
                            "starts at epoch 0 (a checkpoint to resume from wins)")
        g.add_argument("--sync-bn", action="store_true",
                       help="extension (timm's name): SyncBatchNorm across the processes of a DDP run (CUDA); off "
                            "in the paper's recipes, whose BatchNorm statistics are per GPU")
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"], help="extension")
    g.add_argument("--amp", action="store_true", help="mixed precision (autocast)")
    g.add_argument("--amp-dtype", default="auto", choices=["auto", "bfloat16", "float16"],
                   help="extension: autocast dtype; auto = bf16 where supported, else fp16 with GradScaler")
    g.add_argument("--channels-last", action="store_true", help="extension: channels_last memory format")
    g.add_argument("--compile", action="store_true", help="extension: torch.compile the student")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--deterministic", action="store_true", help="extension: deterministic algorithms (slower)")
    g.add_argument("--slurm", action="store_true", help="processes started by srun: rank and world from SLURM_*")
    g.add_argument("--local-rank", type=int, default=0,
                   help="local rank given by the legacy torch.distributed.launch (LOCAL_RANK wins when set)")
    g.add_argument("--dist-port", default="12345", help="MASTER_PORT when the launcher sets none (--slurm)")
    _add_setup_options(p, for_test)
    if for_test:
        p.add_argument("--ckpt", required=True, help="checkpoint to evaluate (last.pth / best.pth / state_dict)")
        p.add_argument("--ema", action="store_true", help="evaluate the EMA weights of the checkpoint")
        return p

    g = p.add_argument_group("augmentation (training)")
    g.add_argument("--color-jitter", type=float, default=0.0,
                   help="ImageNet: ColorJitter(cj, cj, cj) when > 0 and no --aa")
    g.add_argument("--cutout-length", type=int, default=0, help="CIFAR: Cutout square side (0 = off)")
    g.add_argument("--aa", default=None, help="RandAugment policy, e.g. rand-m9-mstd0.5 (the original's 19 ops)")
    g.add_argument("--timm-rand-augment", action="store_true",
                   help="extension: timm's RandAugment (15 ops, clipped magnitudes) instead of the original's")
    g.add_argument("--reprob", type=float, default=0.0, help="random erasing probability")
    g.add_argument("--remode", default="const", help="random erasing mode (const, rand, pixel)")
    g.add_argument("--smoothing", type=float, default=0.1, help="label smoothing")
    g.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0 = off)")
    g.add_argument("--cutmix", type=float, default=0.0, help="cutmix alpha (0 = off)")
    g.add_argument("--cutmix-minmax", type=float, nargs="+", default=None, help="cutmix min/max box ratio")
    g.add_argument("--mixup-prob", type=float, default=1.0, help="probability of mixup or cutmix per batch")
    g.add_argument("--mixup-switch-prob", type=float, default=0.5, help="probability of cutmix when both are on")
    g.add_argument("--mixup-mode", default="batch", choices=["batch", "pair", "elem"])
    add_experiment_options(p, log_interval=50, save_interval=1000)  # --output, --experiment, --resume, ...
    g = p.add_argument_group("run length (extensions)")
    g.add_argument("--max-iters-per-epoch", type=int, default=0, help="extension: cap iterations per epoch (debug)")
    g.add_argument("--stop-after-epochs", type=int, default=0,
                   help="extension: leave after this many epochs of this run (continue with --resume)")
    g = p.add_argument_group("fewer GPUs than the paper's (extensions, docs/reproduce.md)")
    g.add_argument("--grad-accum-steps", type=int, default=None, metavar="K",
                   help="K micro-batches of --batch-size per process and optimizer step, each its own forward "
                        "and backward; on P processes the run trains as --emulate-gpus P*K (default 1)")
    g.add_argument("--emulate-gpus", type=int, default=None, metavar="N",
                   help="train as N GPUs of --batch-size images do, step by step (same batches, augmentation, "
                        "BatchNorm batches, KD loss per GPU, gradient): N / processes accumulation steps")
    g = p.add_argument_group("optimization")
    g.add_argument("--epochs", type=int, default=200)
    g.add_argument("--opt", default="sgd", choices=["sgd", "rmsprop", "rmsproptf", "adamw"])
    g.add_argument("--lr", type=float, default=0.01)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--sgd-no-nesterov", action="store_true", help="plain momentum SGD (default: Nesterov)")
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--opt-eps", type=float, default=1e-8, help="epsilon of rmsprop, rmsproptf and adamw")
    g.add_argument("--opt-betas", type=float, nargs=2, default=None,
                   help="adamw betas (the original accepted the key and never used it: null keeps the defaults)")
    g.add_argument("--opt-no-filter", action="store_true", help="apply weight decay to biases and norms too")
    g.add_argument("--clip-grad-norm", action="store_true", help="clip the gradient norm to --clip-grad-max-norm")
    g.add_argument("--clip-grad-max-norm", type=float, default=5.0)
    g.add_argument("--sched", default="step", choices=["step", "cosine", "linear"])
    g.add_argument("--decay-epochs", type=float, default=3, help="step: epochs between decays")
    g.add_argument("--decay-rate", "--dr", type=float, default=None,
                   help=f"step: factor per decay; unset (the original's default, which had no value) = "
                        f"{DEFAULT_DECAY_RATE}, timm's and torchvision's (the paper's YAML files set their own)")
    g.add_argument("--decay-by-epoch", action=argparse.BooleanOptionalAction, default=False,
                   help="cosine/linear: update once per epoch (step decays per iteration, as the original)")
    g.add_argument("--warmup-epochs", type=float, default=3, help="epochs of per-epoch staircase warmup")
    g.add_argument("--warmup-lr", type=float, default=1e-4)
    g.add_argument("--min-lr", type=float, default=1e-5, help="cosine: final lr")
    g.add_argument("--model-ema", action="store_true",
                   help="keep an EMA of the weights (timm); it is validated too and ranks best.pth")
    g.add_argument("--model-ema-decay", type=float, default=0.9998)
    g = p.add_argument_group("distillation")
    add_kd_options(g, absent="absent or empty = no KD")
    g.add_argument("--teacher-model", default=None)
    g.add_argument("--teacher-ckpt", default=None, help="teacher weights (state_dict, or under state_dict/model)")
    g.add_argument("--teacher-pretrained", dest="teacher_pretrained", action="store_true", default=True,
                   help="without --teacher-ckpt, torchvision/timm weights (downloaded on first use unless --offline)")
    g.add_argument("--teacher-no-pretrained", dest="teacher_pretrained", action="store_false",
                   help="random teacher (debugging only)")
    g.add_argument("--ori-loss-weight", type=float, default=1.0)
    g.add_argument("--teacher-module", default="",
                   help="feature losses (mse): teacher module whose output is distilled (empty: its last stage)")
    g.add_argument("--student-module", default="",
                   help="feature losses (mse): student module whose output is distilled (empty: its last stage)")
    # --- teacher store (i17, docs/teacher_store.md) ---
    g.add_argument("--teacher-store", default=None,
                   help="extension: replay views and teacher logits stored by tools/build_teacher_store.py "
                        "instead of running the teacher (the teacher network is not built)")
    _add_foreign_options(p)
    return p


def _add_setup_options(p: argparse.ArgumentParser, for_test: bool) -> None:
    """Downloads, own data, experiment tracking (see docs/own_data.md)."""
    g = p.add_argument_group("downloads, own data and tracking")
    g.add_argument("--offline", action="store_true",
                   help="never download (also HF_HUB_OFFLINE=1 / DISTKD_OFFLINE=1): a missing file is an error")
    g.add_argument("--download", action="store_true",
                   help="download CIFAR-10/100 into --data-path if missing (torchvision's archive, MD5 checked)")
    if for_test:
        return
    g.add_argument("--pretrained", action="store_true",
                   help="start the student from its torchvision/timm weights (classifier re-initialised "
                        "for the data's classes): fine-tuning, e.g. a teacher on your own data")
    g.add_argument("--train-fraction", type=float, default=1.0,
                   help="train on this fraction of the training split (a fixed, class-stratified subset)")
    g.add_argument("--log-wandb", action="store_true", help="also log to Weights & Biases (pip install '.[wandb]')")
    g.add_argument("--wandb-project", default="distkd", help="W&B project name")


def check_foreign_options(options: Mapping[str, Any]) -> None:
    """Options of the original's other projects are accepted at their defaults only."""
    for name, default in FOREIGN_OPTIONS.items():
        value = options.get(name, default)
        if value != default and not (value in (None, "") and default == ""):
            raise UserError(
                f"option '{name}' = {value!r} belongs to the original code's NAS/DBB/DyRep/EdgeNN projects, not to "
                f"DIST; this trainer accepts it only at its default ({default!r})"
            )


def parse_args(argv: Sequence[str] | None = None, for_test: bool = False) -> argparse.Namespace:
    """Parse ``argv``: defaults < YAML (``-c``) < command line. ``tools/test.py`` accepts a training
    config and ignores its training-only keys."""
    parser = build_parser(for_test)
    known = option_names(build_parser(for_test=False)) if for_test else ()
    args = parse_with_config(parser, argv, known)
    if not for_test:
        args.kd_loss_kwargs = kd_options(parser, args.kd_loss_kwargs)
        args.kd = args.kd or None  # the original's '' = no KD
        check_foreign_options(vars(args))
    return args


def option_order() -> tuple[str, ...]:
    """The trainer's option names in the parser's order (that of ``vars`` of the parsed options)."""
    return tuple(dict.fromkeys(a.dest for a in build_parser()._actions if a.dest != "help"))


def load_config(argv: Sequence[str] | None = None) -> TrainConfig:
    """The run configuration of ``argv`` (:func:`parse_args`, then :meth:`TrainConfig.parsed`)."""
    return TrainConfig.parsed(parse_args(argv), option_order())
