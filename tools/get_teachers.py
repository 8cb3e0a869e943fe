#!/usr/bin/env python
"""Fetch the paper's released CIFAR-100 teachers into checkpoints/cifar100/<model>.pth.

    python tools/get_teachers.py cifar100                      # the paper's release (hunto/DIST_KD v0.0.2)
    python tools/get_teachers.py cifar100 --source mdistiller  # the same benchmark's teachers, mdistiller

Downloads once (progress bar, temp file, atomic rename), records the SHA-256 of the archive and of
each teacher in checkpoints/cifar100/sha256.json (trust-on-first-use: no checksum is published),
and checks every teacher loads into its model. ``DISTKD_MIRROR=URL`` fetches from a mirror.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from classification.teachers import CIFAR100_TEACHERS, DEFAULT_ROOT, SOURCES, get_cifar100_teachers  # noqa: E402
from distkd_cli.args import ArgumentParser  # noqa: E402
from distkd_cli.run import run_cli  # noqa: E402


def main(argv=None) -> None:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=["cifar100"], help="which teachers")
    p.add_argument("--root", default=str(DEFAULT_ROOT), help="checkpoint folder (teachers go to ROOT/cifar100/)")
    p.add_argument("--source", default="dist_kd", choices=sorted(SOURCES))
    p.add_argument("--models", nargs="*", default=None, choices=list(CIFAR100_TEACHERS), help="default: all four")
    p.add_argument("--offline", action="store_true", help="never download (the archive must already be there)")
    args = p.parse_args(argv)
    paths = get_cifar100_teachers(args.root, args.source, args.offline, args.models)
    for model, path in paths.items():
        print(f"--teacher-model {model} --teacher-ckpt {path}")


if __name__ == "__main__":
    run_cli(main, fast_exit=True)
