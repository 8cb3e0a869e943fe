"""What a run writes besides checkpoints: ``metrics.csv`` (validation), ``train_log.csv`` (losses),
TensorBoard events under ``tb/``. Only rank 0 writes; losses are averaged over the ranks first."""
from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import Tensor

from distkd.utils.distributed import all_reduce_sum
from segmentation.datasets import CLASS_NAMES
from segmentation.engine.metrics import ConfusionMatrix

TRAIN_COLUMNS = ("iteration", "lr", "loss", "loss_ori", "loss_kd")
VAL_COLUMNS = ("iteration", "val_miou", "val_pixel_acc") + tuple(f"iou_{n.replace(' ', '_')}" for n in CLASS_NAMES)


def format_iou(iou: Tensor) -> str:
    """Per-class IoU as ``name value`` lines (``-`` for classes with no IoU)."""
    return "\n".join(
        f"  {name:<14} {value:.4f}" if value == value else f"  {name:<14} -"
        for name, value in zip(CLASS_NAMES, iou.tolist())
    )


class Records:
    def __init__(self, save_dir: Path, is_main: bool, fresh: bool, resumed_at: int | None = None) -> None:
        self.is_main = is_main
        self.writer = None
        if not is_main:
            return
        self.train_csv, self.val_csv = save_dir / "train_log.csv", save_dir / "metrics.csv"
        for path, columns in ((self.train_csv, TRAIN_COLUMNS), (self.val_csv, VAL_COLUMNS)):
            if fresh or not path.exists():
                path.write_text(",".join(columns) + "\n")
            elif resumed_at is not None:  # rows written after the checkpoint (a kill) come again: drop them
                lines = path.read_text().splitlines(keepends=True)
                kept = [line for line in lines[1:] if int(line.split(",", 1)[0]) <= resumed_at]
                path.write_text("".join(lines[:1] + kept))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(save_dir / "tb"))

    def _append(self, path: Path, row: list) -> None:
        with path.open("a", newline="") as f:
            csv.writer(f).writerow(row)

    def log_train(self, iteration: int, lr: float, losses: dict[str, Tensor]) -> dict[str, float]:
        """Average ``losses`` over the ranks (every rank calls this) and record them on rank 0."""
        names = sorted(losses)
        stacked = torch.stack([losses[n].detach().float() for n in names])
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        values = dict(zip(names, (all_reduce_sum(stacked) / world).tolist()))
        if self.is_main:
            self._append(self.train_csv, [iteration, f"{lr:.6g}"] + [values.get(c, "") for c in TRAIN_COLUMNS[2:]])
            self.writer.add_scalar("train/lr", lr, iteration)
            for name, value in values.items():
                self.writer.add_scalar(f"train/{name}", value, iteration)
        return values

    def log_val(self, iteration: int, matrix: ConfusionMatrix) -> None:
        """One ``metrics.csv`` row: mIoU, pixel accuracy and the per-class IoU (empty: class absent)."""
        if self.is_main:
            iou = [f"{v:.6f}" if v == v else "" for v in matrix.iou().tolist()]
            self._append(self.val_csv, [iteration, f"{matrix.miou():.6f}", f"{matrix.pixel_accuracy():.6f}", *iou])
            self.writer.add_scalar("val/mIoU", matrix.miou(), iteration)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
