"""Training state for full resume: model, optimizer, AMP scaler, iteration, best mIoU and RNG, and
the input format the model is trained with (``input_format``; evaluation reads it back).

Everything is stored as tensors and plain containers, so :func:`distkd.utils.checkpoint.safe_load`
(``weights_only=True``) reads it back. RNG states are those of the rank that saves (rank 0).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from distkd.errors import UserError
from distkd.utils.checkpoint import atomic_save, load_state_dict_strict, safe_load
from distkd.utils.rng import rng_state, set_rng_state


def save_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    iteration: int,
    best_miou: float,
    args: dict[str, Any],
) -> None:
    """Write the training state atomically (a crash leaves the previous file intact)."""
    atomic_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "iteration": iteration,
            "best_miou": best_miou,
            "rng": rng_state(),
            "args": args,
            "input_format": args.get("input_format"),
        },
        path,
    )


def load_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    input_format: str | None = None,
) -> tuple[int, float]:
    """Restore a :func:`save_state` file; returns ``(iteration, best_miou)``.

    ``input_format``: the run's; a checkpoint recorded with another one is refused."""
    state = safe_load(path, "resume checkpoint")
    if not isinstance(state, dict) or not {"model", "optimizer", "iteration"} <= state.keys():
        raise UserError(f"'{path}' is not a training checkpoint of tools/train_seg.py (no optimizer/iteration)")
    recorded = state.get("input_format")
    if input_format is not None and recorded not in (None, input_format):
        raise UserError(
            f"resume checkpoint '{path}' was trained with --input-format {recorded}, this run has {input_format}: "
            f"pass --input-format {recorded}"
        )
    load_state_dict_strict(model, state["model"], f"resume checkpoint '{path}'")
    optimizer.load_state_dict(state["optimizer"])
    if "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    if "rng" in state:
        set_rng_state(state["rng"])
    return int(state["iteration"]), float(state.get("best_miou", -1.0))
