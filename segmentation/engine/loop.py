"""The iteration loop of the Cityscapes trainer (:func:`segmentation.train.train`).

Each iteration reads top to bottom: the poly learning rate, the batch, the forward under the step
policy's autocast, the losses, the step (:class:`distkd.step.StepPolicy`), a log line when due; a
validation (mIoU, ``best.pth``) when due; the callbacks (:mod:`distkd_cli.callbacks`); the ranks'
agreement on a pre-emption signal (every rank stops after the same iteration) and ``last.pth`` when
due. A non-finite loss is flagged on the device and read where the loop logs or saves.

    lr(i) = min_lr + (lr - min_lr) * (1 - i / max_iterations) ** power
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import torch
from torch import Tensor
from tqdm import tqdm

from distkd.context import BatchContext
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.step import StepPolicy, due
from distkd.utils.distributed import DistInfo, all_reduce_sum
from distkd.utils.experiment import ExperimentDir
from distkd.utils.nonfinite import NonFiniteWatch
from distkd.utils.preemption import PreemptionGuard
from distkd.utils.training_state import training_state
from distkd_cli.callbacks import Callbacks, StepState, never
from distkd_cli.progress import Throughput
from segmentation.datasets import CLASS_NAMES
from segmentation.engine.metrics import ConfusionMatrix
from segmentation.options import OptimOptions, SegConfig

TRAIN_COLUMNS = ("loss", "loss_ori", "loss_kd")


def poly_lr(optim: OptimOptions, iteration: int) -> float:
    return optim.min_lr + (optim.lr - optim.min_lr) * (1 - iteration / optim.max_iterations) ** optim.power


def mean_over_ranks(losses: Mapping[str, Tensor]) -> dict[str, float]:
    """The losses averaged over the processes (every rank calls this)."""
    names = sorted(losses)
    stacked = torch.stack([losses[n].detach().float() for n in names])
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    return dict(zip(names, (all_reduce_sum(stacked) / world).tolist()))


def validation_row(iteration: int, matrix: ConfusionMatrix) -> dict[str, object]:
    """One ``metrics.csv`` row: mIoU, pixel accuracy and the per-class IoU (empty: class absent)."""
    iou = matrix.iou().tolist()
    return {"iteration": iteration, "val_miou": f"{matrix.miou():.6f}",
            "val_pixel_acc": f"{matrix.pixel_accuracy():.6f}",
            **{f"iou_{name.replace(' ', '_')}": f"{v:.6f}" if v == v else "" for name, v in zip(CLASS_NAMES, iou)}}


def check_finite(watch: NonFiniteWatch) -> None:
    if (bad := watch.first()) is not None:
        values = ", ".join(f"{k}={v:.4g}" for k, v in bad[1].items())
        raise UserError(f"non-finite loss at iteration {bad[0]} ({values}); training stopped, the last good "
                        "checkpoint is kept: lower --lr")


def log_losses(losses: Mapping[str, Tensor], iteration: int, stop: int, lr: float, bar: tqdm, meter: Throughput,
               logger: logging.Logger, exp: ExperimentDir | None) -> None:
    """The losses averaged over the ranks: progress bar, log line and (rank 0, ``exp``) ``train_log.csv``."""
    values = mean_over_ranks(losses)
    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
    speed = meter.text(stop - iteration, what="run")
    losses_text = " ".join(f"{k} {v:.4f}" for k, v in values.items())
    logger.info(f"iteration {iteration}/{stop} lr {lr:.4g} {losses_text}" + (f" | {speed}" if speed else ""))
    if exp is not None:
        row = {"iteration": iteration, "lr": f"{lr:.6g}", **{k: values.get(k, "") for k in TRAIN_COLUMNS}}
        exp.append_metrics(row, "train_log.csv")
        exp.tensorboard({"train/lr": lr, **{f"train/{k}": v for k, v in values.items()}}, iteration)


def record_validation(matrix: ConfusionMatrix, iteration: int, best: dict, exp: ExperimentDir | None,
                      checkpoint: Callable[[int, dict], dict]) -> dict:
    """The best validation so far; on rank 0 (``exp``) ``best.pth`` when this one is better, and the metrics."""
    miou = matrix.miou() if matrix.miou() == matrix.miou() else 0.0  # NaN: nothing labelled
    if miou > best["value"]:
        best = {"metric": "miou", "value": miou, "at": iteration}
        if exp is not None:
            exp.save(checkpoint(iteration, best), is_best=True)
    if exp is not None:
        exp.append_metrics(validation_row(iteration, matrix))
        exp.tensorboard({"val/mIoU": matrix.miou(), "val/pixel_acc": matrix.pixel_accuracy()}, iteration)
        exp.plot_curves("iteration", ["val_miou", "val_pixel_acc"])
    return best


def train_iterations(config: SegConfig, info: DistInfo, model: Distiller, optimizer: torch.optim.Optimizer,
                     policy: StepPolicy, train_loader, validate: Callable[..., ConfusionMatrix], exp: ExperimentDir,
                     logger: logging.Logger, start: int, stop: int, best: dict,
                     guard: PreemptionGuard | None = None) -> tuple[int, dict]:
    """Iterations ``start`` .. ``stop`` (the loader's batches); returns the last one and the best validation."""
    trainable, callbacks = model.trainable_modules(), Callbacks.from_env()
    stop_requested = guard.requested if guard is not None else never
    bar = tqdm(total=stop, initial=start, desc="train", disable=not info.is_main or config.run.no_progress)
    meter = Throughput(info.world_size)  # img/s and time left in the log lines
    iteration, watch = start, NonFiniteWatch()

    def checkpoint(iteration: int, best: dict) -> dict:
        return training_state(trainable, optimizer, {"iteration": iteration}, best, config.as_dict(), policy.scaler)

    model.train()
    for images, labels, _ in train_loader:
        lr = poly_lr(config.optim, iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        policy.seed_step(0, iteration)  # dropout from (seed, iteration, rank) only
        images, labels = images.to(policy.device, non_blocking=True), labels.to(policy.device, non_blocking=True)
        with policy.autocast():
            losses = model(images, labels, BatchContext(progress=iteration / config.optim.max_iterations))
        loss = sum(losses.values())
        watch.update(iteration + 1, losses)
        optimizer.zero_grad(set_to_none=True)
        policy.backward(loss)
        policy.step(optimizer, trainable.parameters())
        iteration += 1
        bar.update(1)
        meter.step(len(images))
        if due(iteration, config.run.log_interval, stop):
            log_losses({"loss": loss, **losses}, iteration, stop, lr, bar, meter, logger, exp if info.is_main else None)
            check_finite(watch)
        if due(iteration, config.run.val_interval, config.optim.max_iterations):
            check_finite(watch)
            matrix = validate(model.student, iteration, "val")
            best = record_validation(matrix, iteration, best, exp if info.is_main else None, checkpoint)
        callbacks.on_step_end(StepState(0, iteration, info.rank, losses=losses, stop_requested=stop_requested))
        preempted = guard is not None and guard.agreed(iteration)  # every rank stops after the same iteration
        if info.is_main and (due(iteration, config.run.save_interval, stop) or preempted):
            check_finite(watch)
            exp.save(checkpoint(iteration, best), is_best=False)
        if preempted:
            guard.stop(f"iteration {iteration}", exp.last)
        if iteration == stop:
            break
    bar.close()
    return iteration, best
