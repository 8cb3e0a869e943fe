"""Train a classifier, plainly or distilled from a teacher (``tools/train.py`` calls :func:`main`).

Flow: options -> distributed set-up -> experiment folder -> data -> student, teacher, losses ->
distiller -> optimizer, EMA, AMP -> resume -> teacher evaluation -> epochs of train / evaluate /
checkpoint.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import warnings
from collections.abc import Sequence

import torch
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from classification.accumulation import fewer_gpus_warning, resolve_accumulation
from classification.config import fill_defaults, parse_args
from classification.data import build_loaders
from classification.data.loaders import mixup_active
from classification.data.transforms import DEFAULT_SIZE, IMAGENET_MEAN, IMAGENET_STD, normalization
from classification.engine import EpochProgress, StepConfig, evaluate, train_one_epoch
from classification.models import build_model, check_model_name, list_models
from classification.scheduler import LRSchedule
from classification.tracking import WandbRun
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.losses import KDConfig, kd_config
from distkd.step import amp_dtype as autocast_dtype
from distkd.step import due, grad_scaler
from distkd.teacher import StoredTeacher, Teacher, renormalize_or_none
from distkd.utils.checkpoint import check_checkpoint_file, extract_state_dict, load_state_dict_strict, safe_load
from distkd.utils.distributed import DistInfo, broadcast_state, from_rank0, init_distributed
from distkd.utils.experiment import ExperimentDir
from distkd.utils.logging import setup_logger
from distkd.utils.preemption import PreemptionGuard, run_guarded
from distkd.utils.rng import seed_everything
from distkd.utils.training_state import restore_training_state, training_state
from distkd_cli.callbacks import Callbacks
from distkd_cli.download import check_recorded


def amp_dtype(args: argparse.Namespace, device: torch.device) -> torch.dtype | None:
    return autocast_dtype(args.amp, args.amp_dtype, device)  # the step policy's (distkd/step.py)


def check_args(args: argparse.Namespace) -> None:
    if not args.model:
        raise UserError("no student model: pass --model NAME (or give 'model:' in the YAML config)")
    if args.kd and not args.teacher_model:
        raise UserError(f"--kd {args.kd} needs a teacher: pass --teacher-model NAME")
    if args.teacher_model and not args.kd:
        raise UserError("--teacher-model given without --kd: name a KD method (e.g. --kd dist) or drop the teacher")
    if args.initial_checkpoint:
        if args.pretrained:
            raise UserError("--initial-checkpoint and --pretrained both give the student's first weights: keep one")
        check_checkpoint_file(args.initial_checkpoint, "initial checkpoint")
    for name in ("batch_size", "epochs"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.save_interval < 0:
        raise UserError(f"--save-interval must be >= 0 (0: at epoch ends only), got {args.save_interval}")
    if args.lr <= 0:
        raise UserError(f"--lr must be positive, got {args.lr}")
    if not 0 <= args.classifier_dropout < 1:
        raise UserError(f"--classifier-dropout must be in [0, 1), got {args.classifier_dropout}")
    check_model_name(args.model)
    if args.kd:
        check_model_name(args.teacher_model)
        kd = kd_from_args(args)
        if kd.accepts("needs_targets", False) and mixup_active(args):
            raise UserError(f"--kd {args.kd} needs one class index per sample; --mixup / --cutmix give soft targets: "
                            "drop them")


def kd_from_args(args: argparse.Namespace) -> KDConfig:
    """The ``kd`` configuration of ``--kd``, ``--kd-loss-kwargs`` and ``--kd-loss-weight`` (validated)."""
    try:
        return kd_config(args.kd, args.kd_loss_kwargs, args.kd_loss_weight)
    except ValueError as err:
        raise UserError(str(err)) from None


def ignored_options(args: argparse.Namespace) -> list[str]:
    """Options set to values that, as in the original code, change nothing here (logged as warnings)."""
    notes = []
    if args.drop > 0:
        notes.append(f"--drop {args.drop} has no effect on {args.model}: the original passed it to its NAS/DARTS "
                     "builders only; use --classifier-dropout for dropout before the classifier")
    if args.drop_path_rate > 0 and not args.model.startswith("timm_"):
        notes.append(f"--drop-path-rate {args.drop_path_rate} reaches timm_* models only, not {args.model}")
    if args.dataset in ("cifar10", "cifar100") and (args.aa or args.color_jitter > 0 or args.reprob > 0):
        notes.append("--aa, --color-jitter and --reprob are not used on CIFAR (as the original); see --cutout-length")
    if args.dataset == "imagenet" and args.cutout_length > 0:
        notes.append("--cutout-length is used on CIFAR only (as the original)")
    cpus = os.cpu_count() or 1
    if args.workers > cpus:  # torch's own warning about it is silenced in main(): this is the one line
        notes.append(f"-j {args.workers}: more data-loader workers per process than this machine's {cpus} CPUs; "
                     f"-j {cpus} may load as fast")
    if args.warmup_epochs >= args.epochs and args.warmup_lr != args.lr:
        notes.append(f"the whole run is warm-up (--warmup-epochs {args.warmup_epochs:g} >= --epochs {args.epochs}): "
                     f"the lr climbs from --warmup-lr {args.warmup_lr:g} and never reaches --lr {args.lr:g}; "
                     "lower --warmup-epochs (e.g. 0) for a short run")
    return notes


def _dropout_before(module: nn.Module, inputs: tuple) -> tuple:
    return (module.pre_dropout(inputs[0]), *inputs[1:])


def add_classifier_dropout(classifier: nn.Module, p: float) -> None:
    """Dropout on the input of ``classifier``, held by it as ``pre_dropout`` (no parameters: state
    dict keys are unchanged; copies such as the EMA model use their own). ``--classifier-dropout``."""
    classifier.add_module("pre_dropout", nn.Dropout(p))
    classifier.register_forward_pre_hook(_dropout_before)


def build_student(args: argparse.Namespace, num_classes: int) -> nn.Module:
    """The student. As the original: ``--drop`` changes nothing for these models and
    ``--drop-path-rate`` reaches ``timm_*`` models. ``--classifier-dropout`` (an extension) adds
    dropout before the classifier: timm's ``drop_rate``, torchvision MobileNet V2's ``dropout``
    (replacing its built-in 0.2), else :func:`add_classifier_dropout` on the last linear layer."""
    kwargs, p = {}, args.classifier_dropout
    if args.model.startswith("timm_"):
        if args.drop_path_rate > 0:
            kwargs["drop_path_rate"] = args.drop_path_rate
        if p > 0:
            kwargs["drop_rate"] = p
    elif args.model == "tv_mobilenet_v2" and p > 0:
        kwargs["dropout"] = p
    if args.pretrained:  # fine-tuning from published weights (--pretrained, an extension)
        from classification.models.finetune import build_pretrained_model

        model = build_pretrained_model(args.model, num_classes, args.offline, **kwargs)
    else:
        model = build_model(args.model, num_classes, **kwargs)
    if p > 0 and not kwargs.get("drop_rate") and not kwargs.get("dropout"):
        add_classifier_dropout([m for m in model.modules() if isinstance(m, nn.Linear)][-1], p)
    if getattr(args, "initial_checkpoint", None):  # timm's --initial-checkpoint: weights, not a resume
        what = f"--initial-checkpoint '{args.initial_checkpoint}'"
        load_state_dict_strict(model, extract_state_dict(safe_load(args.initial_checkpoint, "initial checkpoint"),
                                                         what), what)
    return model


def build_teacher(args: argparse.Namespace, num_classes: int, logger) -> Teacher:
    """The frozen teacher, fed the data converted to the normalisation its weights expect when that
    is known and differs from the data's (:func:`pretrained_normalization`, :func:`recorded_normalization`);
    the conversion is logged."""
    use_cache = args.teacher_pretrained and not args.teacher_ckpt
    teacher = build_model(args.teacher_model, num_classes, pretrained=use_cache, offline=args.offline)
    expected = None
    if args.teacher_ckpt:
        from classification.teachers import missing_teacher_hint

        if hint := missing_teacher_hint(args.teacher_ckpt):
            raise UserError(hint)
        check_recorded(args.teacher_ckpt)  # a downloaded teacher (tools/get_teachers.py) still matches its SHA-256
        what = f"teacher checkpoint '{args.teacher_ckpt}'"
        ckpt = safe_load(args.teacher_ckpt, "teacher checkpoint")
        load_state_dict_strict(teacher, extract_state_dict(ckpt, what), what)
        expected = recorded_normalization(ckpt)
        logger.info(f"teacher {args.teacher_model} loaded from {args.teacher_ckpt}")
    elif not args.teacher_pretrained:
        logger.warning("teacher has random weights (--teacher-no-pretrained): for debugging only")
    else:
        expected = pretrained_normalization(args.teacher_model, teacher)
    renormalize = renormalize_or_none(normalization(args), expected)
    if renormalize is not None:
        logger.warning(f"teacher {args.teacher_model} expects another input normalisation than the data's: "
                       f"its input is converted on the device, {renormalize.extra_repr()}")
    return Teacher(teacher, renormalize)


def pretrained_normalization(name: str, model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) of published weights: timm's ``pretrained_cfg``; ImageNet's for torchvision."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if name.startswith("timm_") and "mean" in cfg and "std" in cfg:
        return tuple(cfg["mean"]), tuple(cfg["std"])
    return IMAGENET_MEAN, IMAGENET_STD


def recorded_normalization(ckpt: object) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (mean, std) a checkpoint of this trainer was trained with (its ``args``); None when unknown."""
    recorded = ckpt.get("args") if isinstance(ckpt, dict) else None
    if not isinstance(recorded, dict) or recorded.get("dataset") not in DEFAULT_SIZE:
        return None
    return normalization(argparse.Namespace(**recorded))


def build_task_loss(args: argparse.Namespace, mixup_fn) -> nn.Module:
    if mixup_fn is not None:
        return SoftTargetCrossEntropy()
    if args.smoothing > 0:
        return LabelSmoothingCrossEntropy(args.smoothing)
    return nn.CrossEntropyLoss()


def build_optimizer(args: argparse.Namespace, params: nn.Module) -> torch.optim.Optimizer:
    """timm's SGD (Nesterov unless ``--sgd-no-nesterov``), RMSprop, RMSpropTF or AdamW with the
    original's arguments; weight decay skips biases and norm weights unless ``--opt-no-filter``."""
    name = args.opt
    kwargs: dict = {}
    if name == "sgd":
        name = "momentum" if args.sgd_no_nesterov else "sgd"  # timm: 'sgd' is Nesterov SGD
        kwargs["momentum"] = args.momentum
    elif name in ("rmsprop", "rmsproptf"):
        kwargs.update(momentum=args.momentum, eps=args.opt_eps)
        if name == "rmsprop":
            kwargs["alpha"] = 0.99  # torch's default, as the original (timm's 'rmsprop' uses 0.9)
    else:
        kwargs["eps"] = args.opt_eps
        if args.opt_betas:
            kwargs["betas"] = tuple(args.opt_betas)
    return create_optimizer_v2(params, opt=name, lr=args.lr, weight_decay=args.weight_decay,
                               filter_bias_and_bn=not args.opt_no_filter, **kwargs)


def set_distributed_env(args: argparse.Namespace) -> None:
    """The original's launch options: ``--slurm`` (ranks from srun's SLURM_* variables, port
    ``--dist-port``), ``--local-rank`` from the legacy ``torch.distributed.launch``. torchrun's own
    variables, when set, win."""
    if args.slurm:
        if "SLURM_PROCID" not in os.environ:
            raise UserError("--slurm: SLURM_PROCID is not set; start the job with srun (or drop --slurm)")
        rank, ntasks = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
        gpus = max(1, torch.cuda.device_count())
        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(ntasks))
        os.environ.setdefault("LOCAL_RANK", str(rank % gpus))
        if "MASTER_ADDR" not in os.environ:  # the first node of the job, as the original (scontrol)
            nodes = []
            if shutil.which("scontrol"):
                nodes = subprocess.run(["scontrol", "show", "hostnames", os.environ.get("SLURM_NODELIST", "")],
                                       capture_output=True, text=True, check=False).stdout.split()
            os.environ["MASTER_ADDR"] = nodes[0] if nodes else os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1")
    if "WORLD_SIZE" in os.environ:
        os.environ.setdefault("MASTER_PORT", str(args.dist_port))
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)  # see -j note
    args = parse_args(argv)
    if args.list_models is not None:
        names = list_models(args.list_models)
        print("\n".join(names) if names else f"no model name contains '{args.list_models}'")
        if not args.list_models:
            print("also: tv_<torchvision name>, timm_<timm name> (filter them: --list-models FILTER)")
        return {}
    check_args(fill_defaults(args))
    set_distributed_env(args)
    dist = init_distributed(args.device)
    return run_guarded(dist, lambda guard: _run(args, dist, guard))


def _run(args: argparse.Namespace, dist: DistInfo, guard: PreemptionGuard) -> dict[str, float]:
    device = dist.device
    resolve_accumulation(args, dist.world_size)  # args.grad_accum_steps: micro-batches per optimizer step
    args.experiment = args.experiment or f"{args.model}-{args.kd or 'baseline'}-{args.dataset}"
    exp = ExperimentDir(args.output, args.experiment)
    resume_path = exp.check(args.resume, args.overwrite)
    if resume_path:
        check_checkpoint_file(resume_path, "resume checkpoint")  # before the data and models are built
    logger = setup_logger("distkd.train", None, dist.is_main)  # the log file follows once all inputs are valid
    if args.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seed_everything(args.seed + dist.rank)
    if dist.is_main and (warning := fewer_gpus_warning(args, dist.world_size)):  # an 8-GPU recipe on fewer GPUs
        logger.warning(warning)

    train_loader, val_loader, num_classes, mixup_fn = build_loaders(args, dist)
    if args.teacher_store:  # --- teacher store (docs/teacher_store.md): stored views and teacher logits ---
        from classification.teacher_store.replay import replay_loader

        train_loader = replay_loader(args, train_loader, num_classes)
    logger.info(f"{args.dataset}: {len(train_loader.dataset)} train / {len(val_loader.dataset)} val images, "
                f"{num_classes} classes")
    for note in ignored_options(args):
        logger.warning(note)
    student = build_student(args, num_classes)
    if args.sync_bn and dist.distributed:  # timm's --sync-bn (the paper's recipes keep per-GPU statistics)
        if device.type != "cuda":
            raise UserError("--sync-bn needs CUDA devices (torch's SyncBatchNorm does not run on CPU): drop --sync-bn")
        student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
        logger.info("--sync-bn: the student's BatchNorm layers are SyncBatchNorm over the processes")
    teacher = kd = None
    if args.kd:  # the teacher's outputs: the network, or a teacher store's (no network, docs/teacher_store.md)
        teacher = StoredTeacher() if args.teacher_store else build_teacher(args, num_classes, logger)
        kd = kd_from_args(args)  # valid: check_args parsed it once
    try:
        distiller = Distiller(student, build_task_loss(args, mixup_fn), teacher, kd.build() if kd else None,
                              args.ori_loss_weight, kd.weight if kd else 1.0, args.student_module,
                              args.teacher_module).to(device)
    except AttributeError as err:  # get_submodule of a name that is not there
        raise UserError(f"--student-module / --teacher-module: {err}") from None
    except ValueError as err:  # ls=1 on the feature maps of named modules
        raise UserError(str(err)) from None
    if args.channels_last:
        distiller.to(memory_format=torch.channels_last)
    distiller.prepare(next(iter(val_loader))[0][:2].to(device))
    trainable = distiller.trainable_modules()
    logger.info(f"student {args.model}: {sum(p.numel() for p in student.parameters()) / 1e6:.2f}M params"
                + (f" | teacher {args.teacher_model} | kd {kd}" if teacher is not None else ""))

    optimizer = build_optimizer(args, trainable)
    schedule = LRSchedule.from_args(args)
    dtype = amp_dtype(args, device)
    scaler = grad_scaler(dtype, device)  # float16 on CUDA only
    ema = ModelEmaV3(student, decay=args.model_ema_decay) if args.model_ema else None
    if args.compile:
        student.compile()
    model: nn.Module = distiller
    if dist.distributed:
        ids = [dist.local_rank] if device.type == "cuda" else None
        distiller.distribute(lambda module: DistributedDataParallel(module, device_ids=ids))  # the teacher stays out
    clip = args.clip_grad_max_norm if args.clip_grad_norm else None
    cfg = StepConfig(device, amp_dtype=dtype, scaler=scaler, clip_grad=clip, accum_steps=args.grad_accum_steps,
                     seed=args.seed, rank=dist.rank, channels_last=args.channels_last, mixup_fn=mixup_fn, ema=ema,
                     ema_target=student, log_interval=args.log_interval, max_iters=args.max_iters_per_epoch,
                     show_progress=dist.is_main, epochs=args.epochs, world_size=dist.world_size,
                     callbacks=Callbacks.from_env(), stop_requested=guard.requested)

    start_epoch, resumed_progress, best = 0, None, {"metric": "top1", "value": -1.0, "at": -1}
    if resume_path:
        ckpt = restore_training_state(resume_path, trainable, optimizer, scaler, ema.module if ema else None)
        position, best = ckpt["position"], ckpt["best"]
        start_epoch = int(position["epoch"])
        resumed_progress = position if position.get("iteration") else None
        logger.info(f"resumed from {resume_path} in epoch {start_epoch} after iteration {position['iteration']}")

    # Every input is valid: from here on the experiment folder is written.
    if dist.is_main:
        exp.create(start_over=args.overwrite and not resume_path)
        exp.write_args(args)
        exp.truncate_metrics("epoch", start_epoch - 1)
    logger = setup_logger("distkd.train", exp.path / "log.txt" if dist.is_main else None, dist.is_main)
    tracker = WandbRun(args, exp.path) if args.log_wandb and dist.is_main else None
    logger.info(f"experiment {exp.path} | world size {dist.world_size} | device {device} | "
                f"{'resumed at epoch ' + str(start_epoch) if resume_path else 'new run'}")
    if args.grad_accum_steps > 1:
        gpus = dist.world_size * args.grad_accum_steps
        logger.info(f"{args.grad_accum_steps} micro-batches of {args.batch_size} per process and step: trains as "
                    f"{gpus} GPUs x {args.batch_size} images ({gpus * args.batch_size} per optimizer step)")

    # rank 0 decides (--overwrite has it remove teacher.yaml while other ranks may look): all ranks evaluate, or none
    if teacher is not None and not args.teacher_store and from_rank0(not (exp.path / "teacher.yaml").exists()):
        t_stats = evaluate(distiller.teacher, val_loader, cfg)
        logger.info(f"teacher {args.teacher_model}: top-1 {t_stats['top1']:.2f} top-5 {t_stats['top5']:.2f}")
        if dist.is_main:
            exp.write_yaml("teacher.yaml", {"model": args.teacher_model, **t_stats})

    stats: dict[str, float] = {}
    end_epoch = args.epochs if not args.stop_after_epochs else min(args.epochs, start_epoch + args.stop_after_epochs)
    for epoch in range(start_epoch, end_epoch):
        progress = EpochProgress()
        if epoch == start_epoch and resumed_progress is not None:
            progress = EpochProgress.from_state(resumed_progress, device)
        train_loader.batch_sampler.set_epoch(epoch, progress.iteration)  # batches: (seed, epoch) only

        def after_step(progress: EpochProgress, iters: int, check_finite, epoch: int = epoch,
                       best: dict = best) -> None:
            stop = guard.agreed(progress.iteration, progress.iteration == iters)  # the same iteration on every rank
            if stop or (due(progress.iteration, args.save_interval) and progress.iteration < iters):
                check_finite()  # never checkpoint weights a non-finite step has touched
                if dist.is_main:
                    exp.save(checkpoint(args, trainable, optimizer, scaler, ema, {"epoch": epoch, **progress.state()},
                                        best), is_best=False)
            if stop:
                guard.stop(f"epoch {epoch} iteration {progress.iteration}", exp.last)
        if args.drop_path_rate > 0 and args.drop_path_strategy == "linear" and hasattr(student, "drop_path_rate"):
            student.drop_path_rate = args.drop_path_rate * epoch / args.epochs  # as the original: the attribute only
        train = train_one_epoch(model, train_loader, optimizer, schedule, epoch, cfg, logger, progress, after_step)
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
        if dist.is_main:
            exp.save(checkpoint(args, trainable, optimizer, scaler, ema, {"epoch": epoch + 1, "iteration": 0}, best),
                     is_best)
            exp.append_metrics(row)
            exp.tensorboard({k: v for k, v in row.items() if k != "epoch" and v != ""}, epoch)
            exp.plot_curves("epoch", ["train_loss", "val_top1"])
            if tracker is not None:
                tracker.log(row, epoch)
    exp.close()
    if tracker is not None:
        tracker.finish({"best_top1": best["value"], "best_epoch": best["at"]})
    logger.info(f"done: best top-1 {best['value']:.2f} at epoch {best['at']}; checkpoints in {exp.path}")
    return {**stats, "best_top1": best["value"]}


def checkpoint(args: argparse.Namespace, trainable: nn.ModuleDict, optimizer, scaler, ema, position: dict,
               best: dict) -> dict:
    """last.pth / best.pth in the shared format (:mod:`distkd.utils.training_state`); ``position``:
    the next epoch and the iterations done in it (inside an epoch: with its running loss sums)."""
    return training_state(trainable, optimizer, position, best, vars(args), scaler, ema.module if ema else None)


def current_rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
