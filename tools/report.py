#!/usr/bin/env python
"""Put your runs beside the paper's numbers (see reproduce/report_cli.py and docs/reproduce.md).

    python tools/report.py experiments             # print the table, write experiments/report.{md,csv,png}
    python tools/report.py --run experiments/resnet18_resnet34_dist --paper-log auto   # the paper's curve

The installed command ``distkd-report`` is the same.
"""
import sys
from pathlib import Path

# This folder holds reproduce.py, which would shadow the `reproduce` package (installed, or on PYTHONPATH):
# leave the script's own folder off the module path, as `python -P` does.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from reproduce.commands import report  # noqa: E402

if __name__ == "__main__":
    report()
