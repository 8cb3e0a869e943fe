"""`pip install .` from a clean checkout gives a working package; the loss needs torch alone."""
import os
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
