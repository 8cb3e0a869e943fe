"""The reproduction commands (``[project.scripts]`` of pyproject.toml; ``tools/reproduce.py``,
``tools/report.py`` and ``tools/demo.py`` call the same functions), run through
:func:`distkd_cli.run.run_cli` (one-line errors, a quiet end when the reader of the output goes away,
a quick exit)."""
from __future__ import annotations

from distkd_cli.run import run_cli


def reproduce() -> None:
    """``distkd-reproduce`` (``tools/reproduce.py``): print or run the commands of a paper table."""
    from reproduce.cli import main

    run_cli(main, fast_exit=True)


def report() -> None:
    """``distkd-report`` (``tools/report.py``): your runs beside the paper's numbers."""
    from reproduce.report_cli import main

    run_cli(main, fast_exit=True)


def demo() -> None:
    """``distkd-demo`` (``tools/demo.py``): the digits demo, teacher then students without KD, with KD, with DIST."""
    from reproduce.demo import main

    run_cli(main, fast_exit=True)
