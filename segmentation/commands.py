"""The segmentation commands (``[project.scripts]`` of pyproject.toml; ``tools/train_seg.py`` and
``tools/test_seg.py`` call the same functions), run through :func:`distkd_cli.run.run_cli` (one-line
errors, exit codes 2 / 75 / 130, a quick exit)."""
from __future__ import annotations

from distkd_cli.run import run_cli


def train() -> None:
    """``distkd-train-seg`` (``tools/train_seg.py``): Cityscapes training, baseline or DIST."""
    from segmentation.train import main

    run_cli(main, fast_exit=True)


def test() -> None:
    """``distkd-test-seg`` (``tools/test_seg.py``): evaluate a Cityscapes checkpoint."""
    from segmentation.test import main

    run_cli(main, fast_exit=True)
