"""Everything the OpenMMLab configs of this project need, registered in one import.

Configs list it in ``custom_imports = dict(imports=['detection.plugin'])``, so mmdet's, mmseg's or
mmrazor's own ``tools/train.py`` can run them too (with this repository on ``PYTHONPATH``).
"""
from detection import compat

compat.apply()  # before anything imports mmrazor

from detection import algorithms, hooks, losses  # noqa: E402

__all__ = ["algorithms", "hooks", "losses"]
