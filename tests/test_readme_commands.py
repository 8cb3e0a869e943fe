"""README.md's commands do what it says: those that run on a CPU in seconds run as written (in an
empty folder, in the README's order); every other command is listed here with why it does not run
in the tests (GPUs, ImageNet, downloads, minutes), and its tool starts (``--help``)."""
from __future__ import annotations

import os
import re
import runpy
import shlex
import subprocess
import sys

import pytest

from tests.conftest import HANG_GUARD_S, ROOT

README = (ROOT / "README.md").read_text()
_BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
_LINES = [line.split("  #")[0].strip() for block in _BLOCKS for line in block.splitlines()]
_INLINE = [" ".join(c.split()) for c in re.findall(r"`((?:python|sh|bash|pip) [^`]+)`", README)]
COMMANDS = sorted({c for c in _LINES + _INLINE if c.startswith(("python ", "sh ", "bash ", "pip "))})

# Run as written on a CPU, in this order, in one empty folder (the report reads what the first wrote).
RUN = [
    "python tools/train.py --dataset digits --model cifar_resnet8 --epochs 1",
    "python tools/reproduce.py cifar100 --seeds 3",
    "python tools/report.py experiments",
    "python tools/reproduce.py cifar100 | head",
    "python tools/reproduce.py imagenet_baseline --gpus 2",
    "python tools/reproduce.py cifar100-methods --seeds 3",
    "python tools/reproduce.py cifar100-methods --recipe published",
]
# Why the others are not run here (each is parsed or checked elsewhere, see the test named).
NOT_RUN = {
    "pip ": "installs packages (the set-up itself)",
    "python -m pytest": "the test suite itself",
    "python benchmarks/": "minutes each; tests/benchmarks/test_bench_smoke.py runs them at reduced size",
    "bash benchmarks/gpu_check.sh": "a CUDA GPU; tests/benchmarks/test_gpu_check.py runs its --dry-run",
    "python tools/train.py --list-models [FILTER]": "FILTER stands for a word; tests/classification/test_config.py "
                                                     "runs --list-models",
    "python tools/demo.py": "7 CPU minutes; tests/classification/test_train.py runs it at reduced size",
    "python tools/get_teachers.py": "downloads the paper's teachers; tests/classification/test_teachers.py serves a "
                                    "release locally",
    "python tools/report.py --run": "needs a finished ImageNet run and the paper's logs",
    "python tools/train.py -c": "ImageNet and downloaded weights; tests/test_readme.py parses it",
    "python tools/test.py": "an ImageNet checkpoint; tests/test_readme.py parses it",
    "sh tools/dist_train.sh": "GPUs and ImageNet / CIFAR-100; tests/test_readme.py parses them",
    "sh tools/dist_train_mmdet.sh": "GPUs, COCO and OpenMMLab; tests/detection/test_tools.py runs the launcher",
    "bash segmentation/train_scripts/": "GPUs and Cityscapes; tests/segmentation/test_seg_scripts.py",
    "bash tools/install_openmmlab.sh": "builds mmcv (14 minutes); .ci/run runs it",
}


def reason(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def test_every_readme_command_is_run_or_has_a_reason():
    assert set(RUN) <= set(COMMANDS)
    unclassified = [c for c in COMMANDS if c not in RUN and reason(c) is None]
    assert unclassified == []


@pytest.mark.parametrize("command", sorted({c for c in COMMANDS if c.startswith("python tools/") and c not in RUN}))
def test_the_tools_of_the_other_commands_start(command, monkeypatch, capsys):
    words = shlex.split(command)
    monkeypatch.setattr(sys, "argv", [str(ROOT / words[1]), "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / words[1]), run_name="__main__")
    assert exit_info.value.code in (0, None) and "usage:" in capsys.readouterr().out


@pytest.mark.slow
def test_the_cpu_commands_run_as_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outputs = []
    for command in RUN:
        line = command.replace("python tools/", f"'{sys.executable}' {ROOT}/tools/")
        proc = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=HANG_GUARD_S)
        assert proc.returncode == 0, (command, proc.stderr[-3000:])
        assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, (command, proc.stderr[-3000:])
        outputs.append(proc.stdout)
    train, plan, report, head, fewer_gpus, methods, published = outputs
    assert head.splitlines() == plan.splitlines()[:10]  # cut by `head`: quietly (no BrokenPipeError)
    assert re.search(r"epoch 0: val top-1 \d+\.\d\d", train) and "img/s" in train
    assert (tmp_path / "experiments" / "cifar_resnet8-baseline-digits" / "best.pth").is_file()
    assert "cifar100-r8x4_r32x4-dist-s2" in plan and plan.count("\npython tools/train.py") > 30
    assert "cifar_resnet8" in report and (tmp_path / "experiments" / "report.md").is_file()
    runs = [line for line in fewer_gpus.splitlines() if line.startswith("sh tools/dist_train.sh 2 ")]
    assert runs and all(line.endswith("--emulate-gpus 8") for line in runs)
    assert "--kd dkd" in methods and "dkd_ls_cifar.yaml" in methods and "dist_ls_cifar.yaml" in methods
    assert published.count("\npython tools/train.py") > methods.count("\npython tools/train.py") // 3
