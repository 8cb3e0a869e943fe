"""The segmentation trainer's run configuration: one frozen :class:`SegConfig` made once from the
parsed options (:func:`segmentation.config.load_config`), one dataclass per concern whose fields are
its options by their command-line names. Derived values are computed here: the student's backbone
and the experiment name (:meth:`SegConfig.parsed`), the teacher's input format once its checkpoint
is read (:meth:`SegConfig.with_teacher_record`). :meth:`SegConfig.as_dict` is the flat ``option:
value`` mapping of ``args.yaml`` and the checkpoints."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from distkd.errors import UserError
from distkd.losses import KDConfig, kd_config
from distkd.utils.distributed import emulated_steps


def _group(cls: type, args: argparse.Namespace, **derived: Any) -> Any:
    """``cls`` from the options of ``args`` named as its fields (``derived`` wins); lists as tuples."""
    values = {f.name: getattr(args, f.name) for f in fields(cls)}
    return cls(**{**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}, **derived})


@dataclass(frozen=True)
class StudentOptions:
    student_model: str
    student_backbone: str | None
    student_pretrained_base: str | None
    no_aux: bool


@dataclass(frozen=True)
class DistillOptions:
    """The teacher and the KD method (:meth:`method`: its validated :class:`~distkd.losses.KDConfig`)."""

    teacher_model: str | None
    teacher_backbone: str
    teacher_ckpt: str | None
    teacher_input_format: str | None
    kd: str | None
    kd_loss_weight: float
    kd_loss_kwargs: dict[str, Any]
    kd_temperature: float | None

    def method(self) -> KDConfig:
        """``--kd``, ``--kd-loss-kwargs`` (with ``--kd-temperature``), ``--kd-loss-weight``: a method
        segmentation can run (per-pixel logits, no targets, no features)."""
        try:
            kd = kd_config(self.kd, self.kd_loss_kwargs, self.kd_loss_weight)
        except ValueError as err:
            raise UserError(str(err)) from None
        if reason := kd.refusal("segmentation", dense=True, targets=False, features=False):
            raise UserError(reason)
        return kd


@dataclass(frozen=True)
class DataOptions:
    data_path: str
    train_list: str | None
    val_list: str | None
    crop_size: tuple[int, ...]
    input_format: str
    workers: int
    batch_size: int  # global, split over the processes


@dataclass(frozen=True)
class OptimOptions:
    """SGD, the poly schedule and the loss weights; ``--emulate-gpus``."""

    max_iterations: int
    lr: float
    min_lr: float
    power: float
    momentum: float
    weight_decay: float
    aux_weight: float
    emulate_gpus: int | None


@dataclass(frozen=True)
class RuntimeOptions:  # with the paper's launch options, accepted and unused
    amp: bool
    amp_dtype: str  # with --amp: float16 (the paper's), bfloat16 or auto (distkd.step.amp_dtype)
    seed: int
    device: str
    log_dir: str | None
    gpu_id: str | None
    local_rank: str | None


@dataclass(frozen=True)
class RunOptions:
    """The experiment folder, its records, validation and how long this run goes."""

    config: str | None
    output: str
    experiment: str | None
    resume: str | None
    overwrite: bool
    log_interval: int
    save_interval: int
    save_dir: str | None
    stop_iteration: int | None
    val_interval: int
    eval_scales: tuple[float, ...]
    eval_flip: bool
    eval_teacher: bool
    no_progress: bool

    def stop(self, max_iterations: int) -> int:
        """The last iteration of this run (``--stop-iteration``, at most ``--max-iterations``)."""
        return min(self.stop_iteration or max_iterations, max_iterations)


@dataclass(frozen=True)
class SegConfig:
    student: StudentOptions
    distill: DistillOptions
    data: DataOptions
    optim: OptimOptions
    runtime: RuntimeOptions
    run: RunOptions
    order: tuple[str, ...] = ()  # the parser's order of the options (that of args.yaml)

    @classmethod
    def parsed(cls, args: argparse.Namespace, order: tuple[str, ...] = ()) -> SegConfig:
        """The student's backbone defaults to the paper's for its model; the experiment name to
        ``<model>_<backbone>-<kd or baseline>-cityscapes``."""
        from segmentation.models import default_backbone

        student = _group(StudentOptions, args, student_backbone=args.student_backbone
                         or default_backbone(args.student_model))
        kind = args.kd if args.teacher_model else "baseline"
        run = _group(RunOptions, args, experiment=args.experiment
                     or f"{student.student_model}_{student.student_backbone}-{kind}-cityscapes")
        return cls(student, _group(DistillOptions, args), _group(DataOptions, args), _group(OptimOptions, args),
                   _group(RuntimeOptions, args), run, order)

    def with_teacher_record(self, recorded: str | None) -> SegConfig:
        """The teacher's input format given the one its checkpoint records: that (an explicit
        ``--teacher-input-format`` must agree), else the option, else the student's."""
        given = self.distill.teacher_input_format
        if recorded is not None and given not in (None, recorded):
            raise UserError(f"--teacher-input-format {given} contradicts the teacher checkpoint "
                            f"'{self.distill.teacher_ckpt}', trained with input format '{recorded}': drop the option")
        resolved = recorded or given or self.data.input_format
        return dataclasses.replace(self, distill=dataclasses.replace(self.distill, teacher_input_format=resolved))

    def as_dict(self) -> dict[str, Any]:
        """The flat ``option: value`` mapping (``vars`` of the parsed options, lists as lists)."""
        flat: dict[str, Any] = {}
        for group in (self.student, self.distill, self.data, self.optim, self.runtime, self.run):
            flat.update({f.name: getattr(group, f.name) for f in fields(group)})
        flat = {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()}
        flat["kd_loss_kwargs"] = dict(flat["kd_loss_kwargs"])
        return {**{k: flat[k] for k in self.order if k in flat}, **flat}


def check_config(config: SegConfig, world_size: int, synced_bn: bool = False) -> None:
    """Bad option values, each one line (before anything is written); ``synced_bn``: BatchNorm over
    all processes (then one image per process is enough)."""
    batch = config.data.batch_size
    if batch % world_size:
        raise UserError(f"--batch-size {batch} (global) must be divisible by the {world_size} processes")
    if batch // world_size < 2 and not synced_bn:
        raise UserError(f"--batch-size {batch} leaves one image per process; BatchNorm needs at least 2")
    check_emulation(config.optim.emulate_gpus, batch, world_size)
    distill = config.distill
    if distill.teacher_model and not distill.teacher_ckpt:
        raise UserError("distillation needs the trained teacher: pass --teacher-ckpt PATH")
    if distill.kd and not distill.teacher_model:
        raise UserError(f"--kd {distill.kd} needs a teacher: pass --teacher-model NAME and --teacher-ckpt PATH")
    if distill.teacher_model:
        distill.method()  # valid, and a method segmentation can run


def check_emulation(gpus: int | None, batch_size: int, world_size: int) -> None:
    """``--emulate-gpus N``: N a multiple of the processes, the batch split into N equal parts."""
    if gpus is None:
        return
    emulated_steps(gpus, world_size)
    if batch_size % gpus:
        raise UserError(f"--batch-size {batch_size} does not split over --emulate-gpus {gpus}: "
                        f"give a batch that is a multiple of {gpus} ({gpus * max(1, batch_size // gpus)}, "
                        f"{gpus * (batch_size // gpus + 1)}, ...)")
