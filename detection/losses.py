r"""The project's DIST loss (``distkd/losses/dist_kd.py``) registered in mmrazor's ``MODELS``.

* ``DISTKDLoss``: ``loss_weight * dist_loss(z_s, z_t, beta, gamma, tau, probs=...)`` on logits with
  classes on dim 1: ``(num_rois, 81)`` ``fc_cls`` outputs of a two-stage detector, or
  ``(N, C, H, W)`` decode-head logits of a segmentor (every pixel is a sample).

  With ``probs='sigmoid'`` on RetinaNet's raw ``retina_cls`` output of one FPN level it is the
  paper's RetinaNet DIST (``use_sigmoid=True`` in its detection code): ``retina_cls`` gives
  ``(N, A*C, H, W)`` = ``(N, 9*80 = 720, H, W)``, every score becomes ``sigmoid(z)`` (no softmax),
  every position ``(n, h, w)`` is a row of 720 anchor x class scores (the paper's
  ``transpose(1, 3).reshape(-1, 720)``):

      L = beta * (1 - mean_{n,h,w} pearson(p_s[n, :, h, w], p_t[n, :, h, w]))     # inter: 720 scores
        + gamma * (1 - mean_{k<720} pearson(p_s[:, k, :, :], p_t[:, k, :, :]))      # intra: over positions

  That is ``dist_kd.dist_loss(..., probs='sigmoid')`` on the 4-d tensor as it comes.

* ``AnchorSigmoidDISTLoss``: this project's alternative for sigmoid classifiers (not the paper's),
  kept for comparison (``benchmarks/bench_detection.py``). DIST per anchor on ``retina_cls``
  (one FPN level per call): channel ``a*C + c`` holds the logit ``z_c`` of class ``c`` for anchor
  ``a`` (mmdet reads it as ``permute(0, 2, 3, 1).reshape(-1, C)``). Each anchor becomes a
  ``C+1``-way distribution by appending a background logit fixed at 0:

      p_c  = exp(z_c) / (1 + sum_k exp(z_k)),     p_bg = 1 / (1 + sum_k exp(z_k))

  i.e. ``softmax([z_1..z_C, 0])``. For one class this is exactly ``[sigmoid(z), 1 - sigmoid(z)]``,
  ``z_c`` stays the log-odds of class ``c`` against background, and an anchor whose class scores
  are all low puts its mass on background, as the 81-way ``fc_cls`` softmax of the Faster R-CNN row
  does. DIST then treats every anchor position ``(n, a, h, w)`` as a sample: the inter-class term
  correlates each anchor's ``C+1`` probabilities, the intra-class term each class over all anchors
  of the level. ``background=False`` drops the background entry (plain softmax over the ``C``
  logits, which ignores how confident the anchor is overall).
"""
from __future__ import annotations

import torch
from torch import Tensor

from detection import compat

compat.apply()

from mmrazor.registry import MODELS  # noqa: E402

from distkd.losses import dist_kd  # noqa: E402


@MODELS.register_module()
class DISTKDLoss(dist_kd.DISTLoss):
    """``loss_weight * DIST(preds_S, preds_T)``: the project's ``DISTLoss`` (``beta``, ``gamma``,
    ``tau`` and its other options in ``dist_kwargs``); the teacher side is detached."""

    def __init__(self, loss_weight: float = 1.0, **dist_kwargs) -> None:
        super().__init__(**dist_kwargs)
        self.loss_weight = float(loss_weight)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:  # noqa: N803 (mmrazor's names)
        return self.loss_weight * super().forward(preds_S, preds_T.detach())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, loss_weight={self.loss_weight}"


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


@MODELS.register_module()
class AnchorSigmoidDISTLoss(DISTKDLoss):
    """DIST between two sigmoid classification maps of one FPN level, per anchor (module docstring)."""

    def __init__(self, num_classes: int = 80, background: bool = True, **kwargs) -> None:
        if kwargs.get("probs", "softmax") != "softmax":
            raise ValueError("AnchorSigmoidDISTLoss builds per-anchor softmax distributions; for the paper's "
                             "element-wise sigmoid use type='DISTKDLoss', probs='sigmoid'")
        super().__init__(**kwargs)
        self.num_classes, self.background = int(num_classes), bool(background)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:  # noqa: N803
        z_s = anchor_class_logits(preds_S, self.num_classes, self.background)
        z_t = anchor_class_logits(preds_T, self.num_classes, self.background)
        return super().forward(z_s, z_t)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_classes={self.num_classes}, background={self.background}"
