"""Samplers of the segmentation trainer: the shared ones of :mod:`distkd.utils.sampling`."""
from __future__ import annotations

from distkd.utils.sampling import SeededBatchSampler, ShardSampler

__all__ = ["IterationBatchSampler", "ShardSampler"]


class IterationBatchSampler(SeededBatchSampler):
    """Batches of ``(index, seed)`` for iterations ``start_iteration .. max_iterations - 1`` of an
    endless stream of per-epoch permutations (:class:`~distkd.utils.sampling.SeededBatchSampler`);
    each sample's seed depends on ``(seed, epoch, index)`` only, so a resumed run sees exactly the
    batches and augmentations of the uninterrupted one."""

    def __init__(self, num_samples: int, batch_size: int, max_iterations: int, start_iteration: int = 0,
                 rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        super().__init__(num_samples, batch_size, rank, world_size, seed, start_iteration, max_iterations)
