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

import argparse
import sys
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from distkd.context import BatchContext
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.losses import KDConfig, kd_config
from distkd.teacher import Teacher
from distkd.utils.debug_hooks import pause_point
from distkd.utils.distributed import DistInfo, all_reduce_sum, barrier, emulated_steps, init_distributed
from distkd.utils.experiment import ExperimentDir
from distkd.utils.logging import setup_logger
from distkd.utils.nonfinite import NonFiniteWatch
from distkd.utils.preemption import Preempted, PreemptionGuard, run_guarded
from distkd.utils.training_state import restore_training_state, training_state
from distkd_cli.progress import Throughput
from segmentation.config import parse_args
from segmentation.datasets import (
    CLASS_NAMES,
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
from segmentation.engine.losses import HeadsKD, PerGPU, SegCrossEntropy
from segmentation.engine.metrics import ConfusionMatrix, format_iou
from segmentation.models import WithAux, build_segmentor, default_backbone, load_segmentor_weights
from segmentation.models.weights import read_weights


def poly_lr(args: argparse.Namespace, iteration: int) -> float:
    return args.min_lr + (args.lr - args.min_lr) * (1 - iteration / args.max_iterations) ** args.power


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


def main(argv: Sequence[str] | None = None) -> float:
    args = parse_args(argv)
    info = init_distributed(args.device)
    return run_guarded(info, lambda guard: train(args, info, guard))


def mean_over_ranks(losses: Mapping[str, Tensor]) -> dict[str, float]:
    """The losses averaged over the processes (every rank calls this)."""
    names = sorted(losses)
    stacked = torch.stack([losses[n].detach().float() for n in names])
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    return dict(zip(names, (all_reduce_sum(stacked) / world).tolist()))


def train(args: argparse.Namespace, info: DistInfo, guard: PreemptionGuard | None = None) -> float:
    exp = check_args(args, info.world_size, bn_synced(info))
    resume_path = exp.check(args.resume, args.overwrite)
    if info.is_main:
        exp.create(start_over=args.overwrite and not resume_path)
    logger = setup_logger("segmentation", exp.path / "log.txt" if info.is_main else None, info.is_main)
    logger.info("command: %s", " ".join(sys.argv))
    device, amp = info.device, args.amp and info.device.type == "cuda"
    if args.amp and not amp:
        logger.warning("--amp needs CUDA; training in float32 on %s", device)
    torch.manual_seed(args.seed + info.rank)

    gpus_per_process = (args.emulate_gpus or info.world_size) // info.world_size
    distiller = build_distiller(args, bn_synced(info), gpus_per_process).to(device)
    student = distiller.student
    trainable = distiller.trainable_modules()
    optimizer = torch.optim.SGD(
        trainable.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    start, best = 0, {"metric": "miou", "value": -1.0, "at": 0}
    if resume_path:
        ckpt = restore_training_state(resume_path, trainable, optimizer, scaler)
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
        exp.write_args(vars(args))
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
                args.weight_decay, args.min_lr, args.val_interval, "AMP" if amp else "float32")

    def checkpoint(iteration: int) -> dict:
        return training_state(trainable, optimizer, {"iteration": iteration}, best, vars(args), scaler)

    def validate(net, iteration: int, name: str) -> ConfusionMatrix:
        matrix = evaluate(net, val_loader, NUM_CLASSES, device, args.eval_scales, args.eval_flip, amp,
                          progress=info.is_main and not args.no_progress)
        logger.info("%s iteration %d: mIoU %.4f, pixel acc %.4f\n%s", name, iteration, matrix.miou(),
                    matrix.pixel_accuracy(), format_iou(matrix.iou()))
        return matrix

    if args.eval_teacher and distiller.teacher is not None:
        teacher = distiller.teacher  # its network's eval-mode forward (main logits), after the input conversion
        validate(torch.nn.Sequential(teacher.renormalize, teacher.model.model), start, "teacher")

    model.train()
    bar = tqdm(total=stop, initial=start, desc="train", disable=not info.is_main or args.no_progress)
    meter = Throughput(info.world_size)  # img/s and time left in the log lines
    iteration = start
    watch = NonFiniteWatch()  # non-finite losses: flagged on the device, read where the loop logs or saves

    def stop_if_nonfinite() -> None:
        if (bad := watch.first()) is not None:
            values = ", ".join(f"{k}={v:.4g}" for k, v in bad[1].items())
            raise UserError(f"non-finite loss at iteration {bad[0]} ({values}); training stopped, the last good "
                            "checkpoint is kept: lower --lr")

    for images, labels, _ in train_loader:
        lr = poly_lr(args, iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            losses = model(images, labels, BatchContext(progress=iteration / args.max_iterations))
        loss = sum(losses.values())
        watch.update(iteration + 1, losses)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        iteration += 1
        bar.update(1)
        meter.step(len(images))

        if iteration % args.log_interval == 0 or iteration == stop:
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
        done = iteration == args.max_iterations
        if iteration % args.val_interval == 0 or done:
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
        if info.is_main and (iteration % args.save_interval == 0 or iteration == stop or preempted):
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
    logger.info("stopped at iteration %d of %d; best val mIoU %.4f", iteration, args.max_iterations, best["value"])
    return best["value"]


TRAIN_COLUMNS = ("loss", "loss_ori", "loss_kd")


def validation_row(iteration: int, matrix: ConfusionMatrix) -> dict[str, object]:
    """One ``metrics.csv`` row: mIoU, pixel accuracy and the per-class IoU (empty: class absent)."""
    iou = matrix.iou().tolist()
    return {"iteration": iteration, "val_miou": f"{matrix.miou():.6f}",
            "val_pixel_acc": f"{matrix.pixel_accuracy():.6f}",
            **{f"iou_{name.replace(' ', '_')}": f"{v:.6f}" if v == v else "" for name, v in zip(CLASS_NAMES, iou)}}
