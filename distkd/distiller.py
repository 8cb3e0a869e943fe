"""The distiller: a student, a teacher and their losses in one ``nn.Module``.

``forward(images, targets, ctx)`` returns a dict of named losses::

    {"loss_ori": ori_loss_weight * task_loss(student(x), y),
     "loss_kd":  kd_loss_weight  * kd_loss(student(x), teacher outputs, ctx)}

``ctx`` (:class:`~distkd.context.BatchContext`; its targets default to ``targets``) goes to KD methods
whose ``forward`` takes one; a method's dict of named losses gives ``loss_kd_<name>`` entries.
``student_module`` / ``teacher_module`` (dotted names, empty: the model output) give the KD loss
those modules' outputs instead (feature losses default to the last stages).
The trainer sums the dict and logs each entry. The teacher (:mod:`distkd.teacher`: a frozen network
in eval mode under ``no_grad``, converting the batch to its own normalisation when asked, or stored
outputs that came with the batch) gives its outputs first; it is left out of
:meth:`trainable_modules`, so the optimizer and a checkpoint hold the student (and the KD loss's own
parameters, e.g. an aligner) alone, and out of :meth:`distribute`, so DDP synchronises only what
trains. Without a teacher the same class trains a plain model: only ``loss_ori`` is returned.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from distkd.context import BatchContext
from distkd.features import FeatureRecorder, last_stage_name
from distkd.losses.registry import apply_kd, takes_context
from distkd.teacher import Teacher

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
        if teacher is not None and not hasattr(teacher, "outputs"):
            teacher = Teacher(teacher)  # a plain network: frozen, eval mode
        self.teacher = teacher
        self.kd_loss = kd_loss
        self.task_loss = task_loss
        self.ori_loss_weight = ori_loss_weight
        self.kd_loss_weight = kd_loss_weight
        self._recorders: tuple[FeatureRecorder, FeatureRecorder] | None = None
        self._wrapped: dict[str, nn.Module] = {}  # what distribute() wrapped (a plain dict: not submodules)
        self._kd_takes_ctx = kd_loss is not None and takes_context(kd_loss)
        if self.teacher is not None:
            features = getattr(kd_loss, "inputs", "logits") == "features"
            if features or student_module or teacher_module:
                if getattr(self.teacher, "model", None) is None:  # stored outputs: no network to record from
                    raise ValueError("stored teacher outputs cannot serve a feature KD loss or --teacher-module")
                if getattr(kd_loss, "ls", False):
                    raise ValueError("ls=1 (logit standardisation) standardises logits over the classes; "
                                     "--student-module / --teacher-module give the KD loss feature maps")
                teacher = self.teacher.model
                # Named modules (the original's --student-module / --teacher-module); by default the
                # model outputs (logit losses) or the last stages (feature losses).
                s_name = student_module or (last_stage_name(student) if features else "")
                t_name = teacher_module or (last_stage_name(teacher) if features else "")
                self._recorders = (FeatureRecorder(student, s_name), FeatureRecorder(teacher, t_name))

    def forward(self, images: Tensor, targets: Tensor, ctx: BatchContext | None = None) -> dict[str, Tensor]:
        """``ctx``: the batch's context (epoch, progress; from a teacher store, the teacher's outputs)."""
        ctx = ctx or BatchContext()
        if ctx.targets is None:
            ctx = dataclasses.replace(ctx, targets=targets)
        # The teacher runs first: its activations are freed before the student's graph is built,
        # which lowers the step's peak memory (and, on the CPU, its allocation cost).
        outputs_t = self.teacher.outputs(images, ctx) if self.teacher is not None else None
        logits = self._wrapped.get("student", self.student)(images)
        losses = {"loss_ori": self.ori_loss_weight * self.task_loss(logits, targets)}
        if self.teacher is None:
            return losses
        kd_loss = self._wrapped.get("kd_loss", self.kd_loss)
        if self._recorders is not None:
            kd = apply_kd(kd_loss, self._recorders[0].pop(), self._recorders[1].pop(), ctx, self._kd_takes_ctx)
        else:
            kd = apply_kd(kd_loss, logits, outputs_t, ctx, self._kd_takes_ctx)
        if isinstance(kd, dict):
            losses.update({f"loss_kd_{name}": self.kd_loss_weight * value for name, value in kd.items()})
        else:
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

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Run the trainable parts through ``wrap`` from now on, e.g.
        ``lambda m: DistributedDataParallel(m, device_ids=[rank])``: the student, and the KD loss when
        it has parameters. The teacher stays outside: no gradient sync or buffer broadcast for it."""
        self._wrapped = {name: wrap(module) for name, module in self.trainable_modules().items()}

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """DDP's ``no_sync`` on every part :meth:`distribute` wrapped (gradient accumulation): the
        backward passes run in this context accumulate gradients without synchronising them."""
        with contextlib.ExitStack() as stack:
            for module in self._wrapped.values():
                if hasattr(module, "no_sync"):
                    stack.enter_context(module.no_sync())
            yield
