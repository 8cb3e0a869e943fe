"""Train a Cityscapes segmentation network, alone (baseline / teacher) or distilled (DIST, the paper's).

Read top to bottom: ``main`` and ``train``: data, models, optimizer, resume, the iteration loop
with poly learning rate, periodic validation (mIoU) and atomic checkpoints. A run with
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

import logging
import sys
from collections.abc import Sequence

import torch
from torch.nn.parallel import DistributedDataParallel

from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.step import StepPolicy, amp_dtype, grad_scaler
from distkd.teacher import Teacher
from distkd.utils.distributed import DistInfo, init_distributed
from distkd.utils.experiment import ExperimentDir
from distkd.utils.logging import setup_logger
from distkd.utils.preemption import PreemptionGuard, run_guarded
from distkd.utils.training_state import restore_training_state
from segmentation.config import load_config
from segmentation.datasets import (
    NUM_CLASSES,
    get_input_format,
    recorded_input_format,
    reformat,
)
from segmentation.datasets.loaders import build_loaders
from segmentation.engine.inference import evaluate
from segmentation.engine.loop import train_iterations
from segmentation.engine.losses import HeadsKD, PerGPU, SegCrossEntropy
from segmentation.engine.metrics import ConfusionMatrix, format_iou
from segmentation.models import WithAux, build_segmentor, load_segmentor_weights
from segmentation.models.weights import read_weights
from segmentation.options import RuntimeOptions, SegConfig, check_config


def bn_synced(info: DistInfo) -> bool:
    """Whether BatchNorm computes its statistics over all processes (SyncBatchNorm, CUDA only)."""
    return info.distributed and info.device.type == "cuda"


def sync_batchnorm(student: torch.nn.Module) -> torch.nn.Module:
    """The student with SyncBatchNorm (torch's refuses CPU tensors: only where :func:`bn_synced`)."""
    from timm.layers import convert_sync_batchnorm

    return convert_sync_batchnorm(student)


def read_teacher(config: SegConfig) -> tuple[SegConfig, object | None]:
    """The configuration with the teacher's input format resolved from its checkpoint, and that checkpoint."""
    if not config.distill.teacher_model:
        return config, None
    checkpoint = read_weights(config.distill.teacher_ckpt, "teacher checkpoint")
    return config.with_teacher_record(recorded_input_format(checkpoint)), checkpoint


def build_distiller(config: SegConfig, synced_bn: bool, gpus_per_process: int = 1,
                    teacher_checkpoint: object | None = None) -> Distiller:
    """``synced_bn``: SyncBatchNorm over the processes; ``gpus_per_process`` > 1 (``--emulate-gpus``):
    both losses computed per emulated GPU and averaged (:class:`~segmentation.engine.losses.PerGPU`),
    BatchNorm over the process's whole batch. ``teacher_checkpoint``: :func:`read_teacher`'s (else read here)."""
    s, distill, aux_weight = config.student, config.distill, config.optim.aux_weight
    student = build_segmentor(s.student_model, s.student_backbone, NUM_CLASSES, False if s.no_aux else None,
                              s.student_pretrained_base)
    if synced_bn:
        student = sync_batchnorm(student)

    def per_gpu(loss: torch.nn.Module) -> torch.nn.Module:
        return PerGPU(loss, gpus_per_process) if gpus_per_process > 1 else loss

    task_loss = per_gpu(SegCrossEntropy(aux_weight))
    if not distill.teacher_model:
        return Distiller(student, task_loss)
    if teacher_checkpoint is None:
        config, teacher_checkpoint = read_teacher(config)
    else:
        config = config.with_teacher_record(recorded_input_format(teacher_checkpoint))
    teacher = build_segmentor(distill.teacher_model, distill.teacher_backbone, NUM_CLASSES)
    load_segmentor_weights(teacher, distill.teacher_ckpt, "teacher checkpoint", teacher_checkpoint)
    student_format, teacher_format = config.data.input_format, config.distill.teacher_input_format
    renormalize = None
    if teacher_format != student_format:
        renormalize = reformat(get_input_format(student_format), get_input_format(teacher_format))
    kd = distill.method()
    kd_loss = per_gpu(HeadsKD(kd.build(), aux_weight))  # main and aux heads
    return Distiller(student, task_loss, Teacher(WithAux(teacher), renormalize), kd_loss, 1.0, kd.weight)


def main(argv: Sequence[str] | None = None) -> float:
    config = load_config(argv)
    info = init_distributed(config.runtime.device)
    return run_guarded(info, lambda guard: train(config, info, guard))


def autocast_dtype(runtime: RuntimeOptions, device: torch.device, logger: logging.Logger) -> torch.dtype | None:
    """``--amp --amp-dtype``'s (:func:`distkd.step.amp_dtype`); float16 on CUDA only, else float32 (a warning)."""
    dtype = amp_dtype(runtime.amp, runtime.amp_dtype, device)
    if dtype == torch.float16 and device.type != "cuda":
        logger.warning("--amp --amp-dtype float16 needs CUDA; training in float32 on %s", device)
        return None
    return dtype


def resume(config: SegConfig, info: DistInfo, resume_path: str | None, trainable, optimizer, scaler,
           logger: logging.Logger) -> tuple[int, dict]:
    """The iteration to start at and the best score so far: ``(0, none)``, or the resume checkpoint's."""
    if not resume_path:
        return 0, {"metric": "miou", "value": -1.0, "at": 0}
    ckpt = restore_training_state(resume_path, trainable, optimizer, scaler)
    recorded, input_format = recorded_input_format(ckpt), config.data.input_format
    if recorded not in (None, input_format):
        raise UserError(f"resume checkpoint '{resume_path}' was trained with --input-format {recorded}, this run "
                        f"has {input_format}: pass --input-format {recorded}")
    start, best = int(ckpt["position"]["iteration"]), ckpt["best"]
    if info.rank:  # the checkpoint holds rank 0's RNG; the other ranks reseed
        torch.manual_seed(config.runtime.seed + info.rank + start)
    logger.info("resumed from %s at iteration %d (best mIoU %.4f)", resume_path, start, best["value"])
    return start, best


def log_run(config: SegConfig, info: DistInfo, exp: ExperimentDir, images: tuple[int, int], dtype: torch.dtype | None,
            gpus_per_process: int, logger: logging.Logger) -> None:
    """What this run trains, on what (``images``: train and val), and how."""
    s, d, o, batch = config.student, config.distill, config.optim, config.data.batch_size
    logger.info("experiment %s | student %s/%s, teacher %s, %d train / %d val images, %d iterations, global batch %d",
                exp.path, s.student_model, s.student_backbone,
                f"{d.teacher_model} | kd {d.method()}" if d.teacher_model else "none",
                images[0], images[1], o.max_iterations, batch)
    if gpus_per_process > 1:
        logger.info("emulating %d GPUs of %d crops: %d per process; BatchNorm over %s, cross-entropy and DIST per "
                    "emulated GPU, averaged", o.emulate_gpus, batch // o.emulate_gpus,
                    gpus_per_process, "all processes' crops" if bn_synced(info) else "the process's crops")
    logger.info("input format %s%s; weight decay %g, poly floor %g, validation every %d iterations, %s",
                config.data.input_format, f" (teacher: {d.teacher_input_format})" if d.teacher_model else "",
                o.weight_decay, o.min_lr, config.run.val_interval,
                f"AMP {str(dtype).split('.')[-1]}" if dtype else "float32")


def train(config: SegConfig, info: DistInfo, guard: PreemptionGuard | None = None) -> float:
    check_config(config, info.world_size, bn_synced(info))
    exp = ExperimentDir(config.run.output, config.run.experiment, "--experiment (or --save-dir)")
    resume_path = exp.check(config.run.resume, config.run.overwrite)
    if info.is_main:
        exp.create(start_over=config.run.overwrite and not resume_path)
    logger = setup_logger("segmentation", exp.path / "log.txt" if info.is_main else None, info.is_main)
    logger.info("command: %s", " ".join(sys.argv))
    device, dtype = info.device, autocast_dtype(config.runtime, info.device, logger)
    torch.manual_seed(config.runtime.seed + info.rank)

    gpus_per_process = (config.optim.emulate_gpus or info.world_size) // info.world_size
    config, teacher_checkpoint = read_teacher(config)  # the teacher's input format resolved from its record
    distiller = build_distiller(config, bn_synced(info), gpus_per_process, teacher_checkpoint).to(device)
    del teacher_checkpoint
    trainable = distiller.trainable_modules()
    optim = config.optim
    optimizer = torch.optim.SGD(
        trainable.parameters(), lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
    )
    policy = StepPolicy(device, dtype, grad_scaler(dtype, device), seed=config.runtime.seed, rank=info.rank)
    start, best = resume(config, info, resume_path, trainable, optimizer, policy.scaler, logger)
    stop = config.run.stop(optim.max_iterations)
    train_loader, val_loader = build_loaders(config.data, config.runtime.seed, info.rank, info.world_size, start, stop)
    model = distiller
    if info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        distiller.distribute(lambda module: DistributedDataParallel(module, device_ids=ids))  # the teacher stays out
    if info.is_main:
        exp.write_args(config.as_dict())
        for name in ("metrics.csv", "train_log.csv"):  # rows written after the checkpoint (a kill) come again
            exp.truncate_metrics("iteration", start, name)
    log_run(config, info, exp, (len(train_loader.dataset), len(val_loader.dataset)), dtype, gpus_per_process,
            logger)

    def validate(net, iteration: int, name: str) -> ConfusionMatrix:
        matrix = evaluate(net, val_loader, NUM_CLASSES, device, config.run.eval_scales, config.run.eval_flip, dtype,
                          progress=info.is_main and not config.run.no_progress)
        logger.info("%s iteration %d: mIoU %.4f, pixel acc %.4f\n%s", name, iteration, matrix.miou(),
                    matrix.pixel_accuracy(), format_iou(matrix.iou()))
        return matrix

    if config.run.eval_teacher and distiller.teacher is not None:
        teacher = distiller.teacher  # its network's eval-mode forward (main logits), after the input conversion
        validate(torch.nn.Sequential(teacher.renormalize, teacher.model.model), start, "teacher")

    last, best = train_iterations(config, info, model, optimizer, policy, train_loader, validate, exp, logger,
                                  start, stop, best, guard)
    exp.close()
    logger.info("stopped at iteration %d of %d; best val mIoU %.4f", last, config.optim.max_iterations, best["value"])
    return best["value"]

