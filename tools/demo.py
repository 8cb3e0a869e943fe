#!/usr/bin/env python
"""Digits demo: teacher, then student without KD / with KD / with DIST (see reproduce/demo.py).

The installed command ``distkd-demo`` is the same.
"""
import sys
from pathlib import Path

# This folder holds reproduce.py, which would shadow the `reproduce` package (installed, or on PYTHONPATH):
# leave the script's own folder off the module path, as `python -P` does.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from reproduce.commands import demo  # noqa: E402

if __name__ == "__main__":
    demo()
