"""Options of the segmentation trainer and YAML configs, with the classification trainer's names.

YAML and precedence as both trainers (:mod:`distkd_cli.config`): defaults < ``-c`` YAML < the
command line. The experiment options (``--output``, ``--experiment``, ``--resume``, ``--overwrite``,
``--log-interval``, ``--save-interval``) are the shared ones. Where the paper's segmentation
trainer (``train_kd.py`` of hunto/DIST_KD) named a thing differently, its name is an accepted
alias: ``--data`` (``--data-path``), ``--teacher-pretrained`` (``--teacher-ckpt``), ``--lambda-kd``
(``--kd-loss-weight``), ``--kd-temperature`` (the method's ``tau``, ``--kd-loss-kwargs tau=T``),
``--log-iter``, ``--val-per-iters``, ``--save-per-iters``, and ``--save-dir`` (the experiment folder
itself).

KD is the registry's (``--kd``, ``--kd-loss-weight``, ``--kd-loss-kwargs``, as the classification
trainer): any method that takes per-pixel logits (``dist``, the default with a teacher, as the paper;
``kd``; with or without ``ls=1``), on the main and the auxiliary head. Its ``--log-dir``,
``--gpu-id`` and ``--local-rank`` are accepted
and change nothing (the log is the experiment's ``log.txt``; torchrun assigns the GPUs).

Defaults are the paper's, and where its two trainers differ, the one this run is: with a teacher
weight decay 5e-4, validation every 400 iterations, poly floor 1e-4; without one 1e-4, 800 and no
floor (:data:`PAPER_TRAINERS`). The launch scripts pass every value explicitly.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from distkd.errors import UserError
from distkd_cli.args import ArgumentParser
from distkd_cli.config import add_experiment_options, add_kd_options, kd_options, parse_with_config
from segmentation.datasets import INPUT_FORMATS
from segmentation.options import SegConfig

DEFAULT_KD = "dist"  # the paper's method, beta = gamma = tau = 1

# The settings in which the paper's KD trainer (train_kd.py) and baseline trainer (train_baseline.py) differ.
PAPER_TRAINERS = {
    "kd": {"weight_decay": 5e-4, "val_interval": 400, "min_lr": 1e-4},
    "baseline": {"weight_decay": 1e-4, "val_interval": 800, "min_lr": 0.0},
}


def get_args_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description="Train a Cityscapes segmentation network, alone or distilled",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Every --long-option may also be written with underscores.")
    p.add_argument("-c", "--config", default=None, help="YAML file of option defaults (the command line wins)")
    g = p.add_argument_group("models")
    g.add_argument("--student-model", default="deeplabv3", help="deeplabv3, psp, deeplab_mobile or psp_mobile")
    g.add_argument("--student-backbone", default=None,
                   help="resnet18/50/101_v1s (the paper's deep-stem resnets), resnet18/34/50/101/152 (torchvision "
                        "7x7 stem) or mobilenetv2 (default: resnet18_v1s; mobilenetv2 for *_mobile)")
    g.add_argument("--student-pretrained-base", default=None, metavar="PATH", help="ImageNet backbone weights")
    g.add_argument("--teacher-model", default=None, help="distil from this model (none: train a baseline)")
    g.add_argument("--teacher-backbone", default="resnet101_v1s")
    g.add_argument("--teacher-ckpt", "--teacher-pretrained", default=None, metavar="PATH",
                   help="trained teacher: a best.pth of this trainer or the paper's released file")
    g.add_argument("--teacher-input-format", default=None, choices=sorted(INPUT_FORMATS),
                   help="input format the teacher was trained with (default: its checkpoint's record; paper for "
                        "the paper's files; else --input-format); the teacher's input is converted to it")
    g.add_argument("--no-aux", action="store_true", help="no auxiliary FCN head on the student")
    g = p.add_argument_group("distillation (per-pixel logits of the main and auxiliary heads)")
    add_kd_options(g, absent=f"default with --teacher-model: {DEFAULT_KD} (the paper)", weight_aliases=["--lambda-kd"])
    g.add_argument("--kd-temperature", type=float, default=None,
                   help="the paper's name for the method's temperature (= --kd-loss-kwargs tau=T)")
    g = p.add_argument_group("data")
    g.add_argument("--data-path", "--data", default="data/cityscapes", help="Cityscapes root (leftImg8bit/, gtFine/)")
    g.add_argument("--train-list", default=None, help="list file of training pairs (default: scan the layout)")
    g.add_argument("--val-list", default=None, help="list file of validation pairs (default: scan the layout)")
    g.add_argument("--crop-size", type=int, nargs=2, default=[512, 1024], metavar=("H", "W"))
    g.add_argument("--input-format", default="paper", choices=sorted(INPUT_FORMATS),
                   help="paper: BGR minus the paper's mean, no std (its backbone files and teacher); imagenet: RGB "
                        "ImageNet mean/std (torchvision/timm weights)")
    g.add_argument("--workers", "-j", type=int, default=4, help="data loading processes per GPU")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=16, help="global batch, split over the processes")
    g.add_argument("--emulate-gpus", type=int, default=None, metavar="N",
                   help="extension: train as N GPUs of batch / N crops with SyncBatchNorm: BatchNorm over the whole "
                        "batch, cross-entropy and DIST per N-th of the batch, averaged (docs/reproduce.md)")
    g.add_argument("--max-iterations", type=int, default=40000)
    g.add_argument("--lr", type=float, default=0.02)
    g.add_argument("--min-lr", type=float, default=None,
                   help="poly schedule floor (default: the paper's, 1e-4 with a teacher, 0 without)")
    g.add_argument("--power", type=float, default=0.9, help="poly schedule power")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=None,
                   help="default: the paper's, 5e-4 with a teacher, 1e-4 without")
    g.add_argument("--aux-weight", type=float, default=0.4, help="weight of the aux head's CE and KD terms")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                   help="mixed precision; the paper trained in float32")
    g.add_argument("--amp-dtype", default="float16", choices=["auto", "bfloat16", "float16"],
                   help="autocast dtype with --amp: float16 (CUDA only, with a GradScaler), bfloat16, or auto "
                        "(bfloat16 where supported, else float16)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    add_experiment_options(p, log_interval=10, save_interval=1000,
                           aliases={"log_interval": ["--log-iter"], "save_interval": ["--save-per-iters"]})
    g = p.add_argument_group("run")
    g.add_argument("--save-dir", default=None, metavar="DIR",
                   help="the paper's name: the experiment folder itself (= --output PARENT --experiment NAME)")
    g.add_argument("--stop-iteration", type=int, default=None, help="save and stop after this iteration")
    g.add_argument("--val-interval", "--val-per-iters", type=int, default=None,
                   help="validate every N iterations and at the end, keeping the best (default: the paper's, "
                        "400 with a teacher, 800 without)")
    g.add_argument("--eval-scales", type=float, nargs="+", default=[1.0], help="e.g. 0.75 1.0 1.25 1.5 1.75")
    g.add_argument("--eval-flip", action="store_true", help="add horizontally flipped predictions")
    g.add_argument("--eval-teacher", action="store_true", help="validate the teacher once before training")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    for name in ("--log-dir", "--gpu-id", "--local-rank"):  # the paper's launch options: no effect here
        g.add_argument(name, default=None, help=argparse.SUPPRESS)
    return p


def fill_paper_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` whose options left unset have the value of the paper's trainer of this kind
    (KD or baseline)."""
    paper = PAPER_TRAINERS["kd" if args.teacher_model else "baseline"]
    return argparse.Namespace(**{**vars(args), **{k: v for k, v in paper.items() if getattr(args, k) is None}})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of ``argv`` (defaults < YAML < command line), with the paper's defaults filled in and
    ``--save-dir`` turned into ``--output`` / ``--experiment``."""
    parser = get_args_parser()
    args = fill_paper_defaults(parse_with_config(parser, argv))
    args.kd_loss_kwargs = kd_options(parser, args.kd_loss_kwargs)
    if args.kd_temperature is not None:  # the paper's option: the method's tau
        if args.kd_loss_kwargs.get("tau", args.kd_temperature) != args.kd_temperature:
            raise UserError(f"--kd-temperature {args.kd_temperature} contradicts --kd-loss-kwargs "
                            f"tau={args.kd_loss_kwargs['tau']}: give one of them")
        args.kd_loss_kwargs["tau"] = args.kd_temperature
    if args.teacher_model and not args.kd:
        args.kd = DEFAULT_KD
    if args.save_dir:
        save_dir = Path(args.save_dir)
        args.output, args.experiment = str(save_dir.parent), save_dir.name
    return args


def option_order() -> tuple[str, ...]:
    """The trainer's option names in the parser's order (that of ``vars`` of the parsed options)."""
    return tuple(dict.fromkeys(a.dest for a in get_args_parser()._actions if a.dest != "help"))


def load_config(argv: Sequence[str] | None = None) -> SegConfig:
    """The run configuration of ``argv`` (:func:`parse_args`, then :meth:`SegConfig.parsed`)."""
    return SegConfig.parsed(parse_args(argv), option_order())
