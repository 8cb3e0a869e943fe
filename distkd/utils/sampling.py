"""Sampling and seeding that make training reproducible whatever the number of data-loader workers
or processes, and resumable at any iteration (both trainers use them).

- :func:`derive_seed` mixes integers into one seed (numpy's ``SeedSequence``);
- :class:`SeededBatchSampler` yields one rank's batches of ``(index, sample seed)`` from a stream of
  per-epoch permutations seeded by ``(seed, epoch)``; it starts at any iteration;
- :class:`PerSampleSeed` seeds Python's, numpy's and torch's global generators from the sample seed
  right before the wrapped dataset loads and transforms the sample (inside the worker), so the
  augmentation of a sample depends only on ``(seed, epoch, index)``;
- :class:`ShardSampler` splits an evaluation set over the ranks without padding.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from distkd.utils.rng import seed_everything


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every integer of ``parts`` (order matters)."""
    entropy = [int(p) % 2**64 for p in parts]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]) >> 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of sample ``index`` in ``epoch``."""
    return derive_seed(seed, epoch, index, 0)


def step_seed(seed: int, epoch: int, iteration: int, rank: int = 0) -> int:
    """The seed of a training step (mixup / cutmix, dropout) on ``rank``."""
    return derive_seed(seed, epoch, iteration, rank, 1)


class SeededBatchSampler(Sampler[list[tuple[int, int]]]):
    """One rank's batches of ``(index, sample_seed(seed, epoch, index))``.

    Samples form a stream: the concatenation of permutations of ``range(num_samples)`` seeded by
    ``(seed, epoch)``. Iteration ``i`` on ``rank`` takes stream positions
    ``base + (i * world_size + rank) * batch_size + j``, ``j < batch_size``. Two ways to count:

    - ``epoch_iterations=None`` (iteration-based training, segmentation): ``base = 0`` and
      iterations ``start_iteration .. stop_iteration - 1`` run on through the epochs;
    - ``epoch_iterations=K`` (epoch-based training, classification): :meth:`set_epoch` selects
      epoch ``e`` (``base = e * num_samples``) and the first iteration; each epoch has ``K``
      iterations, ``K * world_size * batch_size <= num_samples`` (the rest is dropped).

    ``accum_steps=A`` (gradient accumulation, ``--emulate-gpus``): each iteration yields A batches,
    those of the virtual ranks ``rank * A + k``, ``k < A``, of a ``world_size * A``-rank run (the
    rank and world size above are then the virtual ones); iterations count optimizer steps.
    """

    def __init__(self, num_samples: int, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 start_iteration: int = 0, stop_iteration: int | None = None,
                 epoch_iterations: int | None = None, accum_steps: int = 1) -> None:
        if epoch_iterations is None and stop_iteration is None:
            raise ValueError("SeededBatchSampler needs stop_iteration or epoch_iterations")
        if epoch_iterations is not None and epoch_iterations * world_size * accum_steps * batch_size > num_samples:
            raise ValueError(f"{epoch_iterations} iterations of {world_size * accum_steps} x {batch_size} samples "
                             f"exceed {num_samples}")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.accum_steps = accum_steps
        self.epoch_iterations = epoch_iterations
        self.epoch, self.start = 0, start_iteration
        self.stop = stop_iteration if epoch_iterations is None else epoch_iterations
        self._perm: tuple[int, torch.Tensor] | None = None

    def set_epoch(self, epoch: int, start_iteration: int = 0) -> None:
        """Epoch-based counting: iterate epoch ``epoch`` from ``start_iteration`` (a resumed run)."""
        self.epoch, self.start = epoch, start_iteration

    def permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, 2))
            self._perm = (epoch, torch.randperm(self.num_samples, generator=generator))
        return self._perm[1]

    def _sample(self, position: int) -> tuple[int, int]:
        epoch, offset = divmod(position, self.num_samples)
        index = int(self.permutation(epoch)[offset])
        return index, sample_seed(self.seed, epoch, index)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        base = 0 if self.epoch_iterations is None else self.epoch * self.num_samples
        accum = self.accum_steps
        for iteration in range(self.start, self.stop):
            for k in range(accum):
                virtual_rank = self.rank * accum + k
                first = base + (iteration * self.world_size * accum + virtual_rank) * self.batch_size
                yield [self._sample(p) for p in range(first, first + self.batch_size)]

    def __len__(self) -> int:
        """Batches yielded: iterations x ``accum_steps``."""
        return max(self.stop - self.start, 0) * self.accum_steps


class PerSampleSeed(Dataset):
    """Items ``(index, seed)``: seeds the global generators with ``seed``, then returns ``dataset[index]``.

    Random transforms that draw from Python's ``random``, numpy or torch (torchvision's and timm's
    crops, flips, RandAugment, random erasing, Cutout) thus depend on the sample seed only, not
    on the worker or on the samples it loaded before."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):  # num_classes, targets, ... of the wrapped dataset
        if name == "dataset" or name.startswith("__"):  # not __getitems__: items are (index, seed)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        seed_everything(seed)
        return self.dataset[index]


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...``: every sample evaluated exactly once over the ranks."""

    def __init__(self, num_samples: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, num_samples, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
