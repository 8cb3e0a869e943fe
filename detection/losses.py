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
  kept for comparison (``benchmarks/bench_detection.py``): each anchor's 80 logits plus a background
  logit fixed at 0 as an 81-way softmax, every anchor a DIST sample
  (:mod:`distkd.losses.dist_variants`).
"""
from __future__ import annotations

from torch import Tensor, nn

from detection import compat

compat.apply()

from mmrazor.registry import MODELS  # noqa: E402

from distkd.losses import apply_kd, kd_config  # noqa: E402
from distkd.losses.registry import takes_context  # noqa: E402

WHERE = "an mmrazor distill loss (two recorded tensors)"


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
