"""benchmarks/gpu_check.sh: its dry run (the same steps on the CPU, tiny) runs where the GPU machine's
Python would (no OpenMMLab, no wandb), writes its report within what the device tool brings back,
and its exit status follows the steps and the targets."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["env", "tests", "step", "seg", "e2e", "data", "store", "compile"]
# What the GPU machine lacks (the device tool's KINDS.md): the dry run must not import it.
ABSENT_THERE = ["mmcv", "mmengine", "mmdet", "mmseg", "mmrazor", "wandb"]

BLOCKER = '''
import importlib.abc, sys
BLOCKED = {blocked!r}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed on the GPU machine")
        return None
sys.meta_path.insert(0, _Block())

# nothing outside the GPU machine can be reached: a download (weights, a hub) fails here as it would there
import socket
LOCAL = ("127.0.0.1", "::1", "localhost", "")
_getaddrinfo, _connect = socket.getaddrinfo, socket.socket.connect
def _no_dns(host, *args, **kwargs):
    if host not in LOCAL and host is not None:
        raise OSError(f"no network on the GPU machine: {{host}}")
    return _getaddrinfo(host, *args, **kwargs)
def _no_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL:
        raise OSError(f"no network on the GPU machine: {{address}}")
    return _connect(self, address)
socket.getaddrinfo, socket.socket.connect = _no_dns, _no_connect
'''


@pytest.mark.slow
def test_the_dry_run_runs_every_step_on_the_cpu_without_openmmlab(tmp_path):
    """Every step runs on the CPU with neither OpenMMLab, wandb nor a network (as on the GPU machine)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=ABSENT_THERE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "OUT": str(tmp_path / "out"), "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=1200)
    report = (tmp_path / "out" / "gpu_check.md").read_text()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + report[:3000]
    for step in STEPS:
        assert re.search(rf"^\| {step} \| ok \|", report, re.M), report[:2000]
    for title in ("## Machine", "## CUDA-marked tests", "## KD step (bench_step.py)", "## Cityscapes DIST KD step",
                  "## End-to-end training", "## Loader throughput", "## Teacher-store epoch vs plain epoch",
                  "## KD step with torch.compile", "## Targets (issue 25)"):
        assert title in report
    assert "| tv_resnet18:tv_resnet18 (dist) |" in report and "| 1 | uint8 |" in report
    assert "**no**" not in report  # a dry run judges no target
    assert re.search(r"^\| tv_resnet18:tv_resnet18 dist compiled: c / \(a\+b\) \| \d", report, re.M)
    assert "| mobilenet_v1:tv_resnet18 dist compiled: c / (a+b) | not measured |" in report  # compiled: 1 pair
    files = list((tmp_path / "out").rglob("*"))
    assert len(files) <= 8 and all(re.fullmatch(r"[A-Za-z0-9._-]+", f.name) for f in files)  # the device tool's limits
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "pytest -m cuda" in report and "tests/classification/data/test_on_device.py" in log
    assert "tools/train.py" in log and log.count(", forked)") >= 8  # one fresh interpreter (env), the rest forked


def fake_check(tmp_path, metrics: dict, status: list[str]) -> gpu_check.Check:
    check = gpu_check.Check(tmp_path, tmp_path, gpu_check.GPU, dry_run=False)
    check.metrics.update(metrics)
    check.status = [(f"s{i}", state, 1.0, "") for i, state in enumerate(status)]
    return check


GOOD = {"tv_resnet18:tv_resnet34|dist|ratio": 1.01, "tv_resnet18:tv_resnet34|kd|ratio": 1.0,
        "tv_resnet18:tv_resnet34|dist_over_kd": 1.01, "tv_resnet18:tv_resnet34|dist|img_s": 9000.0,
        "e2e_img_s": 3900.0, "data|uint8|16": 4200.0}


def test_exit_status_follows_the_steps_and_the_targets(tmp_path):
    assert fake_check(tmp_path, GOOD, ["ok", "ok"]).exit_code() == 0
    assert fake_check(tmp_path, GOOD, ["ok", "FAILED"]).exit_code() == 1
    assert fake_check(tmp_path, GOOD, ["skipped (no time)"]).exit_code() == 1
    assert fake_check(tmp_path, {**GOOD, "tv_resnet18:tv_resnet34|dist_over_kd": 1.03}, ["ok"]).exit_code() == 2
    assert fake_check(tmp_path, {**GOOD, "e2e_img_s": 3000.0}, ["ok"]).exit_code() == 2  # < 90 % of the loader's
    rows = {t: (m, ok) for t, m, _, ok in fake_check(tmp_path, GOOD, ["ok"]).targets()}
    bound = rows["end-to-end img/s vs the bound (uint8 loader, 16 workers)"]
    assert bound == ("3900 / 4200 = 0.93", True)  # the loader binds, not the KD step's 9000 img/s
    assert rows["mobilenet_v1:tv_resnet50 dist: c / (a+b)"] == ("not measured", None)


def test_tables_are_parsed_by_their_header():
    lines = ["| student : teacher | batch | c / (a+b) | (c) img/s |", "|---|---|---|---|",
             "| a:b (dist) | 2x32px | 1.010 | 90.0 |", "| student : teacher | KD step dist / kd |", "|---|---|",
             "| a:b | 1.004 |"]
    assert gpu_check.parse_rows(lines, "student : teacher", "c / (a+b)") == [
        {"student : teacher": "a:b (dist)", "batch": "2x32px", "c / (a+b)": "1.010", "(c) img/s": "90.0"}]
    assert gpu_check.parse_rows(lines, "student : teacher", "KD step dist / kd") == [
        {"student : teacher": "a:b", "KD step dist / kd": "1.004"}]
    assert "\n\n| student : teacher | KD step" in gpu_check.join_tables(lines)


def test_the_shell_entry_point_passes_its_options_on(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--help"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert out.returncode == 0 and "--dry-run" in out.stdout and "--only" in out.stdout


@pytest.mark.parametrize("fork", [False, True])
def test_a_failing_command_fails_its_step_and_the_exit_status(tmp_path, fork):
    check = gpu_check.Check(tmp_path, tmp_path, gpu_check.DRY, dry_run=True, fork=fork)
    check.step("good", lambda: check.run("good", check.python("-c", "print('fine')"), 60).strip())
    check.step("bad", lambda: check.run("bad", check.python("-c", "import sys; print('oops'); sys.exit(4)"), 60))
    check.write_report()
    assert [(name, state, note) for name, state, _, note in check.status] == [
        ("good", "ok", "fine"), ("bad", "FAILED", "RuntimeError: exit 4: oops")]
    assert check.exit_code() == 1
    assert "| bad | FAILED |" in (tmp_path / "gpu_check.md").read_text()
    assert ("forked" in (tmp_path / "gpu_check.log").read_text()) == fork
