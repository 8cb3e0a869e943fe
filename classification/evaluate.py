"""Evaluate a checkpoint on a validation split (``tools/test.py`` calls :func:`main`)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from classification.builders import amp_dtype
from classification.config import parse_args
from classification.data.loaders import build_val_loader
from classification.engine import StepConfig, evaluate
from classification.models import build_model
from classification.options import DataOptions, RuntimeOptions
from distkd.errors import UserError
from distkd.utils.checkpoint import check_checkpoint_file, extract_state_dict, load_state_dict_strict, safe_load
from distkd.utils.distributed import cleanup_distributed, init_distributed


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv, for_test=True)
    if not args.model:
        raise UserError("no model: pass --model NAME")
    check_checkpoint_file(args.ckpt, "checkpoint")  # before the data is read
    data, runtime = DataOptions.parsed(args), RuntimeOptions.parsed(args)
    dist = init_distributed(runtime.device)
    try:
        val_loader, num_classes = build_val_loader(data, dist, runtime.channels_last)
        model = build_model(args.model, num_classes).to(dist.device)
        ckpt = safe_load(args.ckpt, "checkpoint")
        if args.ema:
            if not isinstance(ckpt, dict) or "model_ema" not in ckpt:
                raise UserError(f"checkpoint '{args.ckpt}' holds no EMA weights (trained without --model-ema)")
            ckpt = ckpt["model_ema"]
        what = f"checkpoint '{args.ckpt}'"
        load_state_dict_strict(model, extract_state_dict(ckpt, what), what)
        if runtime.channels_last:
            model.to(memory_format=torch.channels_last)
        cfg = StepConfig(dist.device, amp_dtype(runtime, dist.device), channels_last=runtime.channels_last)
        stats = evaluate(model, val_loader, cfg)
        if dist.is_main:
            print(f"{args.model} {args.ckpt}: top-1 {stats['top1']:.2f} top-5 {stats['top5']:.2f} "
                  f"loss {stats['loss']:.4f} ({len(val_loader.dataset)} images)")
        return stats
    finally:
        cleanup_distributed()
