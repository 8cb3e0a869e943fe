"""Samplers: iteration-based training batches that resume exactly, and eval shards without padding."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class IterationBatchSampler(Sampler):
    """Batches of ``(index, seed)`` for iterations ``start_iteration .. max_iterations - 1``.

    The global stream of samples is the concatenation of per-epoch permutations seeded by
    ``(seed, epoch)``; iteration ``i`` on ``rank`` takes positions
    ``(i * world_size + rank) * batch_size + j``. Each sample also gets its own augmentation seed
    (its stream position), so a resumed run sees exactly the batches the uninterrupted one would.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        max_iterations: int,
        start_iteration: int = 0,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
    ) -> None:
        self.num_samples, self.batch_size = num_samples, batch_size
        self.start, self.stop = start_iteration, max_iterations
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_samples)
        if epoch not in self._perms:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perms = {epoch: torch.randperm(self.num_samples, generator=generator)}
        return int(self._perms[epoch][offset])

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for iteration in range(self.start, self.stop):
            first = (iteration * self.world_size + self.rank) * self.batch_size
            positions = range(first, first + self.batch_size)
            yield [(self._index(p), self.seed * 1_000_000_007 + p) for p in positions]

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)


class ShardSampler(Sampler):
    """Indices ``rank, rank + world_size, ...``: every sample evaluated exactly once over the ranks."""

    def __init__(self, num_samples: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, num_samples, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
