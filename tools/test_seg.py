"""Evaluate a Cityscapes segmentation checkpoint, save colourised predictions; see segmentation/README.md.

    torchrun --nproc_per_node 8 tools/test_seg.py --model deeplabv3 --checkpoint best.pth ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distkd_cli.run import run_cli  # noqa: E402
from segmentation.test import main  # noqa: E402

if __name__ == "__main__":
    run_cli(main, fast_exit=True)
