"""One training epoch and one evaluation pass."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from classification.scheduler import LRSchedule
from distkd.errors import UserError
from distkd.utils.distributed import all_reduce_sum


@dataclass
class StepConfig:
    """What a training step needs besides the model and the batch."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    scaler: torch.amp.GradScaler | None = None
    clip_grad: float | None = None
    mixup_fn: Callable | None = None
    ema: nn.Module | None = None
    ema_target: nn.Module | None = None
    log_interval: int = 50
    max_iters: int = 0
    show_progress: bool = True


def to_device(images: torch.Tensor, cfg: StepConfig) -> torch.Tensor:
    images = images.to(cfg.device, non_blocking=True)
    if cfg.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    epoch: int,
    cfg: StepConfig,
    logger: logging.Logger,
) -> dict[str, float]:
    """Train for one epoch; returns the mean of each named loss, the total and the last lr."""
    model.train()
    iters = len(loader) if not cfg.max_iters else min(len(loader), cfg.max_iters)
    sums: dict[str, torch.Tensor] = {}
    lr = schedule.lr_at(epoch)
    bar = tqdm(total=iters, desc=f"epoch {epoch}", disable=None if cfg.show_progress else True, leave=False)
    start = time.time()
    for i, batch in enumerate(loader):
        if i >= iters:
            break
        images, targets = batch[0], batch[1]
        extra = {}
        if len(batch) > 2:  # --teacher-store: the batch carries the stored teacher logits
            extra["teacher_logits"] = batch[2].to(cfg.device, non_blocking=True)
        lr = schedule.apply(optimizer, epoch + i / iters)
        images, targets = to_device(images, cfg), targets.to(cfg.device, non_blocking=True)
        if cfg.mixup_fn is not None:
            images, targets = cfg.mixup_fn(images, targets)
        with torch.autocast(cfg.device.type, dtype=cfg.amp_dtype or torch.float32, enabled=cfg.amp_dtype is not None):
            losses = model(images, targets, **extra)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            parts = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise UserError(
                f"non-finite loss at epoch {epoch} iteration {i} ({parts}); training stopped, the last good "
                "checkpoint is kept: lower --lr, check the data, or resume with --resume auto"
            )
        optimizer.zero_grad(set_to_none=True)
        if cfg.scaler is not None:
            cfg.scaler.scale(loss).backward()
            if cfg.clip_grad:
                cfg.scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            cfg.scaler.step(optimizer)
            cfg.scaler.update()
        else:
            loss.backward()
            if cfg.clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
        if cfg.ema is not None:
            cfg.ema.update(cfg.ema_target)
        for name, value in {"loss": loss, **losses}.items():
            sums[name] = sums.get(name, 0) + value.detach().float()
        bar.update(1)
        if (i + 1) % cfg.log_interval == 0 or i + 1 == iters:
            means = {k: (v / (i + 1)).item() for k, v in sums.items()}
            bar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{lr:.3g}")
            logger.info(f"epoch {epoch} [{i + 1}/{iters}] lr {lr:.4g} "
                        + " ".join(f"{k} {v:.4f}" for k, v in means.items()))
    bar.close()
    done = min(iters, i + 1) if iters else 0
    out = {k: (v / max(1, done)).item() for k, v in sums.items()}
    out.update(lr=lr, epoch_time=time.time() - start)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, loader, cfg: StepConfig) -> dict[str, float]:
    """Top-1 / top-5 accuracy (%) and cross-entropy over the whole split, summed across ranks."""
    model.eval()
    stats = torch.zeros(4, dtype=torch.float64, device=cfg.device)  # correct1, correct5, loss sum, count
    for images, targets in loader:
        images, targets = to_device(images, cfg), targets.to(cfg.device, non_blocking=True)
        with torch.autocast(cfg.device.type, dtype=cfg.amp_dtype or torch.float32, enabled=cfg.amp_dtype is not None):
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
