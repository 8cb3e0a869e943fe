"""A rank that fails stops the whole job quickly, rank 0 names it, and last.pth stays loadable."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import HANG_GUARD_S, ROOT
from tests.hooks import CALLBACK


@pytest.mark.slow
def test_a_rank_that_raises_stops_the_job_and_rank_0_names_it(tmp_path):
    # The collectives' timeout is set far above the test's hang guard: the job can only end within the
    # guard because the failure reached the other rank at once (no wall-clock margin is measured).
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), DISTKD_TEST_FAIL_AT="1:0:3",
               DISTKD_CALLBACKS=CALLBACK, DISTKD_DIST_TIMEOUT=str(10 * HANG_GUARD_S))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tools" / "train.py"), "-c", str(ROOT / "configs" / "digits.yaml"), "--device", "cpu",
           "--model", "cifar_resnet8", "--image-size", "16", "-b", "8", "--epochs", "2", "-j", "0",
           "--max-iters-per-epoch", "8", "--save-interval", "2", "--output", str(tmp_path), "--experiment", "e"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    last = tmp_path / "e" / "last.pth"
    try:
        while not last.exists():  # written after iteration 2; rank 1 raises in iteration 3
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.02)
        _, stderr = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert "error: rank 1 failed (RuntimeError: test failure injected on rank 1" in stderr, stderr[-3000:]
    state = torch.load(last, weights_only=True)
    assert (state["position"]["epoch"], state["position"]["iteration"]) == (0, 2)
