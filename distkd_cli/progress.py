"""Throughput and time left for the trainers' log lines (and their progress bars).

Measured on this process from the end of its first step (start-up, data-loader workers and
``cudnn.benchmark`` trials are not a rate), over the wall clock, so data loading, logging and
checkpoints count as they do for the run. Under DDP every process steps together: images per second
are this process's times the number of processes.
"""
from __future__ import annotations

import time
from datetime import timedelta


def duration(seconds: float) -> str:
    """``3725`` -> ``1:02:05``; ``90061`` -> ``1 day, 1:01:01``."""
    return str(timedelta(seconds=max(0, round(seconds))))


class Throughput:
    """Counts the steps of this process; :meth:`text` is the tail of a log line."""

    def __init__(self, world_size: int = 1) -> None:
        self.world_size = world_size
        self.started: float | None = None  # end of the first step
        self.steps = 0  # after the first
        self.images = 0
        self.now = 0.0

    def step(self, images: int) -> None:
        self.now = time.perf_counter()
        if self.started is None:
            self.started = self.now
        else:
            self.steps += 1
            self.images += images

    def seconds_per_step(self) -> float | None:
        if not self.steps:
            return None
        return (self.now - self.started) / self.steps

    def images_per_second(self) -> float | None:
        if not self.steps or self.now <= self.started:
            return None
        return self.images * self.world_size / (self.now - self.started)

    def text(self, steps_left: int, run_steps_left: int | None = None, what: str = "epoch") -> str:
        """``'412 img/s, epoch 0:04:12 left, run 3:02:11 left'`` (the run's part: its training steps);
        ``''`` until a rate is known."""
        rate, per_step = self.images_per_second(), self.seconds_per_step()
        if rate is None or per_step is None:
            return ""
        parts = [f"{rate:,.0f} img/s", f"{what} {duration(steps_left * per_step)} left"]
        if run_steps_left is not None and run_steps_left != steps_left:
            parts.append(f"run {duration(run_steps_left * per_step)} left")
        return ", ".join(parts)
