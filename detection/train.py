"""Train an OpenMMLab distillation config of this project (mmdet / mmseg student, mmrazor algorithm).

    python tools/train_mmdet.py configs/detection/faster-rcnn_r50_dist_cascade-mask-rcnn_x101_2x_coco.py \
        --work-dir work_dirs/frcnn_dist [--teacher-ckpt FILE] [--student-backbone-ckpt FILE] \
        [--resume [CHECKPOINT]] [--amp] [--cfg-options key=value ...] [--launcher pytorch|slurm]

Multi-GPU / multi-node: ``sh tools/dist_train_mmdet.sh CONFIG GPUS WORK_DIR``; slurm:
``sh tools/slurm_train_mmdet.sh PARTITION JOB_NAME CONFIG WORK_DIR``. The torch-2.14 shims are applied
and the plugin registered before mmengine's Runner is built; every weight file the config names
is checked first (a missing one is a one-line error naming its path).
"""
from __future__ import annotations

import argparse
import os

from distkd.errors import UserError
from distkd.utils.distributed import emulated_steps
from distkd_cli.args import ArgumentParser


def require_openmmlab() -> None:
    """The torch-2.14 shims of :mod:`detection.compat`, or one line saying how to install the stack
    (the options are parsed, and ``--help`` printed, without it)."""
    from detection import compat

    try:
        compat.apply()
    except ModuleNotFoundError as err:
        raise UserError(f"the OpenMMLab stack is not installed (no module '{err.name or 'mmengine'}'): run "
                        "bash tools/install_openmmlab.sh (see detection/README.md)") from None


def cfg_options(values: list[str] | None) -> dict | None:
    """``--cfg-options k=v ...`` as mmengine's ``DictAction`` reads them (lists, tuples, numbers)."""
    if not values:
        return None
    from mmengine.config import DictAction

    for item in values:
        if "=" not in item:
            raise UserError(f"--cfg-options takes key=value pairs, got '{item}' (e.g. randomness.seed=0)")
    namespace = argparse.Namespace()
    DictAction(option_strings=["--cfg-options"], dest="cfg_options")(None, namespace, values)
    return namespace.cfg_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", help="mmengine config, e.g. configs/detection/*.py")
    p.add_argument("--work-dir", help="folder for logs and checkpoints (default: work_dirs/<config name>)")
    p.add_argument("--teacher-ckpt", help="teacher weights (overrides the config's teacher_ckpt)")
    p.add_argument("--student-backbone-ckpt", help="student backbone ImageNet weights (overrides the config's)")
    p.add_argument("--resume", nargs="?", const="auto", help="resume from CHECKPOINT, or the latest in work-dir")
    p.add_argument("--amp", action="store_true", help="mixed precision (AmpOptimWrapper)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", help="override config keys: key=value")
    p.add_argument("--emulate-gpus", type=int, default=None, metavar="N",
                   help="train as N GPUs of the config's batch per GPU: N / processes iterations accumulated per "
                        "optimizer step (accumulative_counts), iteration-counted schedules stretched to match "
                        "(dist_train_mmdet.sh sets it for the bundled COCO configs on fewer than 8 GPUs)")
    return parse_launch(p, argv)


def parse_launch(p: ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Both OpenMMLab tools: the launcher's options, then parse (``--help`` works without OpenMMLab);
    ``LOCAL_RANK`` for mmengine, the stack checked, ``--cfg-options`` read as mmengine reads them."""
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    require_openmmlab()
    args.cfg_options = cfg_options(args.cfg_options)
    return args


def load_config(args: argparse.Namespace):
    """``args.config`` with ``--launcher`` and ``--cfg-options`` applied (shared with :mod:`detection.test`)."""
    from mmengine.config import Config

    if not os.path.isfile(args.config):
        raise UserError(f"config not found: {args.config}")
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def work_dir_of(args: argparse.Namespace, cfg) -> str:
    name = os.path.splitext(os.path.basename(args.config))[0]
    return args.work_dir or cfg.get("work_dir") or os.path.join("work_dirs", name)


def build_config(args: argparse.Namespace):
    """The config with the command line's overrides applied."""
    cfg = load_config(args)
    if args.teacher_ckpt:
        if "teacher_ckpt" not in cfg.model:
            raise UserError(f"--teacher-ckpt given but {args.config} has no model.teacher_ckpt")
        cfg.model.teacher_ckpt = args.teacher_ckpt
    if args.student_backbone_ckpt:
        student = cfg.model.get("architecture", cfg.model)
        student.backbone.init_cfg = dict(type="Pretrained", checkpoint=args.student_backbone_ckpt)
    cfg.work_dir = work_dir_of(args, cfg)
    if args.emulate_gpus is not None:
        emulate_gpus(cfg, args.emulate_gpus, int(os.environ.get("WORLD_SIZE", "1")))
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def emulate_gpus(cfg, gpus: int, world_size: int) -> int:
    """An optimizer step of ``gpus`` GPUs on ``world_size`` processes: each keeps the config's images per
    GPU and accumulates K = gpus / world_size iterations (mmengine's ``accumulative_counts``: the loss of
    each divided by K, DDP's sync on the last). Schedules counted in iterations (warm-up, an
    iteration-based loop, its validation interval) are multiplied by K, so that they count the same
    optimizer steps; epoch-based ones are unchanged (an epoch holds K times the iterations). Returns K."""
    k = emulated_steps(gpus, world_size)
    if k == 1:
        return k
    cfg.optim_wrapper.accumulative_counts = k
    for scheduler in cfg.get("param_scheduler") or []:
        if not scheduler.get("by_epoch", True):
            for key in ("begin", "end"):
                if isinstance(scheduler.get(key), int):
                    scheduler[key] *= k
    loop = cfg.get("train_cfg") or {}
    if "IterBased" in str(loop.get("type", "")):
        for key in ("max_iters", "val_interval"):
            if key in loop:
                loop[key] *= k
    return k


def cpu_distributed(cfg) -> None:
    """Without CUDA, run a launched job on CPU: mmengine's launcher calls ``torch.cuda.set_device``
    and wraps DDP with ``device_ids=[LOCAL_RANK]``, so join the gloo group here and wrap CPU DDP."""
    import torch

    if cfg.launcher != "pytorch" or torch.cuda.is_available():
        return
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="gloo")
    cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"
    cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False,
                                 find_unused_parameters=cfg.get("find_unused_parameters", False))


def main(argv: list[str] | None = None):
    args = parse_args(argv)
    import detection.plugin  # noqa: F401  (registers losses, algorithms, hooks)
    from detection.checkpoints import check_weight_files

    cfg = build_config(args)
    check_weight_files(cfg)
    cpu_distributed(cfg)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    return runner.train()

