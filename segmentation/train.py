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
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from distkd.context import BatchContext
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.teacher import Teacher
from distkd.utils.debug_hooks import pause_point
from distkd.utils.distributed import DistInfo, all_reduce_sum, barrier, init_distributed
from distkd.utils.experiment import ExperimentDir
from distkd.utils.logging import setup_logger
from distkd.utils.nonfinite import NonFiniteWatch
from distkd.utils.preemption import Preempted, PreemptionGuard, run_guarded
from distkd.utils.training_state import restore_training_state, training_state
from distkd_cli.progress import Throughput
from segmentation.config import load_config
from segmentation.datasets import (
    CLASS_NAMES,
    NUM_CLASSES,
    get_input_format,
    recorded_input_format,
    reformat,
)
from segmentation.datasets.loaders import build_loaders
from segmentation.engine.inference import evaluate
from segmentation.engine.losses import HeadsKD, PerGPU, SegCrossEntropy
from segmentation.engine.metrics import ConfusionMatrix, format_iou
from segmentation.models import WithAux, build_segmentor, load_segmentor_weights
from segmentation.models.weights import read_weights
from segmentation.options import OptimOptions, RuntimeOptions, SegConfig, check_config


def poly_lr(optim: OptimOptions, iteration: int) -> float:
    return optim.min_lr + (optim.lr - optim.min_lr) * (1 - iteration / optim.max_iterations) ** optim.power


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


def mean_over_ranks(losses: Mapping[str, Tensor]) -> dict[str, float]:
    """The losses averaged over the processes (every rank calls this)."""
    names = sorted(losses)
    stacked = torch.stack([losses[n].detach().float() for n in names])
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    return dict(zip(names, (all_reduce_sum(stacked) / world).tolist()))


def use_amp(runtime: RuntimeOptions, device: torch.device, logger: logging.Logger) -> bool:
    """``--amp`` where it runs (CUDA); elsewhere float32, with a warning."""
    amp = runtime.amp and device.type == "cuda"
    if runtime.amp and not amp:
        logger.warning("--amp needs CUDA; training in float32 on %s", device)
    return amp


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


def log_run(config: SegConfig, info: DistInfo, exp: ExperimentDir, images: tuple[int, int], amp: bool,
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
                o.weight_decay, o.min_lr, config.run.val_interval, "AMP" if amp else "float32")


def train(config: SegConfig, info: DistInfo, guard: PreemptionGuard | None = None) -> float:
    check_config(config, info.world_size, bn_synced(info))
    exp = ExperimentDir(config.run.output, config.run.experiment, "--experiment (or --save-dir)")
    resume_path = exp.check(config.run.resume, config.run.overwrite)
    if info.is_main:
        exp.create(start_over=config.run.overwrite and not resume_path)
    logger = setup_logger("segmentation", exp.path / "log.txt" if info.is_main else None, info.is_main)
    logger.info("command: %s", " ".join(sys.argv))
    device, amp = info.device, use_amp(config.runtime, info.device, logger)
    torch.manual_seed(config.runtime.seed + info.rank)

    gpus_per_process = (config.optim.emulate_gpus or info.world_size) // info.world_size
    config, teacher_checkpoint = read_teacher(config)  # the teacher's input format resolved from its record
    distiller = build_distiller(config, bn_synced(info), gpus_per_process, teacher_checkpoint).to(device)
    del teacher_checkpoint
    student = distiller.student
    trainable = distiller.trainable_modules()
    optim = config.optim
    optimizer = torch.optim.SGD(
        trainable.parameters(), lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    start, best = resume(config, info, resume_path, trainable, optimizer, scaler, logger)
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
    log_run(config, info, exp, (len(train_loader.dataset), len(val_loader.dataset)), amp, gpus_per_process, logger)

    def checkpoint(iteration: int) -> dict:
        return training_state(trainable, optimizer, {"iteration": iteration}, best, config.as_dict(), scaler)

    def validate(net, iteration: int, name: str) -> ConfusionMatrix:
        matrix = evaluate(net, val_loader, NUM_CLASSES, device, config.run.eval_scales, config.run.eval_flip, amp,
                          progress=info.is_main and not config.run.no_progress)
        logger.info("%s iteration %d: mIoU %.4f, pixel acc %.4f\n%s", name, iteration, matrix.miou(),
                    matrix.pixel_accuracy(), format_iou(matrix.iou()))
        return matrix

    if config.run.eval_teacher and distiller.teacher is not None:
        teacher = distiller.teacher  # its network's eval-mode forward (main logits), after the input conversion
        validate(torch.nn.Sequential(teacher.renormalize, teacher.model.model), start, "teacher")

    model.train()
    bar = tqdm(total=stop, initial=start, desc="train", disable=not info.is_main or config.run.no_progress)
    meter = Throughput(info.world_size)  # img/s and time left in the log lines
    iteration = start
    watch = NonFiniteWatch()  # non-finite losses: flagged on the device, read where the loop logs or saves

    def stop_if_nonfinite() -> None:
        if (bad := watch.first()) is not None:
            values = ", ".join(f"{k}={v:.4g}" for k, v in bad[1].items())
            raise UserError(f"non-finite loss at iteration {bad[0]} ({values}); training stopped, the last good "
                            "checkpoint is kept: lower --lr")

    for images, labels, _ in train_loader:
        lr = poly_lr(config.optim, iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            losses = model(images, labels, BatchContext(progress=iteration / config.optim.max_iterations))
        loss = sum(losses.values())
        watch.update(iteration + 1, losses)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        iteration += 1
        bar.update(1)
        meter.step(len(images))

        if iteration % config.run.log_interval == 0 or iteration == stop:
            values = mean_over_ranks({"loss": loss, **losses})
            bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
            speed = meter.text(stop - iteration, what="run")
            losses_text = " ".join(f"{k} {v:.4f}" for k, v in values.items())
            logger.info(f"iteration {iteration}/{stop} lr {lr:.4g} {losses_text}" + (f" | {speed}" if speed else ""))
            if info.is_main:
                row = {"iteration": iteration, "lr": f"{lr:.6g}", **{k: values.get(k, "") for k in TRAIN_COLUMNS}}
                exp.append_metrics(row, "train_log.csv")
                exp.tensorboard({"train/lr": lr, **{f"train/{k}": v for k, v in values.items()}}, iteration)
            stop_if_nonfinite()
        done = iteration == config.optim.max_iterations
        if iteration % config.run.val_interval == 0 or done:
            stop_if_nonfinite()
            matrix = validate(student, iteration, "val")
            miou = matrix.miou() if matrix.miou() == matrix.miou() else 0.0  # NaN: nothing labelled
            if miou > best["value"]:
                best = {"metric": "miou", "value": miou, "at": iteration}
                if info.is_main:
                    exp.save(checkpoint(iteration), is_best=True)
            if info.is_main:
                exp.append_metrics(validation_row(iteration, matrix))
                exp.tensorboard({"val/mIoU": matrix.miou(), "val/pixel_acc": matrix.pixel_accuracy()}, iteration)
                exp.plot_curves("iteration", ["val_miou", "val_pixel_acc"])
        pause_point(0, iteration, info.rank, guard.requested if guard else lambda: False)
        preempted = guard is not None and guard.agreed(iteration)  # every rank stops after the same iteration
        if info.is_main and (iteration % config.run.save_interval == 0 or iteration == stop or preempted):
            stop_if_nonfinite()
            exp.save(checkpoint(iteration), is_best=False)
        if preempted:
            barrier()
            raise Preempted(f"{guard.name()} received: stopped after iteration {iteration}, {exp.last} saved; "
                            "continue with --resume auto")
        if iteration == stop:
            break
    bar.close()
    exp.close()
    logger.info("stopped at iteration %d of %d; best val mIoU %.4f", iteration, config.optim.max_iterations,
                best["value"])
    return best["value"]


TRAIN_COLUMNS = ("loss", "loss_ori", "loss_kd")


def validation_row(iteration: int, matrix: ConfusionMatrix) -> dict[str, object]:
    """One ``metrics.csv`` row: mIoU, pixel accuracy and the per-class IoU (empty: class absent)."""
    iou = matrix.iou().tolist()
    return {"iteration": iteration, "val_miou": f"{matrix.miou():.6f}",
            "val_pixel_acc": f"{matrix.pixel_accuracy():.6f}",
            **{f"iou_{name.replace(' ', '_')}": f"{v:.6f}" if v == v else "" for name, v in zip(CLASS_NAMES, iou)}}
