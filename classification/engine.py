"""One training epoch and one evaluation pass."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from classification.accumulation import MicroSteps
from classification.scheduler import LRSchedule
from distkd.context import Batch, BatchContext
from distkd.errors import UserError
from distkd.step import StepPolicy, autocast, due
from distkd.utils.distributed import all_reduce_sum
from distkd.utils.nonfinite import NonFiniteWatch
from distkd_cli.callbacks import Callbacks, StepState, never
from distkd_cli.progress import Throughput


@dataclass
class StepConfig(StepPolicy):
    """What a training step needs besides the model and the batch: the step policy (device, autocast
    dtype, scaler, clipping, accumulation, seed, rank: :class:`distkd.step.StepPolicy`) and the rest."""

    channels_last: bool = False
    mixup_fn: Callable | None = None
    ema: nn.Module | None = None
    ema_target: nn.Module | None = None
    log_interval: int = 50
    max_iters: int = 0
    show_progress: bool = True
    epochs: int = 0  # of the whole run: the KD methods' progress, the time left in the log lines
    world_size: int = 1
    callbacks: Callbacks = field(default_factory=Callbacks)
    stop_requested: Callable[[], bool] = never  # a pre-emption signal arrived (the callbacks' StepState)


@dataclass
class EpochProgress:
    """Where an epoch stands: iterations done, the running loss sums and the time spent. A mid-epoch
    checkpoint stores it (:meth:`state`), so that a resumed epoch reports the same means."""

    iteration: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    elapsed: float = 0.0

    def state(self) -> dict:
        return {"iteration": self.iteration, "sums": {k: v.detach().cpu() for k, v in self.sums.items()},
                "elapsed": self.elapsed}

    @classmethod
    def from_state(cls, state: dict, device: torch.device) -> EpochProgress:
        return cls(int(state["iteration"]), {k: v.to(device) for k, v in state["sums"].items()},
                   float(state["elapsed"]))


def to_device(images: torch.Tensor, cfg: StepConfig) -> torch.Tensor:
    images = images.to(cfg.device, non_blocking=True)
    if cfg.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def stop_if_nonfinite(watch: NonFiniteWatch, epoch: int) -> None:
    if (bad := watch.first()) is not None:
        step, values = bad
        parts = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        raise UserError(
            f"non-finite loss at epoch {epoch} iteration {step} ({parts}); training stopped, the last good "
            "checkpoint is kept: lower --lr, check the data, or resume with --resume auto"
        )


def log_line(logger: logging.Logger, bar: tqdm, meter: Throughput, epoch: int, i: int, iters: int, lr: float,
             sums: dict[str, torch.Tensor], epochs: int) -> None:
    """The means of the epoch's losses so far, on the progress bar and in the log."""
    means = {k: (v / (i + 1)).item() for k, v in sums.items()}
    bar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{lr:.3g}", img_s=f"{meter.images_per_second() or 0:.0f}")
    left = iters - i - 1
    speed = meter.text(left, left + max(0, epochs - epoch - 1) * iters if epochs else None)
    logger.info(f"epoch {epoch} [{i + 1}/{iters}] lr {lr:.4g} "
                + " ".join(f"{k} {v:.4f}" for k, v in means.items()) + (f" | {speed}" if speed else ""))


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    epoch: int,
    cfg: StepConfig,
    logger: logging.Logger,
    progress: EpochProgress | None = None,
    after_step: Callable[[EpochProgress, int, Callable[[], None]], None] | None = None,
) -> dict[str, float]:
    """Train for one epoch (from ``progress.iteration`` when resumed mid-epoch); returns the mean of
    each named loss, the total and the last lr. The loader yields the epoch's remaining batches.

    Each step first seeds the global generators from ``(seed, epoch, iteration, rank)``: mixup /
    cutmix and dropout do not depend on what ran before (data loading in this process, a resume).
    With ``cfg.accum_steps`` K > 1 a step (iteration) takes K micro-batches from the loader, micro-batch
    ``k`` seeded with the rank ``rank * K + k`` of the GPU it plays (:mod:`classification.accumulation`).
    ``after_step(progress, iterations, check_finite)`` runs after each step (checkpoints, pre-emption);
    ``check_finite()`` raises if a step so far had a non-finite loss (call it before saving).
    ``cfg.callbacks`` see each step start (and micro-batch) and end (:mod:`distkd_cli.callbacks`)."""
    model.train()
    progress = progress or EpochProgress()
    accum = cfg.accum_steps
    micro = MicroSteps(model, accum)
    iters = getattr(getattr(loader, "batch_sampler", None), "epoch_iterations", None) or len(loader) // accum
    iters = min(iters, cfg.max_iters) if cfg.max_iters else iters
    sums = progress.sums
    watch = NonFiniteWatch()
    lr = schedule.lr_at(epoch)
    bar = tqdm(total=iters, initial=progress.iteration, desc=f"epoch {epoch}",
               disable=None if cfg.show_progress else True, leave=False)
    start = time.time() - progress.elapsed
    meter = Throughput(cfg.world_size)  # img/s and time left in the log lines
    for m, batch in enumerate(loader, start=progress.iteration * accum):
        i, k = divmod(m, accum)  # optimizer step i, its micro-batch k
        if i >= iters:
            break
        cfg.callbacks.on_step_start(StepState(epoch, i, cfg.rank, k, stop_requested=cfg.stop_requested))
        if k == 0:
            lr = schedule.apply(optimizer, epoch + i / iters)
            optimizer.zero_grad(set_to_none=True)
        cfg.seed_step(epoch, i, k)  # seeded as the rank of the GPU it plays
        batch = Batch(*batch)  # images, targets (and, from a teacher store, the teacher's outputs)
        images, targets = to_device(batch.images, cfg), batch.targets.to(cfg.device, non_blocking=True)
        if cfg.mixup_fn is not None:
            images, targets = cfg.mixup_fn(images, targets)
        ctx = BatchContext(epoch=epoch, progress=(epoch + i / iters) / cfg.epochs if cfg.epochs else 0.0,
                           teacher_outputs=batch.teacher_outputs)
        with micro.context(k):  # no DDP sync before the last micro-batch; BatchNorm statistics of the first
            with cfg.autocast():
                losses = model(images, targets, ctx)
            loss = sum(losses.values())
            cfg.backward(loss)  # of loss / K with K micro-batches: DDP's mean over the GPUs, of which K are here
        watch.update(i, losses)  # no host sync here: checked at the logging points below
        if k == 0:  # as a DDP run logs GPU 0's losses: those of micro-batch 0
            for name, value in {"loss": loss, **losses}.items():
                sums[name] = sums.get(name, 0) + value.detach().float()
        if k < accum - 1:
            continue
        cfg.step(optimizer, model.parameters())
        if cfg.ema is not None:
            cfg.ema.update(cfg.ema_target)
        bar.update(1)
        meter.step(len(images) * accum)  # the images of the step's micro-batches
        if due(i + 1, cfg.log_interval, iters):
            stop_if_nonfinite(watch, epoch)
            log_line(logger, bar, meter, epoch, i, iters, lr, sums, cfg.epochs)
        progress.iteration, progress.elapsed = i + 1, time.time() - start
        cfg.callbacks.on_step_end(StepState(epoch, i + 1, cfg.rank, losses=losses, stop_requested=cfg.stop_requested))
        if after_step is not None:  # it checks the losses (one host sync) before any checkpoint it writes
            after_step(progress, iters, lambda: stop_if_nonfinite(watch, epoch))
    bar.close()
    stop_if_nonfinite(watch, epoch)
    out = {k: (v / max(1, progress.iteration)).item() for k, v in sums.items()}
    out.update(lr=lr, epoch_time=time.time() - start)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, loader, cfg: StepConfig) -> dict[str, float]:
    """Top-1 / top-5 accuracy (%) and cross-entropy over the whole split, summed across ranks."""
    model.eval()
    stats = torch.zeros(4, dtype=torch.float64, device=cfg.device)  # correct1, correct5, loss sum, count
    for images, targets in loader:
        images, targets = to_device(images, cfg), targets.to(cfg.device, non_blocking=True)
        with autocast(cfg.device, cfg.amp_dtype):
            logits = model(images)
        logits = logits.float()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(targets[:, None])
        stats += torch.stack([
            hits[:, 0].sum(), hits.any(1).sum(),
            nn.functional.cross_entropy(logits, targets, reduction="sum"),
            torch.tensor(len(targets), device=cfg.device),
        ]).to(stats)
    all_reduce_sum(stats)
    count = max(1.0, stats[3].item())
    return {"top1": 100 * stats[0].item() / count, "top5": 100 * stats[1].item() / count,
            "loss": stats[2].item() / count}
