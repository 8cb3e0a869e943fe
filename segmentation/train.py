"""Train a Cityscapes segmentation network, alone (baseline / teacher) or distilled (DIST, the paper's).

Read top to bottom: ``main`` and ``train``: data, models, optimizer, resume, then the iteration loop
(:mod:`segmentation.engine.loop`) with poly learning rate, periodic validation (mIoU) and atomic checkpoints. A run with
``--teacher-model`` distils; without one it trains a baseline. Launch with ``torchrun`` for
several GPUs (``--batch-size`` is the global batch, split over the processes).

    loss = CE(main) + 0.4 CE(aux) + kd_loss_weight * (KD(main_s, main_t) + 0.4 KD(aux_s, aux_t))
    lr(i) = min_lr + (lr - min_lr) * (1 - i / max_iterations) ** 0.9

KD is the registry's method ``--kd`` (default ``dist``, tau 1, as the paper; any method that takes
per-pixel logits, :mod:`distkd.losses.registry`), every pixel a sample.

Options, their paper aliases and defaults: :mod:`segmentation.config`. The experiment folder,
checkpoint format and resume rules are the ones the classification trainer uses
(:mod:`distkd.utils.experiment`, :mod:`distkd.utils.training_state`): ``metrics.csv`` holds one
row per validation, ``train_log.csv`` the losses every ``--log-interval`` iterations.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.losses import KDConfig, kd_config
from distkd.step import StepPolicy, amp_dtype, grad_scaler
from distkd.teacher import Teacher
from distkd.utils.distributed import DistInfo, emulated_steps, init_distributed
from distkd.utils.experiment import ExperimentDir
from distkd.utils.logging import setup_logger
from distkd.utils.preemption import PreemptionGuard, run_guarded
from distkd.utils.training_state import restore_training_state
from segmentation.config import parse_args
from segmentation.datasets import (
    NUM_CLASSES,
    Cityscapes,
    EvalTransform,
    IterationBatchSampler,
    ShardSampler,
    TrainTransform,
    get_input_format,
    recorded_input_format,
    reformat,
)
from segmentation.engine.inference import evaluate
from segmentation.engine.loop import train_iterations
from segmentation.engine.losses import HeadsKD, PerGPU, SegCrossEntropy
from segmentation.engine.metrics import ConfusionMatrix, format_iou
from segmentation.models import WithAux, build_segmentor, default_backbone, load_segmentor_weights
from segmentation.models.weights import read_weights


def check_args(args: argparse.Namespace, world_size: int, synced_bn: bool = False) -> ExperimentDir:
    args.student_backbone = args.student_backbone or default_backbone(args.student_model)  # recorded in args.yaml
    if args.batch_size % world_size:
        raise UserError(f"--batch-size {args.batch_size} (global) must be divisible by the {world_size} processes")
    if args.batch_size // world_size < 2 and not synced_bn:
        raise UserError(f"--batch-size {args.batch_size} leaves one image per process; BatchNorm needs at least 2")
    check_emulation(args, world_size)
    if args.teacher_model and not args.teacher_ckpt:
        raise UserError("distillation needs the trained teacher: pass --teacher-ckpt PATH")
    if args.kd and not args.teacher_model:
        raise UserError(f"--kd {args.kd} needs a teacher: pass --teacher-model NAME and --teacher-ckpt PATH")
    if args.teacher_model:
        kd_from_args(args)  # valid, and a method segmentation can run
    kind = args.kd if args.teacher_model else "baseline"
    args.experiment = args.experiment or f"{args.student_model}_{args.student_backbone}-{kind}-cityscapes"
    return ExperimentDir(args.output, args.experiment, "--experiment (or --save-dir)")


def kd_from_args(args: argparse.Namespace) -> KDConfig:
    """The ``kd`` configuration (``--kd``, ``--kd-loss-kwargs`` with ``--kd-temperature``, ``--kd-loss-weight``)."""
    try:
        kd = kd_config(args.kd, args.kd_loss_kwargs, args.kd_loss_weight)
    except ValueError as err:
        raise UserError(str(err)) from None
    if reason := kd.refusal("segmentation", dense=True, targets=False, features=False):
        raise UserError(reason)
    return kd


def check_emulation(args: argparse.Namespace, world_size: int) -> None:
    """``--emulate-gpus N``: N a multiple of the processes, the batch split into N equal parts."""
    gpus = args.emulate_gpus
    if gpus is None:
        return
    emulated_steps(gpus, world_size)
    if args.batch_size % gpus:
        raise UserError(f"--batch-size {args.batch_size} does not split over --emulate-gpus {gpus}: "
                        f"give a batch that is a multiple of {gpus} ({gpus * max(1, args.batch_size // gpus)}, "
                        f"{gpus * (args.batch_size // gpus + 1)}, ...)")


def bn_synced(info: DistInfo) -> bool:
    """Whether BatchNorm computes its statistics over all processes (SyncBatchNorm, CUDA only)."""
    return info.distributed and info.device.type == "cuda"


def sync_batchnorm(student: torch.nn.Module) -> torch.nn.Module:
    """The student with SyncBatchNorm (torch's refuses CPU tensors: only where :func:`bn_synced`)."""
    from timm.layers import convert_sync_batchnorm

    return convert_sync_batchnorm(student)


def build_loaders(args: argparse.Namespace, rank: int, world_size: int, start_iteration: int, stop_iteration: int):
    train_transform = TrainTransform(tuple(args.crop_size), input_format=args.input_format)
    train_set = Cityscapes(args.data_path, "train", args.train_list, train_transform)
    val_set = Cityscapes(args.data_path, "val", args.val_list, EvalTransform(args.input_format))
    batches = IterationBatchSampler(
        len(train_set), args.batch_size // world_size, stop_iteration, start_iteration, rank, world_size, args.seed
    )
    train_loader = DataLoader(  # own generator: the global RNG (restored on resume) is left alone
        train_set, batch_sampler=batches, num_workers=args.workers, pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(args.seed + rank + start_iteration),
    )
    val_loader = DataLoader(
        val_set, batch_size=1, sampler=ShardSampler(len(val_set), rank, world_size), num_workers=args.workers,
        generator=torch.Generator(),
    )
    return train_loader, val_loader


def build_distiller(args: argparse.Namespace, synced_bn: bool, gpus_per_process: int = 1) -> Distiller:
    """``synced_bn``: SyncBatchNorm over the processes; ``gpus_per_process`` > 1 (``--emulate-gpus``):
    both losses computed per emulated GPU and averaged (:class:`~segmentation.engine.losses.PerGPU`),
    BatchNorm over the process's whole batch."""
    student = build_segmentor(
        args.student_model, args.student_backbone, NUM_CLASSES, False if args.no_aux else None,
        args.student_pretrained_base,
    )  # fmt: skip
    if synced_bn:
        student = sync_batchnorm(student)

    def per_gpu(loss: torch.nn.Module) -> torch.nn.Module:
        return PerGPU(loss, gpus_per_process) if gpus_per_process > 1 else loss

    task_loss = per_gpu(SegCrossEntropy(args.aux_weight))
    if not args.teacher_model:
        return Distiller(student, task_loss)
    teacher = build_segmentor(args.teacher_model, args.teacher_backbone, NUM_CLASSES)
    checkpoint = read_weights(args.teacher_ckpt, "teacher checkpoint")
    load_segmentor_weights(teacher, args.teacher_ckpt, "teacher checkpoint", checkpoint)
    args.teacher_input_format = teacher_input_format(args, recorded_input_format(checkpoint))
    renormalize = None
    if args.teacher_input_format != args.input_format:
        renormalize = reformat(get_input_format(args.input_format), get_input_format(args.teacher_input_format))
    kd = kd_from_args(args)
    kd_loss = per_gpu(HeadsKD(kd.build(), args.aux_weight))  # main and aux heads
    return Distiller(student, task_loss, Teacher(WithAux(teacher), renormalize), kd_loss, 1.0, kd.weight)


def teacher_input_format(args: argparse.Namespace, recorded: str | None) -> str:
    """The teacher's format: its checkpoint's record (an explicit option must agree), else the option,
    else the student's."""
    if recorded is not None and args.teacher_input_format not in (None, recorded):
        raise UserError(
            f"--teacher-input-format {args.teacher_input_format} contradicts the teacher checkpoint "
            f"'{args.teacher_ckpt}', trained with input format '{recorded}': drop the option"
        )
    return recorded or args.teacher_input_format or args.input_format


def autocast_dtype(args: argparse.Namespace, device: torch.device, logger: logging.Logger) -> torch.dtype | None:
    """``--amp --amp-dtype``'s (:func:`distkd.step.amp_dtype`); float16 on CUDA only, else float32 (a warning)."""
    dtype = amp_dtype(args.amp, args.amp_dtype, device)
    if dtype == torch.float16 and device.type != "cuda":
        logger.warning("--amp --amp-dtype float16 needs CUDA; training in float32 on %s", device)
        return None
    return dtype


def main(argv: Sequence[str] | None = None) -> float:
    args = parse_args(argv)
    info = init_distributed(args.device)
    return run_guarded(info, lambda guard: train(args, info, guard))


def train(args: argparse.Namespace, info: DistInfo, guard: PreemptionGuard | None = None) -> float:
    exp = check_args(args, info.world_size, bn_synced(info))
    resume_path = exp.check(args.resume, args.overwrite)
    if info.is_main:
        exp.create(start_over=args.overwrite and not resume_path)
    logger = setup_logger("segmentation", exp.path / "log.txt" if info.is_main else None, info.is_main)
    logger.info("command: %s", " ".join(sys.argv))
    device, dtype = info.device, autocast_dtype(args, info.device, logger)
    torch.manual_seed(args.seed + info.rank)

    gpus_per_process = (args.emulate_gpus or info.world_size) // info.world_size
    distiller = build_distiller(args, bn_synced(info), gpus_per_process).to(device)
    trainable = distiller.trainable_modules()
    optimizer = torch.optim.SGD(
        trainable.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    policy = StepPolicy(device, dtype, grad_scaler(dtype, device), seed=args.seed, rank=info.rank)
    start, best = 0, {"metric": "miou", "value": -1.0, "at": 0}
    if resume_path:
        ckpt = restore_training_state(resume_path, trainable, optimizer, policy.scaler)
        recorded = recorded_input_format(ckpt)
        if recorded not in (None, args.input_format):
            raise UserError(f"resume checkpoint '{resume_path}' was trained with --input-format {recorded}, this run "
                            f"has {args.input_format}: pass --input-format {recorded}")
        start, best = int(ckpt["position"]["iteration"]), ckpt["best"]
        if info.rank:  # the checkpoint holds rank 0's RNG; the other ranks reseed
            torch.manual_seed(args.seed + info.rank + start)
        logger.info("resumed from %s at iteration %d (best mIoU %.4f)", resume_path, start, best["value"])
    stop = min(args.stop_iteration or args.max_iterations, args.max_iterations)
    train_loader, val_loader = build_loaders(args, info.rank, info.world_size, start, stop)
    model = distiller
    if info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        distiller.distribute(lambda module: DistributedDataParallel(module, device_ids=ids))  # the teacher stays out
    if info.is_main:
        exp.write_args(args)
        for name in ("metrics.csv", "train_log.csv"):  # rows written after the checkpoint (a kill) come again
            exp.truncate_metrics("iteration", start, name)
    logger.info("experiment %s | student %s/%s, teacher %s, %d train / %d val images, %d iterations, global batch %d",
                exp.path, args.student_model, args.student_backbone,
                f"{args.teacher_model} | kd {kd_from_args(args)}" if args.teacher_model else "none",
                len(train_loader.dataset), len(val_loader.dataset), args.max_iterations, args.batch_size)
    if gpus_per_process > 1:
        logger.info("emulating %d GPUs of %d crops: %d per process; BatchNorm over %s, cross-entropy and DIST per "
                    "emulated GPU, averaged", args.emulate_gpus, args.batch_size // args.emulate_gpus,
                    gpus_per_process, "all processes' crops" if bn_synced(info) else "the process's crops")
    logger.info("input format %s%s; weight decay %g, poly floor %g, validation every %d iterations, %s",
                args.input_format, f" (teacher: {args.teacher_input_format})" if args.teacher_model else "",
                args.weight_decay, args.min_lr, args.val_interval,
                f"AMP {str(dtype).split('.')[-1]}" if dtype else "float32")

    def validate(net, iteration: int, name: str) -> ConfusionMatrix:
        matrix = evaluate(net, val_loader, NUM_CLASSES, device, args.eval_scales, args.eval_flip, dtype,
                          progress=info.is_main and not args.no_progress)
        logger.info("%s iteration %d: mIoU %.4f, pixel acc %.4f\n%s", name, iteration, matrix.miou(),
                    matrix.pixel_accuracy(), format_iou(matrix.iou()))
        return matrix

    if args.eval_teacher and distiller.teacher is not None:
        teacher = distiller.teacher  # its network's eval-mode forward (main logits), after the input conversion
        validate(torch.nn.Sequential(teacher.renormalize, teacher.model.model), start, "teacher")

    last, best = train_iterations(args, info, model, optimizer, policy, train_loader, validate, exp, logger,
                                  start, stop, best, guard)
    exp.close()
    logger.info("stopped at iteration %d of %d; best val mIoU %.4f", last, args.max_iterations, best["value"])
    return best["value"]
