r"""The project's KD registry (``distkd/losses/registry.py``) in mmrazor's ``MODELS``: one loss, ``KDLoss``.

``dict(type='KDLoss', method='dist', loss_weight=1.0, **options)`` builds the registered method
``method`` with ``options`` (``beta``, ``gamma``, ``tau``, ``ls``, ...: parsed, defaulted and validated
by :func:`distkd.losses.kd_config`, as ``--kd`` / ``--kd-loss-kwargs`` in the trainers) and computes
``loss_weight * method(preds_S, preds_T)`` with the teacher side detached. A method registered once
in ``KD_METHODS`` is available here by name. Methods that need class targets (``dkd``) or feature
aligners (``mse``) are refused with one line: an mmrazor distill loss receives two recorded tensors.

The detection configs use:

* ``method='dist'`` on the ``(num_rois, 81)`` ``fc_cls`` outputs of a two-stage detector (an 81-way
  softmax including background), or on ``(N, C, H, W)`` decode-head logits of a segmentor (every
  pixel a sample);
* ``method='dist_sigmoid'``: the paper's RetinaNet DIST (``use_sigmoid=True`` in its detection code),
  on RetinaNet's raw ``retina_cls`` output of one FPN level, ``(N, A*C, H, W)`` = ``(N, 9*80 = 720,
  H, W)``: every score becomes ``sigmoid(z)`` (no softmax), every position ``(n, h, w)`` is a row of
  720 anchor x class scores (the paper's ``transpose(1, 3).reshape(-1, 720)``)::

      L = beta * (1 - mean_{n,h,w} pearson(p_s[n, :, h, w], p_t[n, :, h, w]))     # inter: 720 scores
        + gamma * (1 - mean_{k<720} pearson(p_s[:, k, :, :], p_t[:, k, :, :]))      # intra: over positions

* ``method='dist_anchor'``: this project's alternative for sigmoid classifiers (not the paper's),
  kept for comparison (``benchmarks/bench_detection.py``). DIST per anchor on ``retina_cls``: channel
  ``a*C + c`` holds the logit ``z_c`` of class ``c`` for anchor ``a`` (mmdet's layout); each anchor
  becomes a ``C+1``-way distribution by appending a background logit fixed at 0,

      p_c = exp(z_c) / (1 + sum_k exp(z_k)),     p_bg = 1 / (1 + sum_k exp(z_k))

  i.e. ``softmax([z_1..z_C, 0])`` (for one class exactly ``[sigmoid(z), 1 - sigmoid(z)]``), and every
  anchor position ``(n, a, h, w)`` is a DIST sample. ``background=False`` drops the background entry.

Both variants are registered in the KD registry (``KD_METHODS``) by this module.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from detection import compat

compat.apply()

from mmrazor.registry import MODELS  # noqa: E402

from distkd.losses import KD_METHODS, DISTLoss, apply_kd, kd_config  # noqa: E402
from distkd.losses.registry import takes_context  # noqa: E402

WHERE = "an mmrazor distill loss (two recorded tensors)"


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


KD_METHODS.register("dist_sigmoid")(SigmoidDIST)
KD_METHODS.register("dist_anchor")(PerAnchorDIST)


@MODELS.register_module()
class KDLoss(nn.Module):
    """``loss_weight * method(preds_S, preds_T.detach())`` for a KD method of the project's registry."""

    def __init__(self, method: str = "dist", loss_weight: float = 1.0, **options) -> None:
        super().__init__()
        self.config = kd_config(method, options, loss_weight)  # ValueError: one line
        if reason := self.config.refusal(WHERE, targets=False, features=False, subject=f"method='{method}'"):
            raise ValueError(reason)
        self.kd = self.config.build()
        self.loss_weight = self.config.weight
        self._with_ctx = takes_context(self.kd)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:  # noqa: N803 (mmrazor's names)
        return self.loss_weight * apply_kd(self.kd, preds_S, preds_T.detach(), None, self._with_ctx)

    def extra_repr(self) -> str:
        return f"method={self.config.method}, loss_weight={self.loss_weight}"
