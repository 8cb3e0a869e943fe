"""The trainer's run configuration: one frozen :class:`TrainConfig` made once from the parsed options
(:func:`classification.config.load_config`), one dataclass per concern whose fields are its options by
their command-line names. Derived values (default data path, decay rate, experiment name, accumulation
steps) are computed here, in each group's :meth:`parsed`; nothing downstream assigns to the configuration.
:meth:`TrainConfig.as_dict` is the flat ``option: value`` mapping of ``args.yaml`` and the checkpoints."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from classification.accumulation import resolve_accumulation
from classification.data.catalog import DatasetEntry, dataset_entry
from distkd.errors import UserError

DEFAULT_DECAY_RATE = 0.1  # timm's and torchvision's step decay; the original had no default (it crashed)


def _group(cls: type, args: argparse.Namespace, **derived: Any) -> Any:
    """``cls`` from the options of ``args`` named as its fields (``derived`` wins)."""
    values = {f.name: getattr(args, f.name, f.default) for f in fields(cls)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}  # frozen: lists as tuples
    return cls(**{**values, **derived})


def fill_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` with the values recorded for options the original left without one."""
    optim = OptimOptions.parsed(args)
    return argparse.Namespace(**{**vars(args), "decay_rate": optim.decay_rate,
                                 "grad_accum_steps": optim.grad_accum_steps})


class OptionGroup:
    """A group of options: :meth:`parsed` takes its fields from the parsed options, by name."""

    @classmethod
    def parsed(cls, args: argparse.Namespace):
        return _group(cls, args)


@dataclass(frozen=True)
class DataOptions(OptionGroup):
    """The data and its evaluation pipeline (training and evaluation share them)."""

    dataset: str = "imagenet"
    data_path: str | None = None
    image_size: int | None = None
    batch_size: int = 32
    val_batch_size_multiplier: float = 1.0
    workers: int = 4
    image_mean: tuple[float, ...] | None = None
    image_std: tuple[float, ...] | None = None
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    skip_bad_images: bool = False
    download: bool = False
    offline: bool = False

    @classmethod
    def parsed(cls, args: argparse.Namespace) -> DataOptions:
        """With the dataset's default ``--data-path`` when none is given (the original's locations)."""
        return _group(cls, args, data_path=args.data_path or dataset_entry(args.dataset).default_path)

    @property
    def entry(self) -> DatasetEntry:
        return dataset_entry(self.dataset)

    @property
    def size(self) -> int:
        return self.image_size or self.entry.image_size

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``--image-mean`` / ``--image-std`` when given, else the dataset's."""
        return tuple(self.image_mean or self.entry.mean), tuple(self.image_std or self.entry.std)


@dataclass(frozen=True)
class AugmentOptions(OptionGroup):
    """The training split: its fraction, augmentation, mixup / cutmix and label smoothing."""

    train_fraction: float = 1.0
    color_jitter: float = 0.0
    cutout_length: int = 0
    aa: str | None = None
    timm_rand_augment: bool = False
    reprob: float = 0.0
    remode: str = "const"
    smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    cutmix_minmax: tuple[float, ...] | None = None
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    mixup_mode: str = "batch"

    @property
    def mixup_active(self) -> bool:
        """Mixup / cutmix on (timm's Mixup, soft-target loss), as the original decides it."""
        return self.mixup > 0 or self.cutmix > 0 or self.cutmix_minmax is not None


@dataclass(frozen=True)
class ModelOptions(OptionGroup):
    model: str | None = None
    list_models: str | None = None
    drop: float = 0.0
    classifier_dropout: float = 0.0
    drop_path_rate: float = 0.0
    drop_path_strategy: str = "const"
    initial_checkpoint: str | None = None
    sync_bn: bool = False
    pretrained: bool = False


@dataclass(frozen=True)
class RuntimeOptions(OptionGroup):  # device, precision, seeds and the launcher's options
    device: str = "auto"
    amp: bool = False
    amp_dtype: str = "auto"
    channels_last: bool = False
    compile: bool = False
    seed: int = 42
    deterministic: bool = False
    slurm: bool = False
    local_rank: int = 0
    dist_port: str = "12345"


@dataclass(frozen=True)
class OptimOptions(OptionGroup):
    """Optimizer, learning-rate schedule, EMA and the steps of gradient accumulation."""

    epochs: int = 200
    opt: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    sgd_no_nesterov: bool = False
    weight_decay: float = 1e-4
    opt_eps: float = 1e-8
    opt_betas: tuple[float, ...] | None = None
    opt_no_filter: bool = False
    clip_grad_norm: bool = False
    clip_grad_max_norm: float = 5.0
    sched: str = "step"
    decay_epochs: float = 3
    decay_rate: float | None = None
    decay_by_epoch: bool = False
    warmup_epochs: float = 3
    warmup_lr: float = 1e-4
    min_lr: float = 1e-5
    model_ema: bool = False
    model_ema_decay: float = 0.9998
    grad_accum_steps: int | None = None
    emulate_gpus: int | None = None

    @classmethod
    def parsed(cls, args: argparse.Namespace) -> OptimOptions:
        """Step ``--decay-rate`` :data:`DEFAULT_DECAY_RATE`; ``--grad-accum-steps`` 1 without ``--emulate-gpus``."""
        decay = DEFAULT_DECAY_RATE if args.sched == "step" and args.decay_rate is None else args.decay_rate
        steps = 1 if args.grad_accum_steps is None and args.emulate_gpus is None else args.grad_accum_steps
        return _group(cls, args, decay_rate=decay, grad_accum_steps=steps)

    @property
    def clip(self) -> float | None:
        return self.clip_grad_max_norm if self.clip_grad_norm else None


@dataclass(frozen=True)
class DistillOptions(OptionGroup):
    """The teacher and the KD method (``--kd`` ...; :meth:`method` is its :class:`~distkd.losses.KDConfig`)."""

    kd: str | None = None
    kd_loss_weight: float = 1.0
    kd_loss_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    teacher_model: str | None = None
    teacher_ckpt: str | None = None
    teacher_pretrained: bool = True
    ori_loss_weight: float = 1.0
    teacher_module: str = ""
    student_module: str = ""
    teacher_store: str | None = None

    def method(self):
        """The validated ``kd`` configuration (:class:`~distkd.losses.KDConfig`); None without ``--kd``."""
        from distkd.losses import kd_config

        if not self.kd:
            return None
        try:
            return kd_config(self.kd, self.kd_loss_kwargs, self.kd_loss_weight)
        except ValueError as err:
            raise UserError(str(err)) from None


@dataclass(frozen=True)
class RunOptions(OptionGroup):  # the experiment folder, its records and how long this run goes
    config: str | None = None
    output: str = "experiments"
    experiment: str | None = None
    resume: str | None = None
    overwrite: bool = False
    log_interval: int = 50
    save_interval: int = 1000
    max_iters_per_epoch: int = 0
    stop_after_epochs: int = 0
    log_wandb: bool = False
    wandb_project: str = "distkd"

    @classmethod
    def parsed(cls, args: argparse.Namespace) -> RunOptions:
        """The experiment name defaults to ``<model>-<kd or baseline>-<dataset>``."""
        return _group(cls, args, experiment=args.experiment or f"{args.model}-{args.kd or 'baseline'}-{args.dataset}")


@dataclass(frozen=True)
class TrainConfig:
    data: DataOptions
    augment: AugmentOptions
    model: ModelOptions
    runtime: RuntimeOptions
    optim: OptimOptions
    distill: DistillOptions
    run: RunOptions
    foreign: dict[str, Any]  # the original's other projects' options, at their defaults (recorded only)
    order: tuple[str, ...] = ()  # the parser's order of the options (that of args.yaml)

    @classmethod
    def parsed(cls, args: argparse.Namespace, order: tuple[str, ...] = ()) -> TrainConfig:
        groups = {"data": DataOptions.parsed(args), "augment": AugmentOptions.parsed(args),
                  "model": ModelOptions.parsed(args), "runtime": RuntimeOptions.parsed(args),
                  "optim": OptimOptions.parsed(args), "distill": DistillOptions.parsed(args),
                  "run": RunOptions.parsed(args)}
        known = {f.name for group in groups.values() for f in fields(group)}
        foreign = {k: v for k, v in vars(args).items() if k not in known}
        return cls(**groups, foreign=foreign, order=order)

    def for_processes(self, world_size: int) -> TrainConfig:
        """On ``world_size`` processes: ``grad_accum_steps`` of ``--grad-accum-steps`` / ``--emulate-gpus``."""
        steps = resolve_accumulation(self.optim.grad_accum_steps, self.optim.emulate_gpus, world_size,
                                     bool(self.distill.teacher_store))
        return dataclasses.replace(self, optim=dataclasses.replace(self.optim, grad_accum_steps=steps))

    def as_dict(self) -> dict[str, Any]:
        """The flat ``option: value`` mapping (``vars`` of the parsed options, lists as lists)."""
        flat: dict[str, Any] = {}
        for group in (self.data, self.augment, self.model, self.runtime, self.optim, self.distill, self.run):
            flat.update({f.name: getattr(group, f.name) for f in fields(group)})
        flat.update(self.foreign)
        flat = {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()}
        flat["kd_loss_kwargs"] = dict(flat["kd_loss_kwargs"])
        ordered = {k: flat[k] for k in self.order if k in flat}
        return {**ordered, **flat}


def check_config(config: TrainConfig) -> None:
    """Bad option values, each one line naming the option and the fix (before anything is built)."""
    from classification.models import check_model_name
    from distkd.utils.checkpoint import check_checkpoint_file

    model, distill = config.model, config.distill
    _check_pairing(model, distill)
    if model.initial_checkpoint:
        check_checkpoint_file(model.initial_checkpoint, "initial checkpoint")
    _check_ranges(config)
    check_model_name(model.model)
    if distill.kd:
        check_model_name(distill.teacher_model)
        if distill.method().accepts("needs_targets", False) and config.augment.mixup_active:
            raise UserError(f"--kd {distill.kd} needs one class index per sample; --mixup / --cutmix give soft "
                            "targets: drop them")


def _check_pairing(model: ModelOptions, distill: DistillOptions) -> None:
    if not model.model:
        raise UserError("no student model: pass --model NAME (or give 'model:' in the YAML config)")
    if distill.kd and not distill.teacher_model:
        raise UserError(f"--kd {distill.kd} needs a teacher: pass --teacher-model NAME")
    if distill.teacher_model and not distill.kd:
        raise UserError("--teacher-model given without --kd: name a KD method (e.g. --kd dist) or drop the teacher")
    if model.initial_checkpoint and model.pretrained:
        raise UserError("--initial-checkpoint and --pretrained both give the student's first weights: keep one")


def _check_ranges(config: TrainConfig) -> None:
    for name, value in (("batch_size", config.data.batch_size), ("epochs", config.optim.epochs)):
        if value <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if config.run.save_interval < 0:
        raise UserError(f"--save-interval must be >= 0 (0: at epoch ends only), got {config.run.save_interval}")
    if config.optim.lr <= 0:
        raise UserError(f"--lr must be positive, got {config.optim.lr}")
    if not 0 <= config.model.classifier_dropout < 1:
        raise UserError(f"--classifier-dropout must be in [0, 1), got {config.model.classifier_dropout}")
