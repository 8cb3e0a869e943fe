"""Channel shuffle shared by the ShuffleNet V1 and V2 models."""
from __future__ import annotations

from torch import Tensor


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """``[N, g*c, H, W] -> [N, g, c, H, W] -> transpose(1, 2) -> [N, c*g, H, W]``."""
    n, channels, h, w = x.shape
    return x.view(n, groups, channels // groups, h, w).transpose(1, 2).reshape(n, channels, h, w)
