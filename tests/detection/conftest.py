"""Fixtures for the OpenMMLab tests (skipped as a whole when the stack is not installed)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory):
    """A 3-image COCO-format set on disk (see detection/tiny.py)."""
    pytest.importorskip("mmdet")
    from detection.tiny import write_tiny_coco

    return write_tiny_coco(tmp_path_factory.mktemp("coco"))
