"""The log lines' throughput and time left (distkd_cli/progress.py), on a fake clock."""
import distkd_cli.progress as progress
from distkd_cli.progress import Throughput, duration


def test_rate_and_time_left_count_from_the_end_of_the_first_step(monkeypatch):
    clock = iter([100.0, 102.0, 104.0, 106.0])  # the first step (start-up) took 100 s: not a rate
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    meter = Throughput(world_size=2)
    meter.step(32)
    assert meter.text(10) == ""  # no rate after one step
    for _ in range(3):
        meter.step(32)
    assert meter.images_per_second() == 32 * 2 / 2.0  # 2 s a step, 2 processes
    assert meter.text(30, 30 + 2 * 100) == "32 img/s, epoch 0:01:00 left, run 0:07:40 left"
    assert meter.text(5, 5) == "32 img/s, epoch 0:00:10 left"  # the last epoch: one figure
    assert meter.text(5, what="run") == "32 img/s, run 0:00:10 left"


def test_duration_format():
    assert (duration(3725), duration(90061), duration(-3)) == ("1:02:05", "1 day, 1:01:01", "0:00:00")
