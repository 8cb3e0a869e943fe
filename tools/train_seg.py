"""Cityscapes segmentation training (baseline or DIST); see segmentation/README.md.

    torchrun --nproc_per_node 8 tools/train_seg.py --teacher-model deeplabv3 --student-model deeplabv3 ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distkd_cli.run import run_cli  # noqa: E402
from segmentation.train import main  # noqa: E402

if __name__ == "__main__":
    run_cli(main, fast_exit=True)
