"""`pip install .` from a clean checkout gives a working package and its commands; the loss needs torch
alone; every command is the function its tools/*.py entry point calls."""
import ast
import importlib
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

CHECK = r"""
import sys
for extra in ("torchvision", "timm", "yaml", "sklearn", "matplotlib", "tensorboard", "wandb", "PIL"):
    sys.modules[extra] = None  # importing any trainer extra now fails
import torch, distkd
assert distkd.__file__.startswith(sys.argv[1]), distkd.__file__
loss = distkd.build_kd_loss("dist_t4")
z_s = torch.randn(8, 10, requires_grad=True)
value = loss(z_s, torch.randn(8, 10)) + distkd.DISTLoss()(z_s, torch.randn(8, 10))
value.backward()
assert torch.isfinite(value) and z_s.grad.abs().sum() > 0
print(sorted(distkd.KD_METHODS.names()))
"""


def test_extras_match_the_pinned_requirements():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == ["torch>=2.1"]
    extras = project["optional-dependencies"]
    assert {"train", "wandb", "openmmlab"} <= set(extras)
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements" / "openmmlab.txt").read_text().splitlines()]
    assert sorted(p for p in pins if p) == sorted(extras["openmmlab"])
    names = {line.split("==")[0] for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")}
    wanted = {e.split(">")[0].split("=")[0] for e in extras["train"]}
    assert wanted <= names, wanted - names


@pytest.mark.slow
def test_wheel_installs_and_the_loss_works_without_trainer_extras(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "wheel").glob("distkd-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "distkd/losses/dist_kd.py" in names and "reproduce/paper_tables.csv" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", CHECK, str(site)], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert "'dist'" in out.stdout
    assert sorted(p.name for p in (site / "bin").glob("distkd-*")) == sorted(scripts())
    helped = subprocess.run([str(site / "bin" / "distkd-reproduce"), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert helped.returncode == 0 and "cifar100-methods" in helped.stdout, helped.stderr


def scripts() -> dict[str, str]:
    """``[project.scripts]``: command -> ``module:function``."""
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_command_is_an_importable_function():
    assert len(scripts()) >= 11
    for command, target in scripts().items():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), command


def called_by_tool(path) -> str:
    """``module:function`` that a thin ``tools/*.py`` imports and calls under ``__main__``."""
    tree = ast.parse(path.read_text())
    imported = {alias.asname or alias.name: f"{node.module}:{alias.name}" for node in tree.body
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    main = [node for node in tree.body if isinstance(node, ast.If)]
    calls = [n.func.id for n in ast.walk(main[0]) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert len(main) == 1 and len(calls) == 1 and calls[0] in imported, path
    return imported[calls[0]]


def test_each_tool_calls_its_command():
    """``tools/X.py`` and ``distkd-X`` (``_`` -> ``-``) run the same function; the tools are thin."""
    tools = {f"distkd-{p.stem.replace('_', '-')}": p for p in (ROOT / "tools").glob("*.py")}
    assert set(tools) == set(scripts())
    for command, path in tools.items():
        assert called_by_tool(path) == scripts()[command], path
        body = ast.parse(path.read_text()).body
        assert not [n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))], path


def test_a_command_runs():
    """The installed command (where this checkout is the installed one) and its tool print the same help."""
    tool = subprocess.run([sys.executable, str(ROOT / "tools" / "report.py"), "--help"], capture_output=True,
                          text=True, cwd=ROOT)
    assert tool.returncode == 0 and "--paper-log" in tool.stdout, tool.stderr
    command = shutil.which("distkd-report")
    if command is None:
        pytest.skip("the package's commands are not installed here (pip install -e .)")
    installed = subprocess.run([command, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert installed.returncode == 0, installed.stderr
    # the same help after the usage block (its wrapping follows the program's name)
    assert installed.stdout.split("\n\n", 1)[1] == tool.stdout.split("\n\n", 1)[1]
