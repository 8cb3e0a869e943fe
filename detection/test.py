"""Evaluate a student: COCO bbox mAP through pycocotools (mmdet's CocoMetric), or mIoU for mmseg.

    python tools/test_mmdet.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] [--launcher ...]

CONFIG is one of this project's distillation configs (its student is tested, no teacher weights
needed) or any plain mmdet / mmseg config. CHECKPOINT is ``student_final.pth`` written at the end
of training, a full distillation checkpoint (``epoch_24.pth``: its student part is used), or a plain
mmdet / mmseg checkpoint. Multi-GPU: ``sh tools/dist_test_mmdet.sh CONFIG CHECKPOINT GPUS``.
"""
from __future__ import annotations

import argparse
import os

from detection.train import cpu_distributed, load_config, parse_launch, work_dir_of
from distkd_cli.args import ArgumentParser

STUDENT_PREFIX = "architecture."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("--work-dir", help="folder for logs and metrics (default: work_dirs/<config name>)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", help="override config keys: key=value")
    return parse_launch(p, argv)


def student_checkpoint(checkpoint: str, work_dir: str) -> str:
    """``checkpoint`` itself if it holds a plain model, else a student-only copy in ``work_dir``."""
    import torch

    from distkd.utils.checkpoint import atomic_save

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)  # detection.compat allowlists mmengine's
    weights = state.get("state_dict", state)
    if not any(k.startswith(STUDENT_PREFIX) for k in weights):
        return checkpoint
    student = {k[len(STUDENT_PREFIX):]: v for k, v in weights.items() if k.startswith(STUDENT_PREFIX)}
    meta = {k: v for k, v in state.get("meta", {}).items() if k == "dataset_meta"}
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, "student_" + os.path.basename(checkpoint))
    atomic_save({"meta": meta, "state_dict": student}, path)
    return path


def build_config(args: argparse.Namespace):
    from detection.checkpoints import require_local_file

    cfg = load_config(args)
    if "architecture" in cfg.model:  # a distillation config: test its student alone
        cfg.model = cfg.model.architecture
        cfg.model.get("backbone", {}).pop("init_cfg", None)  # weights come from the checkpoint
    cfg.work_dir = work_dir_of(args, cfg)
    cfg.load_from = student_checkpoint(require_local_file(args.checkpoint, "checkpoint"), cfg.work_dir)
    return cfg


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import detection.plugin  # noqa: F401

    cfg = build_config(args)
    cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    return runner.test()

