"""Every entry point (tools/*.py) and every launcher (tools/*.sh, segmentation/train_scripts/*.sh) ends
a bad input with one line on stderr that names the problem (and the fix), exit code 2, no traceback
and no usage block; through torchrun the line is printed once however many processes failed.

The Python tools run in this process (as ``__main__``, with their own ``sys.argv``: what the
interpreter would run, minus its start-up); one bad input of each also runs as a real process, all
at once. Launchers run as processes; most of their bad inputs are caught before anything starts.
"""
from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import distkd_cli.run as cli
from tests.conftest import HANG_GUARD_S, ROOT

DIGITS = str(ROOT / "configs" / "digits.yaml")
DET_CONFIG = str(ROOT / "configs" / "detection" / "retinanet_r50_dist_retinanet_x101_2x_coco.py")
TRAIN = ["--dataset", "digits", "--model", "cifar_resnet8", "--device", "cpu"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad_inputs")
    (root / "a_file").write_text("not a folder")
    (root / "config.yaml").write_text("clip_grad_norm: true\nlr: 0.1\n")  # 'c' is a pickle opcode
    (root / "ten.yaml").write_text("lr: 0.1\nepochs: ten\n")
    (root / "typo.yaml").write_text("lr: 0.1\nepohcs: 3\n")
    (root / "empty").mkdir()
    return {"root": str(root), **{p.stem: str(p) for p in root.iterdir()}}


# tool -> [(arguments, what the one line must say)]; {name} is a path of `files`
PYTHON_TOOLS = {
    "train.py": [
        (["--epcohs", "2"], r"unknown option '--epcohs' \(did you mean: --epochs\?\)"),
        (["--epoch", "2"], r"unknown option '--epoch' \(did you mean: --epochs"),  # no prefixes
        (["-c", "{ten}"], r"key 'epochs' in config '.*ten.yaml', line 2: expected an integer, got 'ten'"),
        (["-c", "{typo}"], r"unknown key 'epohcs' in config '.*typo.yaml', line 2 \(did you mean: epochs\?\)"),
        (["--sched", "cosin"], r"invalid choice 'cosin' \(did you mean: cosine\?\)"),
        (["--model", "cifar_resnet8", "--dataset", "cifar100", "--data-path", "{a_file}", "--output", "{root}/o"],
         r"--data-path '.*a_file' is a file, not a folder"),
        ([*TRAIN, "--resume", "{config}", "--output", "{root}/out"], r"is not a PyTorch checkpoint: it is a text "
                                                                      r"file \(a YAML config\? configs go to -c"),
        ([*TRAIN, "--lr", "x"], r"--lr: 'x' is not a number"),
    ],
    "test.py": [
        (["--model", "cifar_resnet8"], r"missing --ckpt \(required\)"),
        (["--ckpt", "x.pth", "--emaa"], r"unknown option '--emaa' \(did you mean: --ema\?\)"),
        ([*TRAIN, "--ckpt", "{config}"], r"not a PyTorch checkpoint: it is a text file"),
    ],
    "train_seg.py": [
        (["--max-iteration", "10"], r"unknown option '--max-iteration' \(did you mean: --max-iterations"),
        (["--input-format", "bgr"], r"invalid choice 'bgr'"),
        (["--batch-size", "x"], r"--batch-size: 'x' is not an integer"),
    ],
    "test_seg.py": [
        ([], r"missing --checkpoint"),
        (["--checkpoint", "x.pth", "--split", "vall"], r"invalid choice 'vall' \(did you mean: val\?\)"),
        (["--checkpoint", "x.pth", "--scale", "1.0"], r"unknown option '--scale' \(did you mean: --scales"),
    ],
    "build_teacher_store.py": [
        ([], r"--out DIR is required"),
        (["--out", "{root}/store", *TRAIN], r"no teacher: pass --teacher-model"),
        (["--out", "{root}/store", "--views", "x"], r"--views: 'x' is not an integer"),
        (["--out", "{root}/store", "--view", "8"], r"unknown option '--view' \(did you mean: --views\?\)"),
    ],
    "demo.py": [
        (["--seeds", "0"], r"--seeds must be at least 1"),
        (["--student-epoch", "3"], r"unknown option '--student-epoch' \(did you mean: --student-epochs"),
        (["--threads", "x"], r"--threads: 'x' is not an integer"),
    ],
    "get_teachers.py": [
        ([], r"missing table"),
        (["cifar10"], r"invalid choice 'cifar10' \(did you mean: cifar100\?\)"),
        (["cifar100", "--source", "mdistill"], r"did you mean: mdistiller"),
        (["cifar100", "--offline", "--root", "{root}/ckpts"], r"--offline"),
    ],
    "reproduce.py": [
        (["cifar"], r"invalid choice 'cifar' \(did you mean: cifar100\?\)"),
        (["cifar100", "--seeds", "0"], r"--seeds must be at least 1"),
        (["cifar100", "--only", "kd2"], r"invalid choice 'kd2' \(did you mean: kd\?\)"),
    ],
    "report.py": [
        ([], r"pass the experiments folder"),
        (["{root}/nothing_here"], r"not found|no experiment"),
        (["--run", "{empty}"], r"no args.yaml in"),
    ],
    "train_mmdet.py": [
        (["nope.py"], r"config not found: nope.py"),
        ([DET_CONFIG, "--cfg-options", "a"], r"--cfg-options takes key=value pairs"),
        ([DET_CONFIG, "--work-dirr", "w"], r"unknown option '--work-dirr' \(did you mean: --work-dir\?\)"),
    ],
    "test_mmdet.py": [
        (["nope.py", "x.pth"], r"config not found: nope.py"),
        ([DET_CONFIG], r"missing checkpoint"),
        ([DET_CONFIG, "x.pth", "--launcher", "torch"], r"invalid choice 'torch'"),
    ],
}
PYTHON_CASES = [(tool, i) for tool, cases in PYTHON_TOOLS.items() for i in range(len(cases))]


def fill(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) for a in argv]


def check_one_line(code: int, stderr: str, pattern: str) -> None:
    err = stderr.strip()
    assert code == 2, (code, stderr[-3000:])
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err[-3000:]
    assert "Traceback" not in err and "usage:" not in err
    assert re.search(pattern, err), err


def test_every_python_tool_is_covered():
    assert sorted(PYTHON_TOOLS) == sorted(p.name for p in (ROOT / "tools").glob("*.py"))
    assert all(len(cases) >= 3 for cases in PYTHON_TOOLS.values())


@pytest.mark.parametrize("tool, index", PYTHON_CASES, ids=[f"{t}-{i}" for t, i in PYTHON_CASES])
def test_python_tool_bad_input_is_one_line(tool, index, files, monkeypatch, capsys, tmp_path):
    if tool.endswith("mmdet.py"):
        pytest.importorskip("mmengine", reason="OpenMMLab not installed (its absence is tested below)")
    argv, pattern = PYTHON_TOOLS[tool][index]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(ROOT / "tools" / tool), *fill(argv, files)])
    monkeypatch.setattr(sys, "path", [str(ROOT / "tools"), *sys.path])
    monkeypatch.setattr(cli, "_leave", lambda code: sys.exit(code))  # not os._exit: this is pytest's process
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "tools" / tool), run_name="__main__")
    check_one_line(exit_info.value.code, capsys.readouterr().err, pattern)


def run(argv: list[str], cwd: str | Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=full_env, timeout=HANG_GUARD_S)


@pytest.mark.slow
def test_each_python_tool_as_a_process(files, tmp_path):
    """One bad input of each tool as a real process (all at once): exit code 2 and the one line."""
    def one(tool: str) -> tuple[str, subprocess.CompletedProcess]:
        argv, _ = PYTHON_TOOLS[tool][0]
        return tool, run([sys.executable, str(ROOT / "tools" / tool), *fill(argv, files)], cwd=tmp_path)

    tools = [t for t in PYTHON_TOOLS if not t.endswith("mmdet.py")]
    with ThreadPoolExecutor(4) as pool:
        for tool, proc in pool.map(one, tools):
            check_one_line(proc.returncode, proc.stderr, PYTHON_TOOLS[tool][0][1])


@pytest.fixture(scope="module")
def no_openmmlab(tmp_path_factory) -> str:
    """A PYTHONPATH entry on which the OpenMMLab packages fail to import, as when not installed."""
    root = tmp_path_factory.mktemp("no_openmmlab")
    for name in ("mmengine", "mmcv", "mmdet", "mmrazor", "mmseg"):
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\", "
                                                 f"name='{name}')\n")
    return str(root)


@pytest.mark.parametrize("tool", ["train_mmdet.py", "test_mmdet.py"])
def test_openmmlab_tools_without_openmmlab(tool, no_openmmlab):
    pythonpath = os.pathsep.join([no_openmmlab, str(ROOT)])
    helped = run([sys.executable, str(ROOT / "tools" / tool), "--help"], PYTHONPATH=pythonpath)
    assert helped.returncode == 0 and "--cfg-options" in helped.stdout and not helped.stderr, helped.stderr
    failed = run([sys.executable, str(ROOT / "tools" / tool), DET_CONFIG, "x.pth"][: 3 if "train" in tool else 4],
                 PYTHONPATH=pythonpath)
    check_one_line(failed.returncode, failed.stderr, r"OpenMMLab stack is not installed .*install_openmmlab.sh")


def test_output_cut_by_its_reader_ends_quietly():
    proc = subprocess.run(f"'{sys.executable}' tools/reproduce.py cifar100 | head -n 2", shell=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert len(proc.stdout.splitlines()) == 2 and proc.stderr == "", proc.stderr


# launcher -> [(arguments, extra environment, what the one line must say)]
SH = ["sh"]
LAUNCHERS = {
    "tools/torchrun.sh": [
        ([], {}, r"needs GPUS and SCRIPT"),
        (["x", "tools/train.py"], {}, r"GPUS must be a number of processes per node .* got 'x'"),
        (["2", "tools/nope.py"], {}, r"script not found: 'tools/nope.py'"),
        (["2", "tools/train.py"], {"NNODES": "two"}, r"NNODES must be a number, got 'two'"),
    ],
    "tools/dist_train.sh": [
        ([], {}, r"needs GPUS CONFIG MODEL"),
        (["2", "nope.yaml", "m"], {}, r"config file not found: 'nope.yaml'"),
        (["0", DIGITS, "cifar_resnet8"], {}, r"GPUS must be a number of processes per node"),
    ],
    "tools/dist_train_mmdet.sh": [
        ([], {}, r"needs CONFIG GPUS WORK_DIR"),
        (["nope.py", "1", "w"], {}, r"config file not found: 'nope.py'"),
        ([DET_CONFIG, "x", "w"], {}, r"GPUS must be a number"),
    ],
    "tools/dist_test_mmdet.sh": [
        ([], {}, r"needs CONFIG CHECKPOINT GPUS"),
        (["nope.py", "x.pth", "1"], {}, r"config file not found"),
        ([DET_CONFIG, "nope.pth", "1"], {}, r"checkpoint not found: 'nope.pth'"),
    ],
    "tools/slurm_run.sh": [
        ([], {}, r"needs PARTITION JOB_NAME TRAINER"),
        (["p", "j", "tools/nope.py"], {}, r"trainer not found"),
        (["p", "j", "tools/train.py"], {"GPUS": "eight"}, r"GPUS must be a number, got 'eight'"),
    ],
    "tools/slurm_train.sh": [
        ([], {}, r"needs PARTITION JOB_NAME CONFIG MODEL"),
        (["p", "j", "nope.yaml", "m"], {}, r"config file not found"),
        (["p", "j", DIGITS, "m"], {"SIGNAL_TIME": "soon"}, r"SIGNAL_TIME must be a number"),
    ],
    "tools/slurm_train_seg.sh": [
        ([], {}, r"needs PARTITION JOB_NAME"),
        (["p"], {}, r"needs PARTITION JOB_NAME"),
        (["p", "j"], {"GPUS_PER_NODE": "x"}, r"GPUS_PER_NODE must be a number"),
    ],
    "tools/slurm_train_mmdet.sh": [
        ([], {}, r"needs PARTITION JOB_NAME CONFIG WORK_DIR"),
        (["p", "j", "nope.py", "w"], {}, r"config file not found"),
        (["p", "j", DET_CONFIG, "w"], {"GPUS": "0"}, r"GPUS must be a positive number"),
    ],
    "tools/slurm_test_mmdet.sh": [
        ([], {}, r"needs PARTITION JOB_NAME CONFIG CHECKPOINT"),
        (["p", "j", DET_CONFIG, "nope.pth"], {}, r"checkpoint not found"),
        (["p", "j", "nope.py", "x.pth"], {}, r"config file not found"),
    ],
    "tools/install_openmmlab.sh": [
        ([], {"PYTHON": "no-such-python"}, r"PYTHON='no-such-python' is not a Python interpreter"),
        ([], {"FORCE_CUDA": "yes"}, r"FORCE_CUDA must be 0 or 1"),
        ([], {"MAX_JOBS": "many"}, r"MAX_JOBS must be a number"),
    ],
}
for _script in sorted((ROOT / "segmentation" / "train_scripts").rglob("*.sh")):
    _name = str(_script.relative_to(ROOT))
    LAUNCHERS[_name] = [
        ([], {"GPUS": "x"}, r"GPUS must be a number of processes per node .* got 'x'"),
        ([], {"GPUS": "0"}, r"GPUS must be a number of processes per node"),
        ([], {"NNODES": "x"}, r"NNODES must be a number"),
    ]
LAUNCHERS["segmentation/train_scripts/test_seg.sh"].append(([], {"CKPT": ""}, r"set CKPT to the checkpoint"))
LAUNCHER_CASES = [(name, i) for name, cases in LAUNCHERS.items() for i in range(len(cases))]


def test_every_launcher_is_covered():
    scripts = {str(p.relative_to(ROOT)) for p in (ROOT / "tools").glob("*.sh")}
    scripts |= {str(p.relative_to(ROOT)) for p in (ROOT / "segmentation" / "train_scripts").rglob("*.sh")}
    assert scripts == set(LAUNCHERS)
    assert all(len(cases) >= 3 for cases in LAUNCHERS.values())


@pytest.mark.parametrize("launcher, index", LAUNCHER_CASES, ids=[f"{n}-{i}" for n, i in LAUNCHER_CASES])
def test_launcher_bad_input_is_one_line(launcher, index):
    argv, env, pattern = LAUNCHERS[launcher][index]
    env = {"GPUS": "1", "CKPT": "x.pth", **env} if launcher.startswith("segmentation") else env
    shell = "bash" if launcher.startswith("segmentation") else "sh"
    proc = run([shell, launcher, *argv], **env)
    check_one_line(proc.returncode, proc.stderr, pattern)


@pytest.mark.slow
def test_an_error_of_two_processes_is_printed_once(tmp_path):
    """Through torchrun (2 CPU processes): the trainer's line once, exit code 2, no torchrun traceback."""
    proc = run(["sh", "tools/dist_train.sh", "2", DIGITS, "cifar_resnet8", "--device", "cpu", "--epcohs", "1"],
               MASTER_PORT=str(20000 + os.getpid() % 20000))
    check_one_line(proc.returncode, proc.stderr, r"unknown option '--epcohs' \(did you mean: --epochs\?\)")


@pytest.mark.slow
def test_a_segmentation_script_error_is_printed_once(tmp_path):
    proc = run(["bash", "segmentation/train_scripts/train_kd/deeplabv3_res18.sh", "--max-iteration", "1"],
               GPUS="1", MASTER_PORT=str(20000 + (os.getpid() + 1) % 20000))
    check_one_line(proc.returncode, proc.stderr, r"unknown option '--max-iteration'")
