"""Train a classifier, plainly or distilled from a teacher (``tools/train.py`` calls :func:`main`).

Flow: options (:func:`~classification.config.load_config`) -> distributed set-up -> experiment
folder -> data -> student, teacher, losses -> distiller -> optimizer, EMA, AMP -> resume -> teacher
evaluation -> epochs of train / evaluate / checkpoint.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from classification.accumulation import fewer_gpus_warning
from classification.builders import Parts, build_parts
from classification.config import option_order, parse_args
from classification.data import build_loaders
from classification.data.transforms import build_transform, ignored_augmentation
from classification.engine import EpochProgress, StepConfig, evaluate, train_one_epoch
from classification.launch_env import set_distributed_env
from classification.models import list_models
from classification.options import TrainConfig, check_config
from classification.tracking import WandbRun
from distkd.step import due
from distkd.utils.checkpoint import check_checkpoint_file
from distkd.utils.distributed import DistInfo, broadcast_state, from_rank0, init_distributed
from distkd.utils.experiment import ExperimentDir
from distkd.utils.logging import setup_logger
from distkd.utils.preemption import PreemptionGuard, run_guarded
from distkd.utils.rng import seed_everything
from distkd.utils.training_state import restore_training_state, training_state


def ignored_options(config: TrainConfig) -> list[str]:
    """Options set to values that, as in the original code, change nothing here (logged as warnings)."""
    model, optim, notes = config.model, config.optim, []
    if model.drop > 0:
        notes.append(f"--drop {model.drop} has no effect on {model.model}: the original passed it to its NAS/DARTS "
                     "builders only; use --classifier-dropout for dropout before the classifier")
    if model.drop_path_rate > 0 and not model.model.startswith("timm_"):
        notes.append(f"--drop-path-rate {model.drop_path_rate} reaches timm_* models only, not {model.model}")
    if note := ignored_augmentation(config.data, config.augment):
        notes.append(note)
    cpus, workers = os.cpu_count() or 1, config.data.workers
    if workers > cpus:  # torch's own warning about it is silenced in main(): this is the one line
        notes.append(f"-j {workers}: more data-loader workers per process than this machine's {cpus} CPUs; "
                     f"-j {cpus} may load as fast")
    if optim.warmup_epochs >= optim.epochs and optim.warmup_lr != optim.lr:
        notes.append(f"the whole run is warm-up (--warmup-epochs {optim.warmup_epochs:g} >= --epochs {optim.epochs}): "
                     f"the lr climbs from --warmup-lr {optim.warmup_lr:g} and never reaches --lr {optim.lr:g}; "
                     "lower --warmup-epochs (e.g. 0) for a short run")
    return notes


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)  # see -j note
    args = parse_args(argv)
    if args.list_models is not None:
        names = list_models(args.list_models)
        print("\n".join(names) if names else f"no model name contains '{args.list_models}'")
        if not args.list_models:
            print("also: tv_<torchvision name>, timm_<timm name> (filter them: --list-models FILTER)")
        return {}
    config = TrainConfig.parsed(args, option_order())
    check_config(config)
    set_distributed_env(config.runtime.slurm, config.runtime.dist_port, config.runtime.local_rank)
    dist = init_distributed(config.runtime.device)
    return run_guarded(dist, lambda guard: _run(config.for_processes(dist.world_size), dist, guard))


def _start(config: TrainConfig, dist: DistInfo) -> tuple[ExperimentDir, str | None]:
    """The experiment folder and the checkpoint to resume from (checked before anything is built);
    determinism and seeds."""
    exp = ExperimentDir(config.run.output, config.run.experiment)
    resume_path = exp.check(config.run.resume, config.run.overwrite)
    if resume_path:
        check_checkpoint_file(resume_path, "resume checkpoint")  # before the data and models are built
    if config.runtime.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seed_everything(config.runtime.seed + dist.rank)
    return exp, resume_path


def _data(config: TrainConfig, dist: DistInfo, logger):
    """The loaders (a teacher store's replay loader for training with ``--teacher-store``)."""
    train_loader, val_loader, num_classes, mixup_fn = build_loaders(config, dist)
    if config.distill.teacher_store:  # --- teacher store (docs/teacher_store.md): stored views and teacher logits ---
        train_loader = teacher_store_loader(config, train_loader, num_classes)
    logger.info(f"{config.data.dataset}: {len(train_loader.dataset)} train / {len(val_loader.dataset)} val images, "
                f"{num_classes} classes")
    for note in ignored_options(config):
        logger.warning(note)
    return train_loader, val_loader, num_classes, mixup_fn


def teacher_store_loader(config: TrainConfig, train_loader, num_classes: int):
    """The replay loader of ``--teacher-store`` (checked against the run's options first)."""
    from classification.teacher_store.replay import check_replay_options, replay_loader
    from classification.teacher_store.store import teacher_identity

    distill, data, augment = config.distill, config.data, config.augment
    check_replay_options(distill.kd, distill.kd_loss_kwargs, bool(distill.student_module or distill.teacher_module),
                         augment.mixup_active, data.skip_bad_images)
    return replay_loader(distill.teacher_store, train_loader, num_classes, build_transform(data, augment),
                         teacher_identity(distill.teacher_model, distill.teacher_ckpt, distill.teacher_pretrained),
                         data.dataset, config.runtime.seed, data.workers)


def _run(config: TrainConfig, dist: DistInfo, guard: PreemptionGuard) -> dict[str, float]:
    exp, resume_path = _start(config, dist)
    logger = setup_logger("distkd.train", None, dist.is_main)  # the log file follows once all inputs are valid
    optim = config.optim
    if dist.is_main and (warning := fewer_gpus_warning(config.run.config, optim.emulate_gpus, optim.grad_accum_steps,
                                                        config.data.batch_size, dist.world_size)):
        logger.warning(warning)  # an 8-GPU recipe on fewer GPUs
    train_loader, val_loader, num_classes, mixup_fn = _data(config, dist, logger)
    parts = build_parts(config, dist, num_classes, mixup_fn, val_loader, logger, guard.requested)
    start_epoch, resumed_progress, best = 0, None, {"metric": "top1", "value": -1.0, "at": -1}
    if resume_path:
        ckpt = restore_training_state(resume_path, parts.distiller.trainable_modules(), parts.optimizer,
                                      parts.scaler, parts.ema.module if parts.ema else None)
        position, best = ckpt["position"], ckpt["best"]
        start_epoch = int(position["epoch"])
        resumed_progress = position if position.get("iteration") else None
        logger.info(f"resumed from {resume_path} in epoch {start_epoch} after iteration {position['iteration']}")

    # Every input is valid: from here on the experiment folder is written.
    if dist.is_main:
        exp.create(start_over=config.run.overwrite and not resume_path)
        exp.write_args(config.as_dict())
        exp.truncate_metrics("epoch", start_epoch - 1)
    logger = setup_logger("distkd.train", exp.path / "log.txt" if dist.is_main else None, dist.is_main)
    tracker = WandbRun(config.as_dict(), config.run.wandb_project, config.run.experiment, exp.path) \
        if config.run.log_wandb and dist.is_main else None
    _log_start(config, dist, exp, resume_path, start_epoch, logger)
    _evaluate_teacher(config, dist, exp, parts, val_loader, logger)
    stats, best = _train_epochs(config, dist, guard, exp, parts, (train_loader, val_loader), logger, tracker,
                                (start_epoch, resumed_progress, best))
    exp.close()
    if tracker is not None:
        tracker.finish({"best_top1": best["value"], "best_epoch": best["at"]})
    logger.info(f"done: best top-1 {best['value']:.2f} at epoch {best['at']}; checkpoints in {exp.path}")
    return {**stats, "best_top1": best["value"]}


def _log_start(config: TrainConfig, dist: DistInfo, exp: ExperimentDir, resume_path, start_epoch: int,
               logger) -> None:
    logger.info(f"experiment {exp.path} | world size {dist.world_size} | device {dist.device} | "
                f"{'resumed at epoch ' + str(start_epoch) if resume_path else 'new run'}")
    steps, batch = config.optim.grad_accum_steps, config.data.batch_size
    if steps > 1:
        gpus = dist.world_size * steps
        logger.info(f"{steps} micro-batches of {batch} per process and step: trains as "
                    f"{gpus} GPUs x {batch} images ({gpus * batch} per optimizer step)")


def _evaluate_teacher(config: TrainConfig, dist: DistInfo, exp: ExperimentDir, parts: Parts, val_loader,
                      logger) -> None:
    """The teacher's validation scores, once per experiment (``teacher.yaml``)."""
    # rank 0 decides (--overwrite has it remove teacher.yaml while other ranks may look): all ranks evaluate, or none
    teacher = parts.distiller.teacher
    if teacher is None or config.distill.teacher_store or not from_rank0(not (exp.path / "teacher.yaml").exists()):
        return
    t_stats = evaluate(teacher, val_loader, parts.step)
    logger.info(f"teacher {config.distill.teacher_model}: top-1 {t_stats['top1']:.2f} top-5 {t_stats['top5']:.2f}")
    if dist.is_main:
        exp.write_yaml("teacher.yaml", {"model": config.distill.teacher_model, **t_stats})


def _train_epochs(config: TrainConfig, dist: DistInfo, guard: PreemptionGuard, exp: ExperimentDir, parts: Parts,
                  loaders: tuple, logger, tracker: WandbRun | None, start: tuple) -> tuple[dict[str, float], dict]:
    """Epochs of train / evaluate / checkpoint from ``start`` = (epoch, resumed progress or None, best)."""
    (train_loader, val_loader), (start_epoch, resumed_progress, best) = loaders, start
    student, model, optimizer, schedule, cfg = parts.student, parts.model, parts.optimizer, parts.schedule, parts.step
    trainable, scaler, ema, device = parts.distiller.trainable_modules(), parts.scaler, parts.ema, dist.device
    stats: dict[str, float] = {}
    epochs, stop_after = config.optim.epochs, config.run.stop_after_epochs
    end_epoch = epochs if not stop_after else min(epochs, start_epoch + stop_after)
    for epoch in range(start_epoch, end_epoch):
        progress = EpochProgress()
        if epoch == start_epoch and resumed_progress is not None:
            progress = EpochProgress.from_state(resumed_progress, device)
        train_loader.batch_sampler.set_epoch(epoch, progress.iteration)  # batches: (seed, epoch) only

        def after_step(progress: EpochProgress, iters: int, check_finite, epoch: int = epoch,
                       best: dict = best) -> None:
            stop = guard.agreed(progress.iteration, progress.iteration == iters)  # the same iteration on every rank
            if stop or (due(progress.iteration, config.run.save_interval) and progress.iteration < iters):
                check_finite()  # never checkpoint weights a non-finite step has touched
                if dist.is_main:
                    exp.save(checkpoint(config, trainable, optimizer, scaler, ema,
                                        {"epoch": epoch, **progress.state()}, best), is_best=False)
            if stop:
                guard.stop(f"epoch {epoch} iteration {progress.iteration}", exp.last)
        set_drop_path(config, student, epoch)
        train = train_one_epoch(model, train_loader, optimizer, schedule, epoch, cfg, logger, progress, after_step)
        stats, row, best, is_best = _validate(student, ema, val_loader, cfg, train, epoch, best, logger)
        if dist.is_main:
            exp.save(checkpoint(config, trainable, optimizer, scaler, ema, {"epoch": epoch + 1, "iteration": 0},
                                best), is_best)
            _record(exp, row, epoch, tracker)
    return stats, best


def set_drop_path(config: TrainConfig, student: nn.Module, epoch: int) -> None:
    """``--drop-path-strategy linear``, as the original: the student's ``drop_path_rate`` attribute only."""
    rate = config.model.drop_path_rate
    if rate > 0 and config.model.drop_path_strategy == "linear" and hasattr(student, "drop_path_rate"):
        student.drop_path_rate = rate * epoch / config.optim.epochs


def _validate(student: nn.Module, ema, val_loader, cfg: StepConfig, train: dict, epoch: int, best: dict,
              logger) -> tuple[dict[str, float], dict, dict, bool]:
    """The epoch's validation (every rank evaluates rank 0's model), its metrics row and the best so far."""
    broadcast_state(student, buffers_only=True)  # every rank evaluates rank 0's model (its BatchNorm statistics)
    if ema is not None:
        broadcast_state(ema.module)
    stats = evaluate(student, val_loader, cfg)
    row = {"epoch": epoch, "lr": train["lr"], "train_loss": train["loss"], "loss_ori": train["loss_ori"],
           "loss_kd": train.get("loss_kd", ""), "val_loss": stats["loss"], "val_top1": stats["top1"],
           "val_top5": stats["top5"]}
    score = stats["top1"]
    if ema is not None:  # as timm: with EMA on, the EMA weights are the ones ranked for best.pth
        row["val_top1_ema"] = score = evaluate(ema.module, val_loader, cfg)["top1"]
    is_best = score > best["value"]
    if is_best:
        best = {"metric": "top1", "value": score, "at": epoch}
    row.update(best_top1=best["value"], epoch_time=train["epoch_time"], rss_mb=round(current_rss_mb(), 1))
    logger.info(f"epoch {epoch}: val top-1 {stats['top1']:.2f} top-5 {stats['top5']:.2f} "
                f"(best {best['value']:.2f} @ {best['at']}) {train['epoch_time']:.1f}s")
    return stats, row, best, is_best


def _record(exp: ExperimentDir, row: dict, epoch: int, tracker: WandbRun | None) -> None:
    exp.append_metrics(row)
    exp.tensorboard({k: v for k, v in row.items() if k != "epoch" and v != ""}, epoch)
    exp.plot_curves("epoch", ["train_loss", "val_top1"])
    if tracker is not None:
        tracker.log(row, epoch)


def checkpoint(config: TrainConfig, trainable: nn.ModuleDict, optimizer, scaler, ema, position: dict,
               best: dict) -> dict:
    """last.pth / best.pth in the shared format (:mod:`distkd.utils.training_state`); ``position``:
    the next epoch and the iterations done in it (inside an epoch: with its running loss sums)."""
    return training_state(trainable, optimizer, position, best, config.as_dict(), scaler, ema.module if ema else None)


def current_rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
