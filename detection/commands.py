"""The OpenMMLab commands (``[project.scripts]`` of pyproject.toml; ``tools/train_mmdet.py`` and
``tools/test_mmdet.py`` call the same functions), run through :func:`distkd_cli.run.run_cli`
(one-line errors, exit codes 2 / 75 / 130, a quick exit). ``--help`` works without OpenMMLab."""
from __future__ import annotations

import warnings

from distkd_cli.run import run_cli


def _quiet_pkg_resources() -> None:
    """mmengine imports pkg_resources (setuptools < 81 is kept for it); its deprecation notice is noise here."""
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)


def train() -> None:
    """``distkd-train-mmdet`` (``tools/train_mmdet.py``): train an mmdet / mmseg distillation config."""
    _quiet_pkg_resources()
    from detection.train import main

    run_cli(main, fast_exit=True)


def test() -> None:
    """``distkd-test-mmdet`` (``tools/test_mmdet.py``): COCO mAP or mIoU of a student checkpoint."""
    _quiet_pkg_resources()
    from detection.test import main

    run_cli(main, fast_exit=True)
