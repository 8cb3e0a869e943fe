"""An experiment folder: ``args.yaml``, ``log.txt``, ``metrics.csv``, TensorBoard events, a curve PNG,
``last.pth`` / ``best.pth`` (written atomically). Shared by the task trainers."""
from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from distkd.errors import UserError
from distkd.utils.checkpoint import atomic_save


class ExperimentDir:
    def __init__(self, root: str | Path, name: str, name_option: str = "--experiment name") -> None:
        self.path = Path(root) / name
        self.name_option = name_option  # how the user names the folder, for messages
        self.last = self.path / "last.pth"
        self.best = self.path / "best.pth"
        self.metrics = self.path / "metrics.csv"
        self._writer = None

    def has_checkpoint(self) -> bool:
        return self.last.exists() or self.best.exists()

    def check(self, resume: str | None, overwrite: bool) -> Path | None:
        """Before anything is written: refuse to start over an existing run without --resume /
        --overwrite, fail early if the folder cannot be created; returns the checkpoint to resume
        from: ``--resume auto`` is this experiment's last.pth, or None while there is none (a job
        script may always pass it), else the path given."""
        if self.has_checkpoint() and not resume and not overwrite:
            raise UserError(
                f"experiment '{self.path}' already holds checkpoints; continue it with --resume auto, "
                f"start over with --overwrite, or choose another {self.name_option}"
            )
        existing = next(p for p in (self.path, *self.path.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"cannot create experiment folder '{self.path}': '{existing}' is not a writable folder")
        if resume == "auto":
            return self.last if self.last.exists() else None
        return Path(resume) if resume else None

    def create(self, start_over: bool) -> None:
        """Create the folder (``start_over`` removes an earlier run's checkpoints, metrics, logs, TensorBoard)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise UserError(f"experiment folder '{self.path}' is not writable ({err.strerror})") from None
        if start_over:  # checkpoints and records of the earlier run (both trainers' file names)
            for stale in (self.last, self.best, self.metrics, self.path / "teacher.yaml", self.path / "train_log.csv",
                          self.path / "log.txt", self.path / "curves.png"):
                stale.unlink(missing_ok=True)
            shutil.rmtree(self.path / "tb", ignore_errors=True)

    def write_args(self, options: Mapping[str, Any]) -> None:
        """``args.yaml``: the run's options, ``option: value`` in the parser's order."""
        (self.path / "args.yaml").write_text(yaml.safe_dump(dict(options), sort_keys=False))

    def write_yaml(self, name: str, data: Mapping[str, Any]) -> None:
        (self.path / name).write_text(yaml.safe_dump(dict(data), sort_keys=False))

    def append_metrics(self, row: Mapping[str, Any], name: str = "metrics.csv") -> None:
        """Append a row to a CSV file of the folder (header from the first row)."""
        path = self.path / name
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())

    def truncate_metrics(self, key: str, last_kept: int, name: str = "metrics.csv") -> None:
        """Keep only rows with ``row[key] <= last_kept``: at resume, rows written after the checkpoint
        (a crash or kill) go, so that the resumed run writes each row once."""
        path = self.path / name
        if not path.exists():
            return
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return
        kept = [r for r in rows if int(float(r[key])) <= last_kept]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)

    def save(self, state: Mapping[str, Any], is_best: bool) -> None:
        """Write last.pth (and best.pth) atomically; a failed write leaves the previous files intact."""
        try:
            atomic_save(state, self.last)
            if is_best:
                atomic_save(state, self.best)
        except OSError as err:
            raise UserError(
                f"could not write a checkpoint to '{self.path}' ({err.strerror or err}); the previous checkpoint "
                "is intact: free space or fix the folder, then continue with --resume auto"
            ) from None

    def tensorboard(self, scalars: Mapping[str, float], step: int) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.path / "tb"))
        for name, value in scalars.items():
            if value is not None:
                self._writer.add_scalar(name, value, step)
        self._writer.flush()

    def plot_curves(self, x_key: str, y_keys: list[str], file: str = "curves.png") -> None:
        """Plot metrics.csv columns against ``x_key`` into a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with open(self.metrics, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return
        xs = [float(r[x_key]) for r in rows]
        fig, axes = plt.subplots(1, len(y_keys), figsize=(5 * len(y_keys), 3.5))
        for ax, key in zip(axes if len(y_keys) > 1 else [axes], y_keys):
            ys = [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]
            ax.plot(xs, ys, marker="o", ms=3)
            ax.set_xlabel(x_key)
            ax.set_title(key)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.path / file, dpi=100)
        plt.close(fig)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

