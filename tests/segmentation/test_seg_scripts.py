"""The launch scripts call torchrun with options the trainer / tester accept (torchrun faked)."""
import os
import subprocess
from pathlib import Path

import pytest

from segmentation import test as seg_test
from segmentation import train as seg_train

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "segmentation" / "train_scripts").rglob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script_options_parse(script, tmp_path):
    fake = tmp_path / "bin" / "torchrun"
    fake.parent.mkdir()
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    fake.chmod(0o755)
    out = tmp_path / "args.txt"
    env = dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}", ARGS_OUT=str(out), GPUS="4", CKPT="x.pth",
               FLIP="1", SCALES="0.75 1.0")  # fmt: skip
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=60)
    args = out.read_text().splitlines()
    assert args[:2] == ["--nproc_per_node", "4"]
    tool, options = args[2], args[3:]
    parser = seg_train.get_args_parser() if tool.endswith("train_seg.py") else seg_test.get_args_parser()
    parsed = parser.parse_args(options)
    if tool.endswith("train_seg.py"):
        assert parsed.batch_size == 16 and parsed.max_iterations == 40000 and parsed.lr == 0.02
        assert bool(parsed.teacher_model) == (script.parent.name == "train_kd")
    else:
        assert parsed.flip and parsed.scales == [0.75, 1.0]
