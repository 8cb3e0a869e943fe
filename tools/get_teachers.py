#!/usr/bin/env python
"""Fetch the paper's released CIFAR-100 teachers into checkpoints/cifar100/<model>.pth.

    python tools/get_teachers.py cifar100                      # the paper's release (hunto/DIST_KD v0.0.2)
    python tools/get_teachers.py cifar100 --source mdistiller  # the same benchmark's teachers, mdistiller

See classification/teachers.py (checksums recorded on first download, DISTKD_MIRROR).

The installed command ``distkd-get-teachers`` is the same.
"""
from classification.commands import get_teachers

if __name__ == "__main__":
    get_teachers()
