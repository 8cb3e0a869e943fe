"""The parts a training run is built from: student, teacher, task loss, optimizer, schedule, precision.

Each builder receives the option group it reads (:mod:`classification.options`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from classification.data.catalog import DATASETS, IMAGENET_MEAN, IMAGENET_STD
from classification.engine import StepConfig
from classification.models import build_model
from classification.options import (
    AugmentOptions,
    DataOptions,
    DistillOptions,
    ModelOptions,
    OptimOptions,
    RuntimeOptions,
    TrainConfig,
)
from classification.scheduler import LRSchedule
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.step import amp_dtype as autocast_dtype
from distkd.step import grad_scaler
from distkd.teacher import StoredTeacher, Teacher, renormalize_or_none
from distkd.utils.checkpoint import extract_state_dict, load_state_dict_strict, safe_load
from distkd.utils.distributed import DistInfo
from distkd_cli.callbacks import Callbacks
from distkd_cli.download import check_recorded

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


def amp_dtype(runtime: RuntimeOptions, device: torch.device) -> torch.dtype | None:
    """``--amp`` / ``--amp-dtype``: bf16 where supported (auto), else fp16; None without ``--amp``."""
    return autocast_dtype(runtime.amp, runtime.amp_dtype, device)  # the step policy's (distkd/step.py)


def _dropout_before(module: nn.Module, inputs: tuple) -> tuple:
    return (module.pre_dropout(inputs[0]), *inputs[1:])


def add_classifier_dropout(classifier: nn.Module, p: float) -> None:
    """Dropout on the input of ``classifier``, held by it as ``pre_dropout`` (no parameters: state
    dict keys are unchanged; copies such as the EMA model use their own). ``--classifier-dropout``."""
    classifier.add_module("pre_dropout", nn.Dropout(p))
    classifier.register_forward_pre_hook(_dropout_before)


def build_student(options: ModelOptions, num_classes: int, offline: bool = False) -> nn.Module:
    """The student. As the original: ``--drop`` changes nothing for these models and
    ``--drop-path-rate`` reaches ``timm_*`` models. ``--classifier-dropout`` (an extension) adds
    dropout before the classifier: timm's ``drop_rate``, torchvision MobileNet V2's ``dropout``
    (replacing its built-in 0.2), else :func:`add_classifier_dropout` on the last linear layer."""
    kwargs, p = {}, options.classifier_dropout
    if options.model.startswith("timm_"):
        if options.drop_path_rate > 0:
            kwargs["drop_path_rate"] = options.drop_path_rate
        if p > 0:
            kwargs["drop_rate"] = p
    elif options.model == "tv_mobilenet_v2" and p > 0:
        kwargs["dropout"] = p
    if options.pretrained:  # fine-tuning from published weights (--pretrained, an extension)
        from classification.models.finetune import build_pretrained_model

        model = build_pretrained_model(options.model, num_classes, offline, **kwargs)
    else:
        model = build_model(options.model, num_classes, **kwargs)
    if p > 0 and not kwargs.get("drop_rate") and not kwargs.get("dropout"):
        add_classifier_dropout([m for m in model.modules() if isinstance(m, nn.Linear)][-1], p)
    if options.initial_checkpoint:  # timm's --initial-checkpoint: weights, not a resume
        what = f"--initial-checkpoint '{options.initial_checkpoint}'"
        state = safe_load(options.initial_checkpoint, "initial checkpoint")
        load_state_dict_strict(model, extract_state_dict(state, what), what)
    return model


def build_teacher(distill: DistillOptions, data: DataOptions, num_classes: int, logger: logging.Logger) -> Teacher:
    """The frozen teacher, fed the data converted to the normalisation its weights expect when that
    is known and differs from the data's (:func:`pretrained_normalization`, :func:`recorded_normalization`);
    the conversion is logged."""
    name, path = distill.teacher_model, distill.teacher_ckpt
    teacher = build_model(name, num_classes, pretrained=distill.teacher_pretrained and not path, offline=data.offline)
    expected = None
    if path:
        from classification.teachers import missing_teacher_hint

        if hint := missing_teacher_hint(path):
            raise UserError(hint)
        check_recorded(path)  # a downloaded teacher (tools/get_teachers.py) still matches its SHA-256
        what = f"teacher checkpoint '{path}'"
        ckpt = safe_load(path, "teacher checkpoint")
        load_state_dict_strict(teacher, extract_state_dict(ckpt, what), what)
        expected = recorded_normalization(ckpt)
        logger.info(f"teacher {name} loaded from {path}")
    elif not distill.teacher_pretrained:
        logger.warning("teacher has random weights (--teacher-no-pretrained): for debugging only")
    else:
        expected = pretrained_normalization(name, teacher)
    renormalize = renormalize_or_none(data.normalization, expected)
    if renormalize is not None:
        logger.warning(f"teacher {name} expects another input normalisation than the data's: "
                       f"its input is converted on the device, {renormalize.extra_repr()}")
    return Teacher(teacher, renormalize)


def pretrained_normalization(name: str, model: nn.Module) -> Normalization:
    """The (mean, std) of published weights: timm's ``pretrained_cfg``; ImageNet's for torchvision."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if name.startswith("timm_") and "mean" in cfg and "std" in cfg:
        return tuple(cfg["mean"]), tuple(cfg["std"])
    return IMAGENET_MEAN, IMAGENET_STD


def recorded_normalization(ckpt: object) -> Normalization | None:
    """The (mean, std) a checkpoint of this trainer was trained with (its ``args``); None when unknown."""
    recorded = ckpt.get("args") if isinstance(ckpt, dict) else None
    if not isinstance(recorded, dict) or recorded.get("dataset") not in DATASETS:
        return None
    return DataOptions(dataset=recorded["dataset"], image_mean=recorded.get("image_mean"),
                       image_std=recorded.get("image_std")).normalization


def build_task_loss(augment: AugmentOptions, mixup_on: bool) -> nn.Module:
    if mixup_on:
        return SoftTargetCrossEntropy()
    if augment.smoothing > 0:
        return LabelSmoothingCrossEntropy(augment.smoothing)
    return nn.CrossEntropyLoss()


def build_optimizer(optim: OptimOptions, params: nn.Module) -> torch.optim.Optimizer:
    """timm's SGD (Nesterov unless ``--sgd-no-nesterov``), RMSprop, RMSpropTF or AdamW with the
    original's arguments; weight decay skips biases and norm weights unless ``--opt-no-filter``."""
    name = optim.opt
    kwargs: dict = {}
    if name == "sgd":
        name = "momentum" if optim.sgd_no_nesterov else "sgd"  # timm: 'sgd' is Nesterov SGD
        kwargs["momentum"] = optim.momentum
    elif name in ("rmsprop", "rmsproptf"):
        kwargs.update(momentum=optim.momentum, eps=optim.opt_eps)
        if name == "rmsprop":
            kwargs["alpha"] = 0.99  # torch's default, as the original (timm's 'rmsprop' uses 0.9)
    else:
        kwargs["eps"] = optim.opt_eps
        if optim.opt_betas:
            kwargs["betas"] = tuple(optim.opt_betas)
    return create_optimizer_v2(params, opt=name, lr=optim.lr, weight_decay=optim.weight_decay,
                               filter_bias_and_bn=not optim.opt_no_filter, **kwargs)


def build_schedule(optim: OptimOptions) -> LRSchedule:
    return LRSchedule(optim.lr, optim.epochs, optim.sched, optim.warmup_epochs, optim.warmup_lr, optim.decay_epochs,
                      optim.decay_rate, optim.min_lr, optim.decay_by_epoch)


@dataclass
class Parts:
    """What a run trains with, once built."""

    student: nn.Module
    distiller: Distiller
    model: nn.Module  # the distiller, its student wrapped for DDP
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler | None
    ema: ModelEmaV3 | None
    step: StepConfig
    kd: object = None


def build_distiller(config: TrainConfig, dist: DistInfo, num_classes: int, mixup_fn,
                    logger) -> tuple[Distiller, object]:
    """Student (SyncBatchNorm with ``--sync-bn``), teacher (a network or a store) and losses."""
    student = build_student(config.model, num_classes, config.data.offline)
    if config.model.sync_bn and dist.distributed:  # timm's --sync-bn (the paper's recipes keep per-GPU statistics)
        if dist.device.type != "cuda":
            raise UserError("--sync-bn needs CUDA devices (torch's SyncBatchNorm does not run on CPU): drop --sync-bn")
        student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
        logger.info("--sync-bn: the student's BatchNorm layers are SyncBatchNorm over the processes")
    distill, teacher = config.distill, None
    kd = distill.method()  # valid: check_config parsed it once
    if kd is not None:  # the teacher's outputs: the network, or a teacher store's (no network, docs/teacher_store.md)
        teacher = StoredTeacher() if distill.teacher_store else build_teacher(distill, config.data, num_classes, logger)
    try:
        distiller = Distiller(student, build_task_loss(config.augment, mixup_fn is not None), teacher,
                              kd.build() if kd else None, distill.ori_loss_weight, kd.weight if kd else 1.0,
                              distill.student_module, distill.teacher_module).to(dist.device)
    except AttributeError as err:  # get_submodule of a name that is not there
        raise UserError(f"--student-module / --teacher-module: {err}") from None
    except ValueError as err:  # ls=1 on the feature maps of named modules
        raise UserError(str(err)) from None
    return distiller, kd


def build_parts(config: TrainConfig, dist: DistInfo, num_classes: int, mixup_fn, val_loader, logger,
                stop_requested=lambda: False) -> Parts:
    """``stop_requested``: whether a pre-emption signal arrived (the callbacks' step state carries it)."""
    device = dist.device
    distiller, kd = build_distiller(config, dist, num_classes, mixup_fn, logger)
    student = distiller.student
    if config.runtime.channels_last:
        distiller.to(memory_format=torch.channels_last)
    distiller.prepare(next(iter(val_loader))[0][:2].to(device))
    logger.info(f"student {config.model.model}: {sum(p.numel() for p in student.parameters()) / 1e6:.2f}M params"
                + (f" | teacher {config.distill.teacher_model} | kd {kd}" if distiller.teacher is not None else ""))
    optim = config.optim
    optimizer = build_optimizer(optim, distiller.trainable_modules())
    dtype = amp_dtype(config.runtime, device)
    scaler = grad_scaler(dtype, device)  # float16 on CUDA only
    ema = ModelEmaV3(student, decay=optim.model_ema_decay) if optim.model_ema else None
    if config.runtime.compile:
        student.compile()
    if dist.distributed:
        ids = [dist.local_rank] if device.type == "cuda" else None
        distiller.distribute(lambda module: DistributedDataParallel(module, device_ids=ids))  # the teacher stays out
    cfg = StepConfig(device, amp_dtype=dtype, scaler=scaler, clip_grad=optim.clip, accum_steps=optim.grad_accum_steps,
                     seed=config.runtime.seed, rank=dist.rank, channels_last=config.runtime.channels_last,
                     mixup_fn=mixup_fn, ema=ema, ema_target=student, log_interval=config.run.log_interval,
                     max_iters=config.run.max_iters_per_epoch, show_progress=dist.is_main, epochs=optim.epochs,
                     world_size=dist.world_size, callbacks=Callbacks.from_env(), stop_requested=stop_requested)
    return Parts(student, distiller, distiller, optimizer, build_schedule(optim), scaler, ema, cfg, kd)
