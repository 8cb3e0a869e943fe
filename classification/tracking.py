"""Optional Weights & Biases logging (``--log-wandb``), beside TensorBoard and ``metrics.csv``.

``wandb`` is imported only when asked for (``pip install '.[wandb]'``); ``WANDB_MODE=offline`` logs
to ``<experiment>/wandb/`` for a later ``wandb sync``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distkd.errors import UserError


class WandbRun:
    """One W&B run per experiment: the options as its config, one log call per epoch."""

    def __init__(self, options: Mapping[str, Any], project: str, name: str, exp_path: str | Path) -> None:
        try:
            import wandb
        except ImportError:
            raise UserError("--log-wandb needs Weights & Biases: pip install 'distkd[wandb]' (or pip install "
                            "wandb), or drop --log-wandb") from None
        config = {k: v for k, v in options.items() if isinstance(v, (str, int, float, bool, type(None), list))}
        self.run = wandb.init(project=project, name=name, dir=str(exp_path),
                              config=config, resume="allow", id=_run_id(exp_path))

    def log(self, row: Mapping[str, Any], epoch: int) -> None:
        self.run.log({k: v for k, v in row.items() if k != "epoch" and v != ""}, step=epoch)

    def finish(self, summary: Mapping[str, Any]) -> None:
        self.run.summary.update(dict(summary))
        self.run.finish()


def _run_id(exp_path: str | Path) -> str:
    """A stable id per experiment folder, so that ``--resume`` continues the same W&B run."""
    path = Path(exp_path) / "wandb_id.txt"
    if path.is_file():
        return path.read_text().strip()
    import secrets

    run_id = secrets.token_hex(4)
    path.write_text(run_id + "\n")
    return run_id
