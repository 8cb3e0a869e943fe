#!/usr/bin/env python
"""Print (default) or run, in order, every command that reproduces one of the paper's tables
(see reproduce/cli.py and docs/reproduce.md).

    python tools/reproduce.py cifar100                 # dry run: print the commands
    python tools/reproduce.py cifar100 --seeds 3 --run # train teachers, then every student

The installed command ``distkd-reproduce`` is the same.
"""
import sys
from pathlib import Path

# This folder holds reproduce.py, which would shadow the `reproduce` package (installed, or on PYTHONPATH):
# leave the script's own folder off the module path, as `python -P` does.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from reproduce.commands import reproduce  # noqa: E402

if __name__ == "__main__":
    reproduce()
