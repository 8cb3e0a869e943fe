"""Evaluate a segmentation checkpoint on Cityscapes val (mIoU, per-class IoU), optionally multi-scale
+ flip, and save predictions as Cityscapes palette PNGs (pixel values = official label ids, the
format of the evaluation server; colours = the Cityscapes palette). Works on the test split too
(predictions only). Launch with ``torchrun`` to split the images over GPUs.

Images are fed in the input format the checkpoint was trained with (its record; ``paper`` for the
paper code's files), so the paper's released teacher evaluates as released:

    tools/test_seg.py --model deeplabv3 --backbone resnet101_v1s \
        --checkpoint ckpts/deeplabv3_resnet101_citys_best_model.pth --data data/cityscapes
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from distkd.errors import UserError
from distkd.utils.checkpoint import extract_state_dict
from distkd.utils.distributed import cleanup_distributed, init_distributed
from distkd.utils.logging import setup_logger
from distkd_cli.args import ArgumentParser
from segmentation.datasets import (
    INPUT_FORMATS,
    NUM_CLASSES,
    Cityscapes,
    EvalTransform,
    ShardSampler,
    colorize,
    recorded_input_format,
)
from segmentation.engine.inference import predict
from segmentation.engine.metrics import ConfusionMatrix, format_iou
from segmentation.models import build_segmentor, load_segmentor_weights
from segmentation.models.weights import read_weights


def get_args_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="deeplabv3", help="deeplabv3, psp, deeplab_mobile or psp_mobile")
    p.add_argument("--backbone", default=None,
                   help="as at training (default: the checkpoint's record, else resnet18_v1s / mobilenetv2); "
                        "the paper's resnet18/resnet101 are resnet18_v1s/resnet101_v1s")
    p.add_argument("--checkpoint", "--pretrained", required=True, metavar="PATH", help="best.pth / last.pth")
    p.add_argument("--data-path", "--data", default="data/cityscapes", help="Cityscapes root")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--list", default=None, help="list file instead of scanning the layout")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0], help="e.g. 0.75 1.0 1.25 1.5 1.75")
    p.add_argument("--flip", action="store_true", help="add horizontally flipped predictions")
    p.add_argument("--save-pred", default=None, metavar="DIR", help="write <name>.png predictions here")
    p.add_argument("--out", default=None, metavar="JSON", help="write mIoU and per-class IoU here")
    p.add_argument("--input-format", default=None, choices=sorted(INPUT_FORMATS),
                   help="only for checkpoints that do not record theirs (default: paper); must agree otherwise")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--workers", "-j", type=int, default=4)
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    return p


def input_format_of(given: str | None, path: str, checkpoint: object) -> str:
    """The checkpoint's recorded input format; ``--input-format`` (``given``, default paper) when it has none."""
    recorded = recorded_input_format(checkpoint)
    if recorded is not None and given not in (None, recorded):
        raise UserError(
            f"checkpoint '{path}' was trained with input format '{recorded}', not "
            f"'{given}': drop --input-format (it is read from the checkpoint)"
        )
    return recorded or given or "paper"


def load_model(model_name: str, backbone: str | None, path: str, checkpoint: object) -> torch.nn.Module:
    """``model_name`` with ``backbone`` (default: the checkpoint's record) and the checkpoint's weights."""
    state = extract_state_dict(checkpoint, f"checkpoint '{path}'")
    aux = any(k.startswith(("aux_head.", "auxlayer.")) for k in state)  # this code's / the paper code's
    recorded = checkpoint.get("args") if isinstance(checkpoint, dict) else None
    backbone = backbone or (recorded.get("student_backbone") if isinstance(recorded, dict) else None)
    model = build_segmentor(model_name, backbone, NUM_CLASSES, aux)
    load_segmentor_weights(model, path, "checkpoint", checkpoint)
    return model


@torch.no_grad()
def run(args: argparse.Namespace) -> dict:
    info = init_distributed(args.device)
    logger = setup_logger("segmentation.test", None, info.is_main)
    device, amp = info.device, args.amp and info.device.type == "cuda"
    checkpoint = read_weights(args.checkpoint, "checkpoint")
    input_format = input_format_of(args.input_format, args.checkpoint, checkpoint)
    model = load_model(args.model, args.backbone, args.checkpoint, checkpoint).to(device).eval()
    del checkpoint
    logger.info("checkpoint %s, input format %s", args.checkpoint, input_format)
    dataset = Cityscapes(args.data_path, args.split, args.list, EvalTransform(input_format))
    loader = DataLoader(dataset, batch_size=1, sampler=ShardSampler(len(dataset), info.rank, info.world_size),
                        num_workers=args.workers)
    out_dir = Path(args.save_pred) if args.save_pred else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    matrix = ConfusionMatrix(NUM_CLASSES, device=device)
    for images, labels, names in tqdm(loader, desc=args.split, disable=not info.is_main):
        with torch.autocast(device.type, enabled=amp):
            pred = predict(model, images.to(device), args.scales, args.flip).argmax(1)
        if dataset.with_labels:
            matrix.update(pred, labels.to(device))
        if out_dir is not None:
            for name, p in zip(names, pred.cpu().numpy()):
                colorize(p).save(out_dir / f"{name}.png")
    result = {"checkpoint": str(args.checkpoint), "split": args.split, "scales": args.scales, "flip": args.flip,
              "input_format": input_format}
    if dataset.with_labels:
        matrix.all_reduce()
        iou = matrix.iou()
        result.update(miou=matrix.miou(), pixel_accuracy=matrix.pixel_accuracy(), iou=iou.tolist())
        logger.info("%s mIoU %.2f %%, pixel acc %.2f %%\n%s", args.split, 100 * result["miou"],
                    100 * result["pixel_accuracy"], format_iou(iou))
    if out_dir is not None:
        logger.info("predictions written to %s", out_dir)
    if args.out and info.is_main:
        Path(args.out).write_text(json.dumps(result, indent=2))
    cleanup_distributed()
    return result


def main(argv: list[str] | None = None) -> dict:
    args = get_args_parser().parse_args(argv)
    if args.split == "test" and not args.save_pred:
        raise UserError("the test split has no labels: pass --save-pred DIR to write the predictions")
    return run(args)
