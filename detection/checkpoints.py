"""Weight files for the OpenMMLab configs: local paths only (nothing is downloaded at run time),
checked before a model is built, with a one-line error that names the expected path."""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from distkd.errors import UserError

# Where each default weight file of configs/detection and configs/segmentation_mmseg comes from.
KNOWN_WEIGHTS = {
    "resnet50-0676ba61.pth": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth":
        "https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco/"
        "cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth",
    "retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth":
        "https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_x101_64x4d_fpn_1x_coco/"
        "retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth",
    "resnet18_v1c-b5776b93.pth": "https://download.openmmlab.com/pretrain/third_party/resnet18_v1c-b5776b93.pth",
    "deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth":
        "https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x1024_80k_cityscapes/"
        "deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth",
}


def require_local_file(path: str | os.PathLike, what: str) -> str:
    """Return ``path`` as a string if it is an existing local file, else raise a ``UserError``."""
    path = str(path)
    url = KNOWN_WEIGHTS.get(os.path.basename(path))
    fetch = f" Download it (e.g. `wget -P {os.path.dirname(path) or '.'} {url}`) or pass another file." if url else ""
    if "://" in path:
        raise UserError(f"{what} must be a local file, not {path!r}: download it once and give its path "
                        "(no downloads at run time; see detection/README.md)")
    if not os.path.isfile(path):
        hint = fetch + (" See detection/README.md, 'Weights'." if what != "checkpoint" else "")
        raise UserError(f"{what} not found: {path}.{hint}")
    return path


def weight_files(cfg: Any, where: str = "cfg") -> Iterator[tuple[str, str]]:
    """Yield ``(config key, path)`` for every ``teacher_ckpt`` and ``Pretrained`` ``init_cfg`` in ``cfg``."""
    if isinstance(cfg, Mapping):
        for key, value in cfg.items():
            if key == "teacher_ckpt" and value:
                yield f"{where}.{key}", str(value)
            elif key == "init_cfg" and isinstance(value, Mapping) and value.get("type") == "Pretrained":
                yield f"{where}.init_cfg.checkpoint", str(value["checkpoint"])
            else:
                yield from weight_files(value, f"{where}.{key}")
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from weight_files(value, f"{where}[{i}]")


def check_weight_files(cfg: Any) -> list[str]:
    """Check every weight file a config will load (model and ``load_from``) before building it."""
    found = [(key, path) for key, path in weight_files(cfg.get("model", {}), "model")]
    if cfg.get("load_from"):
        found.append(("load_from", str(cfg["load_from"])))
    return [require_local_file(path, key) for key, path in found]
