"""One training command of a reproduction sweep, and the short model names experiment names use."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace

from distkd.reproduce.paper import PaperRow

_SHORT = {
    "cifar_mobile_half": "mbv2",
    "cifar_ShuffleV1": "shv1",
    "cifar_ShuffleV2": "shv2",
    "mobilenet_v1": "mbv1",
    "tv_mobilenet_v2": "mbv2",
    "timm_resnet50": "r50sb",
    "timm_tf_efficientnet_b0": "effb0",
    "timm_swin_large_patch4_window7_224": "swinl",
    "timm_swin_tiny_patch4_window7_224": "swint",
    "deeplabv3_resnet18": "dlv3r18",
    "deeplabv3_resnet101": "dlv3r101",
    "pspnet_resnet18": "pspr18",
    "faster_rcnn_r50_fpn": "frcnnr50",
    "cascade_mask_rcnn_x101_fpn": "cmrcnnx101",
    "retinanet_r50_fpn": "retinar50",
    "retinanet_x101_fpn": "retinax101",
}


def short_name(model: str) -> str:
    """``cifar_resnet8x4`` -> ``r8x4``, ``cifar_wrn_40_2`` -> ``wrn40-2``, ``tv_resnet18`` -> ``r18``."""
    if model in _SHORT:
        return _SHORT[model]
    name = re.sub(r"^(cifar_|tv_|timm_)", "", model)
    name = re.sub(r"^wrn_(\d+)_(\d+)$", r"wrn\1-\2", name)
    name = re.sub(r"(?i)^resnet", "r", name)
    return name.replace("_", "")


@dataclass(frozen=True)
class Job:
    """A command and what it trains: ``role`` is teacher, baseline, kd, dist or dist_mimic."""

    name: str
    role: str
    row: PaperRow
    seed: int
    argv: tuple[str, ...]
    config: str | None  # config file the command reads (checked to exist by the tests)
    models: tuple[str, ...]  # model names the command builds
    output_dir: str  # where the run writes args.yaml / metrics
    note: str = ""

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)

    def with_extra(self, extra: tuple[str, ...]) -> Job:
        return replace(self, argv=self.argv + extra) if extra else self
