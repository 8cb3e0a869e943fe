"""Write experiment folders in the trainer's formats (args.yaml, metrics.csv, teacher.yaml)."""
from __future__ import annotations

from pathlib import Path

import yaml

HEADER = "epoch,lr,train_loss,loss_ori,loss_kd,val_loss,val_top1,val_top5,best_top1,epoch_time\n"


def write_run(root: Path, name: str, *, model: str, dataset: str, epochs: int, top1: list[float],
              kd: str | None = None, teacher: str | None = None, seed: int = 0, config: str | None = None,
              teacher_top1: float | None = None, torn_line: bool = False, **more_args) -> Path:
    """A classification run whose val_top1 per finished epoch is ``top1``."""
    path = root / name
    path.mkdir(parents=True)
    args = {"model": model, "dataset": dataset, "epochs": epochs, "experiment": name, "seed": seed,
            "kd": kd, "teacher_model": teacher, "teacher_ckpt": None, "config": config, "lr": 0.05, **more_args}
    (path / "args.yaml").write_text(yaml.safe_dump(args))
    lines, best = [HEADER], 0.0
    for epoch, acc in enumerate(top1):
        best = max(best, acc)
        loss_kd = "0.5" if kd else ""
        lines.append(f"{epoch},0.05,1.0,0.9,{loss_kd},1.1,{acc},{acc + 10},{best},3.2\n")
    if torn_line:
        lines.append(f"{len(top1)},0.05,1.0")  # a crash while writing
    (path / "metrics.csv").write_text("".join(lines))
    if teacher_top1 is not None:
        (path / "teacher.yaml").write_text(yaml.safe_dump({"top1": teacher_top1, "top5": 99.0}))
    return path
