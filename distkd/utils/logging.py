"""Rank-aware logging to the console and to ``<experiment>/log.txt``."""
from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logger(name: str, log_file: str | Path | None = None, is_main: bool = True) -> logging.Logger:
    """A logger that prints on rank 0 only and also appends to ``log_file`` when given."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if log_file is not None and is_main:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger
