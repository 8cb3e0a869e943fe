"""The paper's classification training recipes: the bundled configs and ``--kd`` names of each, and
the number of GPUs of the paper's runs. Read by ``tools/reproduce.py`` (the commands of every table)
and by the trainer (a paper config run on fewer GPUs than the paper's is named in one line).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """Configs and ``--kd`` names of one classification training recipe."""

    prefix: str  # experiment-name prefix
    baseline: str  # config of runs without KD (teachers and baseline students)
    kd: tuple[str, str, tuple[str, ...]]  # (config, --kd name, extra options) of the KD column
    dist: tuple[str, str, tuple[str, ...]]  # same for the DIST column
    train_teacher: bool  # True: train the teacher first; False: torchvision/timm weights
    gpus: int  # default number of GPUs (the paper's setup)
    notes: dict[str, str] = field(default_factory=dict)


_BASE, _DISTILL = "configs/strategies/baseline", "configs/strategies/distill"
RECIPES = {
    "cifar": Recipe(
        "cifar100", f"{_BASE}/cifar.yaml", (f"{_DISTILL}/kd_cifar.yaml", "kdt4", ()),
        (f"{_DISTILL}/dist_cifar.yaml", "dist_t4", ()), train_teacher=True, gpus=1,
    ),
    "plain": Recipe(
        "imagenet", f"{_BASE}/resnet.yaml", (f"{_DISTILL}/resnet_kdt4.yaml", "kdt4", ()),
        (f"{_DISTILL}/resnet_dist.yaml", "dist", ()), train_teacher=False, gpus=8,
    ),
    "strong": Recipe(
        "imagenet_strong", f"{_BASE}/b2.yaml",
        (f"{_DISTILL}/dist_b2.yaml", "kdt4", ("--ori-loss-weight", "0.9", "--kd-loss-weight", "1")),
        (f"{_DISTILL}/dist_b2.yaml", "dist", ()), train_teacher=False, gpus=8,
        notes={"kd": "no released strong-recipe KD config: dist_b2 with KD T=4 and resnet_kdt4's loss weights"},
    ),
    "digits": Recipe(  # loss weights as the CIFAR recipes (kd_cifar.yaml, dist_cifar.yaml); tools/demo.py too
        "digits", "configs/digits.yaml",
        ("configs/digits.yaml", "kdt4", ("--ori-loss-weight", "0.9", "--kd-loss-weight", "1")),
        ("configs/digits.yaml", "dist_t4", ("--ori-loss-weight", "1", "--kd-loss-weight", "2")),
        train_teacher=True, gpus=0,
    ),
}
