"""The training-step policy of both trainers (each keeps its own loop: load, forward, losses, step, log):
mixed precision from one option (``--amp --amp-dtype auto|bfloat16|float16``, auto: bfloat16 unless the CUDA
device lacks it; a GradScaler for float16 on CUDA only), the optimizer step (backward of ``loss / K`` for K
accumulated micro-batches, clipping, the scaler), per-step seeding and when something is due."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from distkd.utils.rng import seed_everything
from distkd.utils.sampling import step_seed


def amp_dtype(amp: bool, choice: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--amp --amp-dtype CHOICE``; None: float32."""
    if not amp:
        return None
    if choice == "float16" or (choice == "auto" and device.type == "cuda" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def grad_scaler(dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler | None:
    return torch.amp.GradScaler(device.type) if dtype == torch.float16 and device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def due(done: int, every: int, last: int | None = None) -> bool:
    """After ``done`` steps: every ``every`` steps (0: never) and after the ``last``."""
    return bool(every) and done % every == 0 or done == last


@dataclass
class StepPolicy:
    """How a step runs: autocast dtype, scaler, clipping, accumulation (``accum_steps`` micro-batches per
    optimizer step, micro-batch ``k`` of ``rank`` seeded as the rank ``rank * K + k`` it plays)."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    clip_grad: float | None = None
    accum_steps: int = 1
    seed: int = 0
    rank: int = 0

    def autocast(self) -> torch.autocast:
        return autocast(self.device, self.amp_dtype)

    def seed_step(self, epoch: int, step: int, micro: int = 0) -> None:
        seed_everything(step_seed(self.seed, epoch, step, self.rank * self.accum_steps + micro))

    def backward(self, loss: Tensor) -> None:
        share = loss if self.accum_steps == 1 else loss / self.accum_steps  # DDP's mean over K GPUs played here
        (self.scaler.scale(share) if self.scaler is not None else share).backward()

    def step(self, optimizer: torch.optim.Optimizer, parameters: Iterable[nn.Parameter]) -> None:
        """Clip (unscaled) gradients, step, update the scaler."""
        if self.clip_grad and self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if self.clip_grad:
            nn.utils.clip_grad_norm_(parameters, self.clip_grad)
        if self.scaler is None:
            return optimizer.step()
        self.scaler.step(optimizer)
        self.scaler.update()
