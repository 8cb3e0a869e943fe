"""The distiller: a student, a frozen teacher and their losses in one ``nn.Module``.

``forward(images, targets)`` returns a dict of named losses::

    {"loss_ori": ori_loss_weight * task_loss(student(x), y),
     "loss_kd":  kd_loss_weight  * kd_loss(student(x), teacher(x))}

``student_module`` / ``teacher_module`` (dotted names, empty: the model output) give the KD loss
those modules' outputs instead (feature losses default to the last stages).
The trainer sums the dict and logs each entry. The teacher is always in eval mode, runs first and
under ``torch.no_grad()`` (in the caller's autocast; give it the student's memory format), never
requires gradients, and is left out of :meth:`student_state_dict`, so a
checkpoint holds the student (and the KD loss's own parameters, e.g. an aligner) alone. Without a
teacher the same class trains a plain model (baselines and teachers): only ``loss_ori`` is returned.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from distkd.features import FeatureRecorder, last_stage_name

TaskLoss = Callable[[Tensor, Tensor], Tensor]


class Distiller(nn.Module):
    def __init__(
        self,
        student: nn.Module,
        task_loss: TaskLoss,
        teacher: nn.Module | None = None,
        kd_loss: nn.Module | None = None,
        ori_loss_weight: float = 1.0,
        kd_loss_weight: float = 1.0,
        student_module: str = "",
        teacher_module: str = "",
    ) -> None:
        super().__init__()
        if (teacher is None) != (kd_loss is None):
            raise ValueError("a Distiller needs both a teacher and a KD loss, or neither")
        self.student = student
        self.teacher = teacher
        self.kd_loss = kd_loss
        self.task_loss = task_loss
        self.ori_loss_weight = ori_loss_weight
        self.kd_loss_weight = kd_loss_weight
        self._recorders: tuple[FeatureRecorder, FeatureRecorder] | None = None
        if teacher is not None:
            teacher.eval()
            teacher.requires_grad_(False)
            features = getattr(kd_loss, "inputs", "logits") == "features"
            if features or student_module or teacher_module:
                # Named modules (the original's --student-module / --teacher-module); by default the
                # model outputs (logit losses) or the last stages (feature losses).
                s_name = student_module or (last_stage_name(student) if features else "")
                t_name = teacher_module or (last_stage_name(teacher) if features else "")
                self._recorders = (FeatureRecorder(student, s_name), FeatureRecorder(teacher, t_name))

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    @torch.no_grad()
    def teacher_forward(self, images: Tensor) -> Tensor:
        return self.teacher(images)

    def forward(self, images: Tensor, targets: Tensor, teacher_logits: Tensor | None = None) -> dict[str, Tensor]:
        """``teacher_logits``: the teacher's outputs given (replayed from a teacher store), not computed."""
        # The teacher runs first: its activations are freed before the student's graph is built,
        # which lowers the step's peak memory (and, on the CPU, its allocation cost).
        if teacher_logits is not None and self._recorders is not None:
            raise ValueError("given teacher logits cannot serve a feature KD loss")
        logits_t = teacher_logits
        if logits_t is None and self.teacher is not None:
            logits_t = self.teacher_forward(images)
        logits = self.student(images)
        losses = {"loss_ori": self.ori_loss_weight * self.task_loss(logits, targets)}
        if self.teacher is None:
            return losses
        if self._recorders is not None:
            kd = self.kd_loss(self._recorders[0].pop(), self._recorders[1].pop())
        else:
            kd = self.kd_loss(logits, logits_t)
        losses["loss_kd"] = self.kd_loss_weight * kd
        return losses

    @torch.no_grad()
    def prepare(self, sample_images: Tensor) -> None:
        """Run one batch through both networks so lazily built KD parts (aligners) exist.

        Call before building the optimizer; a no-op for logit losses.
        """
        if self._recorders is None:
            return
        was_training = self.training
        self.eval()
        self.student(sample_images)
        self.teacher(sample_images)
        self.kd_loss(self._recorders[0].pop(), self._recorders[1].pop())
        self.train(was_training)

    def trainable_modules(self) -> nn.ModuleDict:
        """The parts an optimizer and the checkpoint hold: the student and the KD loss."""
        modules = {"student": self.student}
        if self.kd_loss is not None and any(True for _ in self.kd_loss.parameters()):
            modules["kd_loss"] = self.kd_loss
        return nn.ModuleDict(modules)

    def teacher_param_names(self) -> list[str]:
        """Names under this module of the teacher's parameters and buffers (for DDP to ignore)."""
        if self.teacher is None:
            return []
        names = [f"teacher.{n}" for n, _ in self.teacher.named_parameters()]
        return names + [f"teacher.{n}" for n, _ in self.teacher.named_buffers()]
