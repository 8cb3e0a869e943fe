r"""DIST for sigmoid classifiers (RetinaNet's ``retina_cls``), registered as ``dist_sigmoid`` and ``dist_anchor``.

``dist_sigmoid`` (:class:`SigmoidDIST`) is the paper's RetinaNet DIST (``use_sigmoid=True`` in its
detection code): on the raw ``(N, A*C, H, W)`` output of one FPN level (``(N, 9*80 = 720, H, W)``)
every score becomes ``sigmoid(z / tau)`` (no softmax), every position ``(n, h, w)`` is a row of 720
anchor x class scores (inter-class), and each of the 720 channels is correlated over the positions
(intra-class): :func:`~distkd.losses.dist_kd.dist_loss` with ``probs='sigmoid'``.

``dist_anchor`` (:class:`PerAnchorDIST`) is this project's alternative (not the paper's): each
anchor's ``C`` sigmoid logits (channel ``a*C + c``, mmdet's layout) plus a background logit fixed at
0 become a ``C+1``-way softmax,

    p_c = exp(z_c) / (1 + sum_k exp(z_k)),     p_bg = 1 / (1 + sum_k exp(z_k))

(for one class exactly ``[sigmoid(z), 1 - sigmoid(z)]``), and every anchor position ``(n, a, h, w)``
is a DIST sample. ``background=False`` drops the background entry (a softmax over the ``C`` logits).
"""
from __future__ import annotations

import torch
from torch import Tensor

from distkd.losses.dist_kd import DISTLoss


class SigmoidDIST(DISTLoss):
    """DIST with element-wise ``sigmoid(z / tau)`` probabilities (the paper's RetinaNet form)."""

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__(beta, gamma, tau, eps, probs="sigmoid")


def anchor_class_logits(cls_score: Tensor, num_classes: int, background: bool = True) -> Tensor:
    """``(N, A*C, H, W)`` sigmoid logits -> ``(N, C[+1], A, H, W)`` logits whose softmax over dim 1
    is each anchor's class distribution (see the module docstring)."""
    n, channels, h, w = cls_score.shape
    if channels % num_classes:
        raise ValueError(f"cls_score has {channels} channels, not a multiple of num_classes={num_classes}")
    logits = cls_score.reshape(n, channels // num_classes, num_classes, h, w).transpose(1, 2)
    if background:
        logits = torch.cat([logits, logits.new_zeros(n, 1, *logits.shape[2:])], dim=1)
    return logits


class PerAnchorDIST(DISTLoss):
    """DIST between two ``(N, A*C, H, W)`` sigmoid classification maps, per anchor (module docstring)."""

    def __init__(self, num_classes: int = 80, background: bool = True, beta: float = 1.0, gamma: float = 1.0,
                 tau: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__(beta, gamma, tau, eps)
        self.num_classes, self.background = int(num_classes), bool(background)

    def forward(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        return super().forward(anchor_class_logits(z_s, self.num_classes, self.background),
                               anchor_class_logits(z_t, self.num_classes, self.background))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_classes={self.num_classes}, background={self.background}"
