"""Gradient accumulation that reproduces a run on more GPUs: ``--grad-accum-steps K`` / ``--emulate-gpus N``.

An optimizer step of P processes with K accumulation steps is the step of an N = P * K GPU run:
micro-batch ``k`` of process ``r`` plays GPU ``r * K + k`` (its *virtual rank*). It gets

- that GPU's images and per-sample augmentation seeds (the batch sampler hands out virtual-rank
  shards: :class:`~distkd.utils.sampling.SeededBatchSampler` with ``accum_steps=K``);
- that GPU's per-step seed, ``step_seed(seed, epoch, step, r * K + k)`` (mixup / cutmix, dropout);
- its own forward and backward: BatchNorm batch statistics and the KD loss over that GPU's images;
- ``1 / K`` of its loss in the backward, so that the accumulated gradient, averaged by DDP over the
  P processes on the last micro-batch (the others run under ``no_sync``), is the mean over the N
  GPUs that DDP computes in the N-GPU run.

BatchNorm running statistics: DDP broadcasts rank 0's buffers at every forward, so an N-GPU run
keeps (and checkpoints) rank 0's, the running average over GPU 0's batches. :class:`MicroSteps`
keeps the running statistics of micro-batch 0 only (restoring the buffers after the forwards of
the others), so process 0 holds GPU 0's. The trainer logs, as in a DDP run, GPU 0's losses.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from distkd.errors import UserError
from distkd.utils.distributed import emulated_steps

ROOT = Path(__file__).resolve().parents[1]


def resolve_accumulation(steps: int | None, gpus: int | None, world_size: int, teacher_store: bool = False) -> int:
    """The accumulation steps K of this run from ``--grad-accum-steps`` (``steps``) / ``--emulate-gpus``
    (``gpus``) and the number of processes; one-line errors for bad input."""
    if steps is not None and steps <= 0:
        raise UserError(f"--grad-accum-steps must be a positive integer, got {steps}")
    if gpus is not None and gpus <= 0:
        raise UserError(f"--emulate-gpus must be a positive integer, got {gpus}")
    if (steps or 1) > 1 or gpus is not None:
        if teacher_store:
            flag = "--emulate-gpus" if gpus is not None else "--grad-accum-steps"
            raise UserError(f"{flag} cannot be combined with --teacher-store (its replay loader hands out "
                            "one batch per step): drop one of the two")
    if gpus is None:
        return steps or 1
    k = emulated_steps(gpus, world_size)
    if steps is not None and steps != k:
        raise UserError(f"--grad-accum-steps {steps} and --emulate-gpus {gpus} disagree: {gpus} GPUs on "
                        f"{world_size} process(es) take {k} accumulation steps; give one of the two")
    return k


def paper_gpus(config: str | None) -> int | None:
    """The number of GPUs of the paper's run that a bundled config (``-c``) describes, else None."""
    if not config:
        return None
    from distkd_cli.recipes import RECIPES

    path = Path(config).resolve()
    for recipe in RECIPES.values():
        for name in (recipe.baseline, recipe.kd[0], recipe.dist[0]):
            if recipe.gpus > 1 and (ROOT / name).resolve() == path:
                return recipe.gpus
    return None


def fewer_gpus_warning(config: str | None, emulate_gpus: int | None, accum_steps: int, batch_size: int,
                       world_size: int) -> str | None:
    """One line when a bundled paper config (``-c config``) runs on fewer (emulated) GPUs than the paper's."""
    gpus = paper_gpus(config)
    if gpus is None or emulate_gpus is not None or world_size * accum_steps >= gpus:
        return None
    here = world_size * accum_steps
    return (f"{config} is the paper's {gpus}-GPU recipe ({gpus} x {batch_size} images per step); this run "
            f"has {here} ({here * batch_size} images per step, BatchNorm and KD over {batch_size}): "
            f"add --emulate-gpus {gpus} to train step by step as the paper's {gpus} GPUs")


class MicroSteps:
    """The context of micro-batch ``k`` of a step (:meth:`context`): DDP's ``no_sync`` on all but the
    last one; for ``k > 0`` the buffers of ``model``'s trainable parts restored after it (BatchNorm
    running statistics: those of micro-batch 0 only, see the module docstring)."""

    def __init__(self, model: nn.Module, steps: int) -> None:
        self.model, self.steps = model, steps
        trainable = model.trainable_modules() if hasattr(model, "trainable_modules") else model
        self.buffers = list(trainable.buffers())

    def context(self, k: int) -> contextlib.AbstractContextManager:
        if self.steps == 1:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        if k < self.steps - 1 and hasattr(self.model, "no_sync"):
            stack.enter_context(self.model.no_sync())
        if k > 0 and self.buffers:
            stack.enter_context(self._keep_buffers())
        return stack

    @contextlib.contextmanager
    def _keep_buffers(self) -> Iterator[None]:
        saved = [b.detach().clone() for b in self.buffers]
        yield
        with torch.no_grad():
            for buffer, value in zip(self.buffers, saved):
                buffer.copy_(value)
