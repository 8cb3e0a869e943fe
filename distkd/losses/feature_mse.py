"""Feature imitation: MSE between the last-stage feature maps, student side through a 1x1 aligner.

    L = mean( (BN(conv1x1(f_s)) - f_t)^2 )

The aligner is created lazily on the first call (its channel counts come from the features), so the
loss can be built before the networks are known; call it once on a batch before building the
optimizer (the :class:`~distkd.distiller.Distiller` does this).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class FeatureMSE(nn.Module):
    inputs = "features"

    def __init__(self) -> None:
        super().__init__()
        self.aligner: nn.Module | None = None

    def build_aligner(self, c_s: int, c_t: int) -> None:
        self.aligner = nn.Sequential(nn.Conv2d(c_s, c_t, 1, bias=False), nn.BatchNorm2d(c_t))

    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        if f_s.dim() != 4 or f_t.dim() != 4:
            raise ValueError(f"mse KD needs 4-D feature maps, got {tuple(f_s.shape)} and {tuple(f_t.shape)}")
        if self.aligner is None:
            self.build_aligner(f_s.shape[1], f_t.shape[1])
            self.aligner.to(f_s.device)
        f_s = self.aligner(f_s)
        if f_s.shape[-2:] != f_t.shape[-2:]:
            f_s = F.interpolate(f_s, size=f_t.shape[-2:], mode="bilinear", align_corners=False)
        return F.mse_loss(f_s.float(), f_t.float())
