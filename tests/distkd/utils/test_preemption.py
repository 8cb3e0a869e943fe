"""Every rank stops after the same iteration: the ranks agree every AGREE_EVERY iterations and at
each epoch's end (an epoch shorter than AGREE_EVERY iterations would otherwise never stop)."""
import signal

import distkd.utils.preemption as preemption
from distkd.utils.preemption import AGREE_EVERY, PreemptionGuard


def test_ranks_agree_every_few_iterations_and_at_each_epoch_end(monkeypatch):
    reduced = []
    monkeypatch.setattr(preemption.dist, "is_available", lambda: True)
    monkeypatch.setattr(preemption.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(preemption.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(preemption.dist, "all_reduce", lambda flag, op: reduced.append(float(flag)))
    guard = PreemptionGuard()
    guard.received = signal.SIGTERM
    assert not guard.agreed(AGREE_EVERY - 9)  # no collective between agreements
    assert guard.agreed(11, epoch_end=True) and guard.agreed(AGREE_EVERY)
    assert reduced == [1.0, 1.0]
