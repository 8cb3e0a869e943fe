"""Learning-rate schedule of the paper's classification code: warmup, then step, cosine or linear.

For ``t`` in epochs (fractional: the lr is set every iteration), ``w`` warmup epochs:

    t <  w:  lr(t) = warmup_lr + (lr - warmup_lr) * floor(t) / w      (a per-epoch staircase)
    step:    lr(t) = lr * decay_rate ** floor((t - w) / decay_epochs)  (per iteration, no floor)
    cosine:  lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * (t - w) / (epochs - w))) / 2
    linear:  lr(t) = lr * (epochs - t) / (epochs - w)

as the original's ``GradualWarmupScheduler``: warmup holds each epoch at one lr whatever
``decay_by_epoch``; ``decay_by_epoch`` (``by_epoch``) rounds ``t`` down to whole epochs for cosine
and linear only (the original forces per-iteration updates for step); ``min_lr`` is cosine's floor.

Decay counts from the end of warmup: the CIFAR recipe (warmup 120 epochs at warmup_lr = lr = 0.05,
decay every 30 epochs) holds 0.05 for 150 epochs and decays at 150, 180 and 210. timm's step
scheduler counts decays from epoch 0, which would drop the lr 10^4-fold at epoch 120; hence this
small class. The schedule is a pure function of ``t``: nothing to save for resume.
"""
from __future__ import annotations

import math

from torch.optim import Optimizer


class LRSchedule:
    def __init__(
        self,
        lr: float,
        epochs: int,
        sched: str = "step",
        warmup_epochs: float = 0.0,
        warmup_lr: float = 1e-6,
        decay_epochs: float = 30.0,
        decay_rate: float | None = 0.1,
        min_lr: float = 0.0,
        by_epoch: bool = False,
    ) -> None:
        if sched not in ("step", "cosine", "linear"):
            raise ValueError(f"unknown schedule '{sched}' (step, cosine or linear)")
        if sched == "step" and decay_rate is None:
            raise ValueError("the step schedule needs a decay rate (--decay-rate)")
        self.lr, self.epochs, self.sched = lr, epochs, sched
        self.warmup_epochs, self.warmup_lr = warmup_epochs, warmup_lr
        self.decay_epochs, self.decay_rate, self.min_lr = decay_epochs, decay_rate, min_lr
        self.by_epoch = by_epoch

    def lr_at(self, t: float) -> float:
        w = self.warmup_epochs
        if t < w:
            return self.warmup_lr + (self.lr - self.warmup_lr) * math.floor(t) / w
        if self.sched == "step":
            return self.lr * self.decay_rate ** math.floor((t - w) / self.decay_epochs)
        if self.by_epoch:
            t = math.floor(t)
        progress = min(1.0, max(0.0, (t - w) / max(1e-12, self.epochs - w)))
        if self.sched == "linear":
            return self.lr * (1 - progress)
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2

    def apply(self, optimizer: Optimizer, t: float) -> float:
        lr = self.lr_at(t)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
