"""The classification commands (``[project.scripts]`` of pyproject.toml; ``tools/*.py`` call the same
functions): each runs its ``main`` through :func:`distkd_cli.run.run_cli`, so a bad input ends with
one line and exit code 2, a pre-emption with exit code 75, Ctrl-C with 130, and the process exits
without the interpreter's teardown."""
from __future__ import annotations

from distkd_cli.run import run_cli


def train() -> None:
    """``distkd-train`` (``tools/train.py``): train a classifier with or without KD."""
    from classification.train import main

    run_cli(main, fast_exit=True)


def test() -> None:
    """``distkd-test`` (``tools/test.py``): evaluate a checkpoint."""
    from classification.evaluate import main

    run_cli(main, fast_exit=True)


def build_teacher_store() -> None:
    """``distkd-build-teacher-store`` (``tools/build_teacher_store.py``): store a teacher's outputs."""
    from classification.teacher_store.cli import main

    run_cli(main, fast_exit=True)


def get_teachers() -> None:
    """``distkd-get-teachers`` (``tools/get_teachers.py``): fetch the paper's CIFAR-100 teachers."""
    from classification.teachers import main

    run_cli(main, fast_exit=True)
