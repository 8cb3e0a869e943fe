"""Training from a teacher store (``--teacher-store DIR``): stored views and teacher outputs replayed.

Each training sample ``index`` draws one of its V stored views from a generator seeded by
``(seed, epoch, index)`` (:func:`sample_view`), applies exactly that view to the image and returns
the stored teacher logits with it; the batch is ``(images, targets, teacher_logits)``, whose last
part the training step hands on as the batch context's ``teacher_outputs``; the run's teacher is a
:class:`~distkd.teacher.StoredTeacher`, which gives those (the teacher network is never built).
The draw does not depend on the rank, the number of processes or the loader workers.
"""
from __future__ import annotations

import copy

from torch.utils.data import DataLoader, Dataset, Subset

from classification.teacher_store.store import TeacherStore, check_identity, dataset_fingerprint
from classification.teacher_store.views import ReplayRecipe
from distkd.errors import UserError
from distkd.utils.sampling import PerSampleSeed, derive_seed, sample_seed


def view_of(sample_seed_value: int, views: int) -> int:
    """The stored view a sample uses, from its augmentation seed (``sample_seed(seed, epoch, index)``)."""
    return derive_seed(sample_seed_value, 3) % views


def sample_view(seed: int, epoch: int, index: int, views: int) -> int:
    """The stored view sample ``index`` uses in ``epoch``: seeded by ``(seed, epoch, index)`` as the rest
    of the augmentation (:func:`distkd.utils.sampling.sample_seed`)."""
    return view_of(sample_seed(seed, epoch, index), views)


def without_transform(dataset: Dataset) -> Dataset:
    """A shallow copy of ``dataset`` (or of the dataset under a Subset) returning untransformed images."""
    if isinstance(dataset, PerSampleSeed):
        return without_transform(dataset.dataset)
    dataset = copy.copy(dataset)
    if isinstance(dataset, Subset):
        dataset.dataset = without_transform(dataset.dataset)
        return dataset
    if not hasattr(dataset, "transform"):
        raise UserError(f"--teacher-store: a {type(dataset).__name__} training set has no transform to replace")
    dataset.transform = None
    return dataset


def without_per_sample_seed(dataset: Dataset) -> Dataset:
    return dataset.dataset if isinstance(dataset, PerSampleSeed) else dataset


def dataset_identity(name: str, train_set: Dataset) -> dict:
    return {"name": name, "images": len(train_set), "sha256": dataset_fingerprint(train_set)}


class ReplayDataset(Dataset):
    """``(index, sample seed)`` (the training batch sampler's items) -> ``(image under the drawn stored
    view, target, stored teacher logits)``."""

    def __init__(self, raw: Dataset, recipe: ReplayRecipe, store: TeacherStore, seed: int, uint8: bool = False) -> None:
        if len(raw) != len(store):
            raise UserError(f"teacher store has {len(store)} images, the training set {len(raw)}: rebuild the store")
        self.raw, self.recipe, self.store, self.seed = raw, recipe, store, seed
        self.uint8 = uint8  # the images as the uint8 pipeline's workers make them (normalised on the device)
        self.num_classes = getattr(raw, "num_classes", store.num_classes)

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        v = view_of(seed, self.store.views_per_image)
        image, target = self.raw[index]
        return self.recipe.apply(image, self.store.view(index, v), self.uint8), target, self.store.logits(index, v)


def check_replay_options(kd: str | None, kd_kwargs: dict, feature_modules: bool, mixup_active: bool,
                         skip_bad_images: bool) -> None:
    """What a store cannot serve (``kd``, ``kd_kwargs``: ``--kd``, ``--kd-loss-kwargs``; ``feature_modules``:
    ``--student-module`` or ``--teacher-module`` given), refused before anything is built."""
    from distkd.losses import kd_config

    if not kd:
        raise UserError("--teacher-store needs a KD method (--kd dist, --kd kd, ...) and --teacher-model")
    if kd_config(kd, kd_kwargs).accepts("inputs", "logits") == "features" or feature_modules:
        raise UserError(f"--teacher-store stores logits: --kd {kd} / --student-module / --teacher-module "
                        "distil features; use a logit loss (dist, kd) or an online teacher")
    if mixup_active:
        raise UserError("--teacher-store: mixup / cutmix (--mixup, --cutmix) mix images across the batch and "
                        "cannot be replayed from stored views; drop them or train with an online teacher")
    if skip_bad_images:
        raise UserError("--teacher-store cannot be used with --skip-bad-images (a skipped image would take "
                        "another image's stored outputs); fix the dataset")


def replay_loader(store_path: str, train_loader: DataLoader, num_classes: int, transform, teacher_id: dict,
                  dataset_name: str, seed: int, workers: int) -> DataLoader:
    """The training loader of a ``--teacher-store`` run (``transform``: the run's training transform;
    ``teacher_id``: :func:`teacher_identity` of its teacher), after checking the store matches the run.
    Given the trainer's :class:`~classification.data.on_device.DeviceLoader`, it is one too: uint8
    images, normalised on the device by the same conversion."""
    from classification.data.on_device import DeviceLoader

    recipe = ReplayRecipe(transform)  # refuses a transform it cannot replay
    store = TeacherStore(store_path)
    train_set = without_per_sample_seed(train_loader.dataset)
    check_identity(store.manifest, teacher_id, dataset_identity(dataset_name, train_set), recipe.description,
                   store_path)
    if store.num_classes != num_classes:
        raise UserError(f"teacher store has {store.num_classes} classes, the dataset {num_classes}")
    on_device = isinstance(train_loader, DeviceLoader)
    dataset = ReplayDataset(without_transform(train_set), recipe, store, seed, uint8=on_device)
    loader = DataLoader(dataset, batch_sampler=train_loader.batch_sampler,  # the trainer's seeded batches
                        num_workers=workers, pin_memory=train_loader.pin_memory, persistent_workers=workers > 0)
    return train_loader.wrap(loader) if on_device else loader
