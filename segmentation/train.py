"""Train a Cityscapes segmentation network, alone (baseline / teacher) or distilled with DIST.

Read top to bottom: options, then ``main``: data, models, optimizer, resume, the iteration loop
with poly learning rate, periodic validation (mIoU) and atomic checkpoints. A run with
``--teacher-model`` distils; without one it trains a baseline. Launch with ``torchrun`` for
several GPUs (``--batch-size`` is the global batch, split over the processes).

    loss = CE(main) + 0.4 CE(aux) + lambda_kd * (DIST(main_s, main_t) + 0.4 DIST(aux_s, aux_t))
    lr(i) = min_lr + (lr - min_lr) * (1 - i / max_iterations) ** 0.9

Defaults are the paper's (``segmentation/train_kd.py`` / ``train_baseline.py`` of hunto/DIST_KD):
deep-stem ``resnet*_v1s`` backbones, its input format (BGR minus its mean), fp32, and the settings
in which its two trainers differ, taken from the one this run is: with a teacher weight decay 5e-4,
validation every 400 iterations, poly floor 1e-4; without one 1e-4, 800 and no floor
(:data:`PAPER_TRAINERS`). The launch scripts pass every value explicitly.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.teacher import Teacher
from distkd.utils.debug_hooks import pause_point
from distkd.utils.distributed import barrier, cleanup_distributed, init_distributed, raise_if_peer_failed
from distkd.utils.experiment import ExperimentDir
from distkd.utils.logging import setup_logger
from distkd.utils.nonfinite import NonFiniteWatch
from distkd.utils.preemption import Preempted, PreemptionGuard
from segmentation.datasets import (
    INPUT_FORMATS,
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
from segmentation.engine.losses import SegCrossEntropy, SegDIST
from segmentation.engine.metrics import ConfusionMatrix
from segmentation.engine.records import Records, format_iou
from segmentation.engine.state import load_state, save_state
from segmentation.models import WithAux, build_segmentor, default_backbone, load_segmentor_weights
from segmentation.models.weights import read_weights

# The settings in which the paper's KD trainer (train_kd.py) and baseline trainer (train_baseline.py) differ.
PAPER_TRAINERS = {
    "kd": {"weight_decay": 5e-4, "val_interval": 400, "min_lr": 1e-4},
    "baseline": {"weight_decay": 1e-4, "val_interval": 800, "min_lr": 0.0},
}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    g = p.add_argument_group("models")
    g.add_argument("--student-model", default="deeplabv3", help="deeplabv3, psp, deeplab_mobile or psp_mobile")
    g.add_argument("--student-backbone", default=None,
                   help="resnet18/50/101_v1s (the paper's deep-stem resnets), resnet18/34/50/101/152 (torchvision "
                        "7x7 stem) or mobilenetv2 (default: resnet18_v1s; mobilenetv2 for *_mobile)")
    g.add_argument("--student-pretrained-base", default=None, metavar="PATH", help="ImageNet backbone weights")
    g.add_argument("--teacher-model", default=None, help="distil from this model (none: train a baseline)")
    g.add_argument("--teacher-backbone", default="resnet101_v1s")
    g.add_argument("--teacher-pretrained", default=None, metavar="PATH",
                   help="trained teacher: a best.pth of this trainer or the paper's released file")
    g.add_argument("--teacher-input-format", default=None, choices=sorted(INPUT_FORMATS),
                   help="input format the teacher was trained with (default: its checkpoint's record; paper for "
                        "the paper's files; else --input-format); the teacher's input is converted to it")
    g.add_argument("--no-aux", action="store_true", help="no auxiliary FCN head on the student")
    g = p.add_argument_group("data")
    g.add_argument("--data", default="data/cityscapes", help="Cityscapes root (leftImg8bit/, gtFine/)")
    g.add_argument("--train-list", default=None, help="list file of training pairs (default: scan the layout)")
    g.add_argument("--val-list", default=None, help="list file of validation pairs (default: scan the layout)")
    g.add_argument("--crop-size", type=int, nargs=2, default=[512, 1024], metavar=("H", "W"))
    g.add_argument("--input-format", default="paper", choices=sorted(INPUT_FORMATS),
                   help="paper: BGR minus the paper's mean, no std (its backbone files and teacher); imagenet: RGB "
                        "ImageNet mean/std (torchvision/timm weights)")
    g.add_argument("--workers", "-j", type=int, default=4, help="data loading processes per GPU")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=16, help="global batch, split over the processes")
    g.add_argument("--max-iterations", type=int, default=40000)
    g.add_argument("--lr", type=float, default=0.02)
    g.add_argument("--min-lr", type=float, default=None,
                   help="poly schedule floor (default: the paper's, 1e-4 with a teacher, 0 without)")
    g.add_argument("--power", type=float, default=0.9, help="poly schedule power")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=None,
                   help="default: the paper's, 5e-4 with a teacher, 1e-4 without")
    g.add_argument("--lambda-kd", type=float, default=1.0, help="weight of the DIST loss")
    g.add_argument("--kd-temperature", type=float, default=1.0, help="DIST tau")
    g.add_argument("--aux-weight", type=float, default=0.4, help="weight of the aux head's CE and DIST terms")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                   help="mixed precision (CUDA only); the paper trained in float32")
    g.add_argument("--seed", type=int, default=42)
    g = p.add_argument_group("run")
    g.add_argument("--save-dir", default="work_dirs/seg", help="checkpoints, logs, args.yaml, metrics.csv")
    g.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                   help="continue from a checkpoint (no PATH: SAVE_DIR/last.pth)")
    g.add_argument("--overwrite", action="store_true",
                   help="start again in a save dir with checkpoints (removes them and the records)")
    g.add_argument("--stop-iteration", type=int, default=None, help="save and stop after this iteration")
    g.add_argument("--val-interval", type=int, default=None,
                   help="validate every N iterations and at the end, keeping the best (default: the paper's, "
                        "400 with a teacher, 800 without)")
    g.add_argument("--save-interval", type=int, default=1000, help="write last.pth every N iterations")
    g.add_argument("--log-interval", type=int, default=10)
    g.add_argument("--eval-scales", type=float, nargs="+", default=[1.0], help="e.g. 0.75 1.0 1.25 1.5 1.75")
    g.add_argument("--eval-flip", action="store_true", help="add horizontally flipped predictions")
    g.add_argument("--eval-teacher", action="store_true", help="validate the teacher once before training")
    g.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def poly_lr(args: argparse.Namespace, iteration: int) -> float:
    return args.min_lr + (args.lr - args.min_lr) * (1 - iteration / args.max_iterations) ** args.power


def fill_paper_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Options left unset get the value of the paper's trainer of this kind (KD or baseline)."""
    for name, value in PAPER_TRAINERS["kd" if args.teacher_model else "baseline"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def check_args(args: argparse.Namespace, world_size: int) -> Path:
    fill_paper_defaults(args)
    args.student_backbone = args.student_backbone or default_backbone(args.student_model)  # recorded in args.yaml
    if args.batch_size % world_size:
        raise UserError(f"--batch-size {args.batch_size} (global) must be divisible by the {world_size} processes")
    if args.batch_size // world_size < 2:
        raise UserError(f"--batch-size {args.batch_size} leaves one image per process; BatchNorm needs at least 2")
    if args.teacher_model and not args.teacher_pretrained:
        raise UserError("distillation needs the trained teacher: pass --teacher-pretrained PATH")
    save_dir = Path(args.save_dir)
    if args.resume == "auto":
        args.resume = str(save_dir / "last.pth")
    ExperimentDir(save_dir.parent, save_dir.name, "--save-dir").check(args.resume, args.overwrite)
    return save_dir


def build_loaders(args: argparse.Namespace, rank: int, world_size: int, start_iteration: int, stop_iteration: int):
    train_transform = TrainTransform(tuple(args.crop_size), input_format=args.input_format)
    train_set = Cityscapes(args.data, "train", args.train_list, train_transform)
    val_set = Cityscapes(args.data, "val", args.val_list, EvalTransform(args.input_format))
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


def build_distiller(args: argparse.Namespace, distributed_cuda: bool) -> Distiller:
    student = build_segmentor(
        args.student_model, args.student_backbone, NUM_CLASSES, False if args.no_aux else None,
        args.student_pretrained_base,
    )  # fmt: skip
    if distributed_cuda:
        from timm.layers import convert_sync_batchnorm

        student = convert_sync_batchnorm(student)
    task_loss = SegCrossEntropy(args.aux_weight)
    if not args.teacher_model:
        return Distiller(student, task_loss)
    teacher = build_segmentor(args.teacher_model, args.teacher_backbone, NUM_CLASSES)
    checkpoint = read_weights(args.teacher_pretrained, "teacher checkpoint")
    load_segmentor_weights(teacher, args.teacher_pretrained, "teacher checkpoint", checkpoint)
    args.teacher_input_format = teacher_input_format(args, recorded_input_format(checkpoint))
    renormalize = None
    if args.teacher_input_format != args.input_format:
        renormalize = reformat(get_input_format(args.input_format), get_input_format(args.teacher_input_format))
    kd_loss = SegDIST(args.aux_weight, tau=args.kd_temperature)
    return Distiller(student, task_loss, Teacher(WithAux(teacher), renormalize), kd_loss, 1.0, args.lambda_kd)


def teacher_input_format(args: argparse.Namespace, recorded: str | None) -> str:
    """The teacher's format: its checkpoint's record (an explicit option must agree), else the option,
    else the student's."""
    if recorded is not None and args.teacher_input_format not in (None, recorded):
        raise UserError(
            f"--teacher-input-format {args.teacher_input_format} contradicts the teacher checkpoint "
            f"'{args.teacher_pretrained}', trained with input format '{recorded}': drop the option"
        )
    return recorded or args.teacher_input_format or args.input_format


def main(argv: list[str] | None = None) -> float:
    args = get_args_parser().parse_args(argv)
    info = init_distributed(args.device)
    try:
        with PreemptionGuard(info.device) as guard:
            try:
                return train(args, info, guard)
            except BaseException as err:  # inside the guard: torchrun's SIGTERM to the survivors waits
                raise_if_peer_failed(err, info.rank)
                raise
    finally:
        cleanup_distributed()


def train(args: argparse.Namespace, info, guard: PreemptionGuard | None = None) -> float:
    save_dir = check_args(args, info.world_size)
    if info.is_main:
        start_over = args.overwrite and not args.resume
        ExperimentDir(save_dir.parent, save_dir.name, "--save-dir").create(start_over=start_over)
    logger = setup_logger("segmentation", save_dir / "log.txt" if info.is_main else None, info.is_main)
    logger.info("command: %s", " ".join(sys.argv))
    device, amp = info.device, args.amp and info.device.type == "cuda"
    if args.amp and not amp:
        logger.warning("--amp needs CUDA; training in float32 on %s", device)
    torch.manual_seed(args.seed + info.rank)

    distiller = build_distiller(args, info.distributed and device.type == "cuda").to(device)
    student = distiller.student
    trainable = distiller.trainable_modules()
    optimizer = torch.optim.SGD(
        trainable.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    start, best_miou = 0, -1.0
    if args.resume:
        start, best_miou = load_state(Path(args.resume), student, optimizer, scaler, args.input_format)
        if info.rank:  # the checkpoint holds rank 0's RNG; the other ranks reseed
            torch.manual_seed(args.seed + info.rank + start)
        logger.info("resumed from %s at iteration %d (best mIoU %.4f)", args.resume, start, best_miou)
    stop = min(args.stop_iteration or args.max_iterations, args.max_iterations)
    train_loader, val_loader = build_loaders(args, info.rank, info.world_size, start, stop)
    model = distiller
    if info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        distiller.distribute(lambda module: DistributedDataParallel(module, device_ids=ids))  # the teacher stays out
    records = Records(save_dir, info.is_main, fresh=not args.resume, resumed_at=start if args.resume else None)
    if info.is_main:
        (save_dir / "args.yaml").write_text(yaml.safe_dump(vars(args), sort_keys=False))
    logger.info("student %s/%s, teacher %s, %d train / %d val images, %d iterations, global batch %d",
                args.student_model, args.student_backbone or "default", args.teacher_model or "none",
                len(train_loader.dataset), len(val_loader.dataset), args.max_iterations, args.batch_size)
    logger.info("input format %s%s; weight decay %g, poly floor %g, validation every %d iterations, %s",
                args.input_format, f" (teacher: {args.teacher_input_format})" if args.teacher_model else "",
                args.weight_decay, args.min_lr, args.val_interval, "AMP" if amp else "float32")

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
            losses = model(images, labels)
        loss = sum(losses.values())
        watch.update(iteration + 1, losses)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        iteration += 1
        bar.update(1)

        if iteration % args.log_interval == 0 or iteration == stop:
            values = records.log_train(iteration, lr, {"loss": loss, **losses})
            bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
            stop_if_nonfinite()
        done = iteration == args.max_iterations
        if iteration % args.val_interval == 0 or done:
            stop_if_nonfinite()
            matrix = validate(student, iteration, "val")
            records.log_val(iteration, matrix)
            miou = matrix.miou() if matrix.miou() == matrix.miou() else 0.0  # NaN: nothing labelled
            if miou > best_miou and info.is_main:
                best_miou = miou
                save_state(save_dir / "best.pth", student, optimizer, scaler, iteration, best_miou, vars(args))
            best_miou = max(best_miou, miou)
        pause_point(0, iteration, info.rank, guard.requested if guard else lambda: False)
        preempted = guard is not None and guard.agreed(iteration)  # every rank stops after the same iteration
        if info.is_main and (iteration % args.save_interval == 0 or iteration == stop or preempted):
            stop_if_nonfinite()
            save_state(save_dir / "last.pth", student, optimizer, scaler, iteration, best_miou, vars(args))
        if preempted:
            barrier()
            raise Preempted(f"{guard.name()} received: stopped after iteration {iteration}, {save_dir / 'last.pth'} "
                            "saved; continue with --resume")
        if iteration == stop:
            break
    bar.close()
    records.close()
    logger.info("stopped at iteration %d of %d; best val mIoU %.4f", iteration, args.max_iterations, best_miou)
    return best_miou
