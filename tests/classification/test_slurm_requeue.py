"""tools/slurm_train.sh under a fake slurm (srun / scontrol stand-ins that run the real trainer on
this machine): a pre-empted job is requeued and resumes by itself to the weights of an
uninterrupted run. slurm's part (``--signal=USR1@T`` before the time limit) is played by the fake
srun, which sends SIGUSR1 once the trainer waits at a known iteration (no timing guesses)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from tests.hooks import hook_env

CONFIG = str(ROOT / "configs" / "digits.yaml")
OPTIONS = ["--device", "cpu", "--image-size", "16", "-b", "16", "--deterministic", "--max-iters-per-epoch", "8",
           "--epochs", "3", "-j", "2"]
SRUN = r"""#!/usr/bin/env bash
n=$(( $(cat "$FAKE/launches" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$FAKE/launches"
echo "$*" >> "$FAKE/srun.log"
if [ -n "$DRY" ]; then exit "$DRY"; fi
while [ "$1" != "bash" ]; do shift; done
export SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_JOB_NODELIST=node1
pause_var="PAUSE_$n"
if [ -z "${!pause_var}" ]; then exec "$@"; fi
export DISTKD_TEST_PAUSE_AT=${!pause_var} DISTKD_TEST_PAUSE_FILE=$FAKE/pause$n
touch "$DISTKD_TEST_PAUSE_FILE"
"$@" &
child=$!
while [ ! -e "$DISTKD_TEST_PAUSE_FILE.reached" ] && kill -0 "$child" 2>/dev/null; do sleep 0.05; done
kill -USR1 "$child"
wait "$child"
"""
SCONTROL = """#!/usr/bin/env bash
if [ "$1" = show ]; then echo node1; exit 0; fi
echo "$*" >> "$FAKE/scontrol.log"
"""


def fake_slurm(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "fake"
    fake.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    path = f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return dict(os.environ, PATH=path, FAKE=str(fake), OMP_NUM_THREADS="1", GPUS="1", GPUS_PER_NODE="1", **hook_env())


def slurm_train(env: dict[str, str], out: Path, **extra: str) -> subprocess.CompletedProcess:
    cmd = ["sh", str(ROOT / "tools" / "slurm_train.sh"), "part", "job", CONFIG, "cifar_resnet8", *OPTIONS,
           "--output", str(out), "--experiment", "job"]
    return subprocess.run(cmd, env={**env, **extra}, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_preempted_slurm_job_is_requeued_and_resumes_to_the_uninterrupted_weights(tmp_path):
    env = fake_slurm(tmp_path)
    fake = Path(env["FAKE"])
    # Inside an sbatch job: SIGUSR1 in epoch 1 -> last.pth, exit 75 -> `scontrol requeue JOBID`.
    first = slurm_train(env, tmp_path, SLURM_JOB_ID="4242", PAUSE_1="1:3")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "requeueing slurm job 4242" in first.stderr
    assert (fake / "scontrol.log").read_text().split() == ["requeue", "4242"]
    assert torch.load(tmp_path / "job" / "last.pth", weights_only=True)["position"]["epoch"] == 1
    # slurm runs the requeued script again (here outside sbatch): pre-empted once more in epoch 2, the
    # script launches again by itself, and the run completes.
    second = slurm_train(env, tmp_path, PAUSE_2="2:5")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "launching again (1/20)" in second.stderr
    log = (fake / "srun.log").read_text()
    assert (fake / "launches").read_text().strip() == "3"
    assert log.count("--signal=USR1@120") == log.count("--resume auto") == 3

    straight = [sys.executable, str(ROOT / "tools" / "train.py"), "-c", CONFIG, "--model", "cifar_resnet8", *OPTIONS,
                "--output", str(tmp_path), "--experiment", "straight"]
    subprocess.run(straight, env=env, check=True, capture_output=True, timeout=600)
    a, b = (torch.load(tmp_path / name / "last.pth", weights_only=True) for name in ("straight", "job"))
    assert a["position"] == b["position"] == {"epoch": 3, "iteration": 0}
    assert all(torch.equal(value, b["model"][key]) for key, value in a["model"].items())
    rows = list(csv.DictReader(open(tmp_path / "job" / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]  # each epoch once, across three launches


@pytest.mark.parametrize("script", ["slurm_run.sh", "slurm_train.sh", "slurm_train_seg.sh"])
def test_launchers_print_usage(script):
    result = subprocess.run(["sh", str(ROOT / "tools" / script)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_the_segmentation_launcher_runs_its_trainer_with_resume_auto(tmp_path):
    env = fake_slurm(tmp_path)
    cmd = ["sh", str(ROOT / "tools" / "slurm_train_seg.sh"), "part", "seg", "--data-path", "data/cityscapes"]
    assert subprocess.run(cmd, env={**env, "DRY": "3"}, capture_output=True, timeout=60).returncode == 3
    log = (Path(env["FAKE"]) / "srun.log").read_text()
    assert "tools/train_seg.py --resume auto --data-path data/cityscapes" in log and "--signal=USR1@120" in log
