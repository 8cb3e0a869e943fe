#!/usr/bin/env python
"""Digits demo: teacher, then student without KD / with KD / with DIST (see classification/demo.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from classification.demo import main  # noqa: E402
from distkd_cli.run import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(main, fast_exit=True)
