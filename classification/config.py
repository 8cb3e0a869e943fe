"""Command-line options of the trainer (the paper's names) and YAML configs.

Precedence: built-in defaults < YAML file given with ``-c`` < the command line. A YAML key that is
not an option is an error naming the key; keys may be written with dashes or underscores.
"""
from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from distkd.errors import UserError


def _kv_pairs(values: Sequence[str] | dict | None) -> dict[str, Any]:
    """``['beta=2', 'tau=4']`` -> ``{'beta': 2.0, 'tau': 4.0}`` (values parsed as YAML scalars)."""
    if values is None:
        return {}
    if isinstance(values, dict):
        return dict(values)
    out = {}
    for item in values:
        if "=" not in item:
            raise UserError(f"--kd-loss-kwargs takes key=value pairs, got '{item}'")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_parser(for_test: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Evaluate a classification checkpoint" if for_test else "Train a classifier, with or without KD",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-c", "--config", default=None, help="YAML file of option defaults (CLI wins)")
    p.add_argument("--model", default=None, help="student model name (tv_*, timm_*, cifar_*, mobilenet_v1)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", choices=["imagenet", "cifar100", "cifar10", "digits", "folder"])
    g.add_argument("--data-path", default=None, help="dataset root (not needed for digits)")
    g.add_argument("--image-size", type=int, default=None, help="train/eval input size (dataset default)")
    g.add_argument("-b", "--batch-size", type=int, default=64, help="batch size per GPU/process")
    g.add_argument("-j", "--workers", type=int, default=4, help="data-loading workers per process")
    g.add_argument("--aa", default=None, help="timm auto-augment policy, e.g. rand-m9-mstd0.5")
    g.add_argument("--reprob", type=float, default=0.0, help="random erasing probability")
    g.add_argument("--remode", default="pixel", help="random erasing mode")
    g.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0 = off)")
    g.add_argument("--cutmix", type=float, default=0.0, help="cutmix alpha (0 = off)")
    g.add_argument("--smoothing", type=float, default=0.0, help="label smoothing")
    g.add_argument("--interpolation", default="bilinear", help="resize interpolation")
    g.add_argument("--crop-pct", type=float, default=0.875, help="eval center-crop fraction (ImageNet)")
    g.add_argument("--skip-bad-images", action=argparse.BooleanOptionalAction, default=False,
                   help="skip (and count) unreadable images instead of stopping")
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    g.add_argument("--amp", action="store_true", help="mixed precision (autocast)")
    g.add_argument("--amp-dtype", default="auto", choices=["auto", "bfloat16", "float16"],
                   help="autocast dtype; auto = bf16 where supported, else fp16 with GradScaler")
    g.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    g.add_argument("--compile", action="store_true", help="torch.compile the student")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--deterministic", action="store_true", help="deterministic algorithms (slower)")
    g.add_argument("--drop", type=float, default=0.0, help="dropout before the classifier (timm models)")
    _add_setup_options(p, for_test)
    if for_test:
        p.add_argument("--ckpt", required=True, help="checkpoint to evaluate (last.pth / best.pth / state_dict)")
        p.add_argument("--ema", action="store_true", help="evaluate the EMA weights of the checkpoint")
        return p

    g = p.add_argument_group("experiment")
    g.add_argument("--experiment", default=None, help="experiment name (folder under --output)")
    g.add_argument("--output", default="experiments", help="root folder of experiments")
    g.add_argument("--resume", default=None, help="'auto' (the experiment's last.pth) or a checkpoint path")
    g.add_argument("--overwrite", action="store_true", help="start over in an experiment that has checkpoints")
    g.add_argument("--log-interval", type=int, default=50, help="iterations between log lines")
    g.add_argument("--max-iters-per-epoch", type=int, default=0, help="cap iterations per epoch (debug)")
    g.add_argument("--stop-after-epochs", type=int, default=0,
                   help="leave after this many epochs of this run (for time-limited jobs; continue with --resume)")
    g = p.add_argument_group("optimization")
    g.add_argument("--epochs", type=int, default=100)
    g.add_argument("--opt", default="sgd", choices=["sgd", "rmsproptf", "adamw"])
    g.add_argument("--lr", type=float, default=0.1)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--opt-eps", type=float, default=None, help="optimizer epsilon (rmsproptf: 1e-3)")
    g.add_argument("--opt-no-filter", action="store_true", help="apply weight decay to biases and norms too")
    g.add_argument("--clip-grad", type=float, default=None, help="clip gradient norm")
    g.add_argument("--sched", default="step", choices=["step", "cosine"])
    g.add_argument("--decay-epochs", type=float, default=30, help="step: epochs between decays")
    g.add_argument("--decay-rate", type=float, default=0.1, help="step: factor per decay")
    g.add_argument("--decay-by-epoch", action=argparse.BooleanOptionalAction, default=True,
                   help="update the lr once per epoch (else every iteration)")
    g.add_argument("--warmup-epochs", type=float, default=0)
    g.add_argument("--warmup-lr", type=float, default=1e-6)
    g.add_argument("--min-lr", type=float, default=1e-5)
    g.add_argument("--model-ema", action="store_true",
                   help="keep an EMA of the weights (timm); it is validated too and ranks best.pth")
    g.add_argument("--model-ema-decay", type=float, default=0.9999)
    g = p.add_argument_group("distillation")
    g.add_argument("--kd", default=None, help="kd, kdtN, dist, dist_tN or mse; absent = no KD")
    g.add_argument("--teacher-model", default=None)
    g.add_argument("--teacher-ckpt", default=None, help="teacher weights (state_dict, or under state_dict/model)")
    g.add_argument("--teacher-pretrained", dest="teacher_pretrained", action="store_true", default=True,
                   help="without --teacher-ckpt, torchvision/timm weights (downloaded on first use unless --offline)")
    g.add_argument("--teacher-no-pretrained", dest="teacher_pretrained", action="store_false",
                   help="random teacher (debugging only)")
    g.add_argument("--ori-loss-weight", type=float, default=1.0)
    g.add_argument("--kd-loss-weight", type=float, default=1.0)
    g.add_argument("--kd-loss-kwargs", nargs="*", default=None, help="extra KD loss arguments, key=value")
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


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: '{path}'")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise UserError(f"YAML syntax error in '{path}'{where}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"config '{path}' must be a mapping of option: value, got {type(data).__name__}")
    return data


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions if a.dest != "help"}


def _yaml_defaults(parser: argparse.ArgumentParser, data: dict[str, Any], path: str) -> dict[str, Any]:
    """YAML keys as option defaults. Keys are checked against the training options, so that
    ``tools/test.py`` accepts a training config and ignores its training-only keys."""
    dests = _dests(build_parser(for_test=False)) | _dests(parser)
    used = _dests(parser)
    out = {}
    for key, value in data.items():
        dest = str(key).replace("-", "_")
        if dest not in dests or dest == "config":
            close = difflib.get_close_matches(dest, sorted(dests), n=3)
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            raise UserError(f"unknown key '{key}' in config '{path}'{hint}")
        if dest in used:
            out[dest] = value
    return out


def parse_args(argv: Sequence[str] | None = None, for_test: bool = False) -> argparse.Namespace:
    """Parse ``argv``: defaults < YAML (``-c``) < command line."""
    parser = build_parser(for_test)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("-c", "--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config:
        parser.set_defaults(**_yaml_defaults(parser, load_yaml(known.config), known.config))
    args = parser.parse_args(argv)
    for action in parser._actions:  # argparse does not check YAML-given defaults against choices
        value = getattr(args, action.dest, None)
        if action.choices is not None and value is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UserError(f"invalid value '{value}' for '{action.dest}' in config: choose from {choices}")
    if not for_test:
        args.kd_loss_kwargs = _kv_pairs(args.kd_loss_kwargs)
    return args
