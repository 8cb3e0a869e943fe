"""mmrazor distillation algorithms used by ``configs/detection`` and ``configs/segmentation_mmseg``.

``LocalTeacherDistill``: mmrazor's ``SingleTeacherDistill`` (teacher forward under ``no_grad``,
then the student, then the ``ConfigurableDistiller``'s losses) whose teacher weights must be a local
file (a clear ``UserError`` naming the path otherwise) and are never re-initialised or downloaded.

``TeacherOnStudentRoIsDistill``: for two-stage detectors. mmrazor runs the teacher before the
student, so the teacher cannot see the student's RoIs; this algorithm runs the student first,
takes the RoIs the student's RoI head sampled (recorded at the input of its
``bbox_roi_extractor``), and runs the teacher's backbone, neck and one RoI-head stage on exactly
those RoIs:

    z_s = student.bbox_head.fc_cls(RoIAlign(F_s, R_s)),   z_t = teacher.bbox_head[k].fc_cls(RoIAlign(F_t, R_s))

so both ``fc_cls`` outputs are ``(len(R_s), num_classes + 1)`` and row ``i`` of each scores the same
box. The teacher's RPN, sampler and losses do not run.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from detection import compat

compat.apply()

from mmrazor.models.algorithms import SingleTeacherDistill  # noqa: E402
from mmrazor.models.utils import add_prefix  # noqa: E402
from mmrazor.registry import MODELS  # noqa: E402

from detection.checkpoints import require_local_file  # noqa: E402


@MODELS.register_module()
class LocalTeacherDistill(SingleTeacherDistill):
    """``SingleTeacherDistill`` with a checked local ``teacher_ckpt`` (``None``: random teacher, tests only)."""

    def __init__(self, *args, teacher_ckpt: str | None = None, **kwargs) -> None:
        if teacher_ckpt is None:
            warnings.warn("teacher_ckpt=None: the teacher keeps random weights (only useful for tests)", stacklevel=2)
        else:
            teacher_ckpt = require_local_file(teacher_ckpt, "teacher_ckpt")
        super().__init__(*args, teacher_ckpt=teacher_ckpt, **kwargs)
        # The teacher's weights come from teacher_ckpt only: its config's init_cfg (an ImageNet
        # backbone URL) must not run when the runner calls init_weights().
        self.teacher._is_init = True


@MODELS.register_module()
class TeacherOnStudentRoIsDistill(LocalTeacherDistill):
    """Runs the teacher's RoI-head stage ``teacher_roi_stage`` on the student's sampled RoIs.

    Args:
        rois_recorder: name of the student recorder of type ``ModuleInputs`` on
            ``roi_head.bbox_roi_extractor`` (its second input is the ``(n, 5)`` RoI tensor).
        teacher_roi_stage: which stage of a cascade teacher to run (0: the first).
    """

    def __init__(self, *args, rois_recorder: str = "rois", teacher_roi_stage: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.teacher_trainable:
            raise ValueError("TeacherOnStudentRoIsDistill needs a frozen teacher (teacher_trainable=False)")
        self.rois_recorder = rois_recorder
        self.teacher_roi_stage = teacher_roi_stage
        self.distiller.student_recorders.get_recorder(rois_recorder)  # fails early on a wrong name

    def student_rois(self) -> Tensor:
        """The ``(n, 5)`` RoIs ``(batch index, x1, y1, x2, y2)`` of the student's last forward."""
        return self.distiller.get_record(self.rois_recorder, from_student=True, data_idx=1).detach()

    @torch.no_grad()
    def teacher_forward_on_rois(self, batch_inputs: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher backbone + neck, then its RoI head stage on ``rois``; returns ``(cls_score, bbox_pred)``."""
        feats = self.teacher.extract_feat(batch_inputs)
        roi_head = self.teacher.roi_head
        extractor, head = roi_head.bbox_roi_extractor, roi_head.bbox_head
        if isinstance(head, torch.nn.ModuleList):  # cascade: one extractor and head per stage
            extractor, head = extractor[self.teacher_roi_stage], head[self.teacher_roi_stage]
        return head(extractor(feats[: extractor.num_inputs], rois))

    def loss(self, batch_inputs: Tensor, data_samples=None) -> dict[str, Tensor]:
        losses = {}
        with self.distiller.student_recorders, self.distiller.deliveries:
            student_losses = self.student(batch_inputs, data_samples, mode="loss")
        if self.calculate_student_loss:
            losses.update(add_prefix(student_losses, "student"))
        with self.distiller.teacher_recorders:
            self.teacher_forward_on_rois(batch_inputs, self.student_rois())
        if not self.distillation_stopped:
            losses.update(add_prefix(self.distiller.compute_distill_losses(), "distill"))
        return losses
