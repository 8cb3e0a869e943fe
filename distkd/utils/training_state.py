"""The training checkpoint of both trainers (``last.pth`` / ``best.pth``) and resuming from it.

One format, tensors and plain containers only (``weights_only`` loads read it back)::

    model      the student's state_dict (what --teacher-ckpt and the test tools read)
    optimizer  the optimizer's state_dict
    position   where the schedule stands: epoch-based {"epoch": next epoch, "iteration": iterations
               done in it, plus that epoch's running sums}; iteration-based {"iteration": done}
    best       {"metric": name, "value": best score so far, "at": its epoch or iteration}
    args       the run's options
    rng        the random generators of the rank that saved (rank 0)
    scaler, model_ema, kd_loss (trainable KD parts)   when the run has them
    ...        the trainer's extras (segmentation: input_format)
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from distkd.errors import UserError
from distkd.utils.checkpoint import load_state_dict_strict, safe_load
from distkd.utils.rng import rng_state, set_rng_state

REQUIRED = ("model", "optimizer", "position")


def training_state(trainable: nn.ModuleDict, optimizer: torch.optim.Optimizer, position: Mapping[str, Any],
                   best: Mapping[str, Any], args: Mapping[str, Any], scaler: torch.amp.GradScaler | None = None,
                   ema: nn.Module | None = None, **extra: Any) -> dict[str, Any]:
    """The checkpoint dict; ``trainable`` is :meth:`Distiller.trainable_modules` (student first)."""
    state = {"model": trainable["student"].state_dict(), "optimizer": optimizer.state_dict(),
             "position": dict(position), "best": dict(best), "args": dict(args), "rng": rng_state()}
    state.update({name: module.state_dict() for name, module in trainable.items() if name != "student"})
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    if ema is not None:
        state["model_ema"] = ema.state_dict()
    return {**state, **extra}


def restore_training_state(path: str | os.PathLike, trainable: nn.ModuleDict, optimizer: torch.optim.Optimizer,
                           scaler: torch.amp.GradScaler | None = None, ema: nn.Module | None = None) -> dict[str, Any]:
    """Load a :func:`training_state` file into the run's objects and RNGs; returns the whole
    checkpoint (the trainer reads ``position``, ``best`` and its extras)."""
    ckpt = safe_load(path, "resume checkpoint")
    if not isinstance(ckpt, dict) or not all(key in ckpt for key in REQUIRED):
        have = ", ".join(sorted(map(str, ckpt))[:6]) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f"--resume '{path}' is not a training checkpoint of distkd (it needs {', '.join(REQUIRED)}; "
                        f"it has {have}); to start from its weights, start a new run from them")
    what = f"resume checkpoint '{path}'"
    load_state_dict_strict(trainable["student"], ckpt["model"], what)
    for name, module in trainable.items():
        if name != "student" and name in ckpt:
            module.load_state_dict(ckpt[name])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scaler is not None and "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])
    if ema is not None and "model_ema" in ckpt:
        ema.load_state_dict(ckpt["model_ema"])
    if "rng" in ckpt:
        set_rng_state(ckpt["rng"])
    return ckpt
