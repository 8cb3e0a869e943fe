"""Rank-aware logging to the console and to ``<experiment>/log.txt``."""
from __future__ import annotations

import logging
import sys
from pathlib import Path


class _ConsoleHandler(logging.StreamHandler):
    """Writes around a live progress bar (tqdm's ``write``: the bar is cleared and redrawn) instead of
    through it; a plain stream write when tqdm is not installed (the core needs torch only)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            return super().emit(record)
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # as logging.StreamHandler: never raise from logging
            self.handleError(record)


def setup_logger(name: str, log_file: str | Path | None = None, is_main: bool = True) -> logging.Logger:
    """A logger that prints on rank 0 only and also appends to ``log_file`` when given."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = _ConsoleHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if log_file is not None and is_main:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger
