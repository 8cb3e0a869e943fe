"""benchmarks/gpu_check_fork.py: a command forked from the dry run's process gets what a subprocess
gets (argv, sys.path[0], working directory, environment, output, exit status) and a timeout ends it.
The children run plain Python only (no torch work after the fork)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.gpu_check_fork import run_forked

SHOW = "import os, sys; print(sys.argv, sys.path[0], os.getcwd(), os.environ.get('GPU_CHECK_T'))"


def test_a_forked_command_sees_what_a_subprocess_sees(tmp_path):
    script = tmp_path / "tool" / "show.py"
    script.parent.mkdir()
    script.write_text(SHOW + "\nprint('to stderr', file=sys.stderr)\n")
    env = {**os.environ, "GPU_CHECK_T": "set"}
    for args in (["-c", SHOW, "a", "b"], [str(script), "--x", "1"]):
        forked = run_forked(args, str(tmp_path), env, timeout=60)
        real = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert forked == (real.returncode, real.stdout, real.stderr), (forked, real)
    assert run_forked([str(script)], str(tmp_path), env, 60)[1].split(" ")[-3:] == [
        str(script.parent), str(tmp_path), "set\n"]


@pytest.mark.parametrize("code, status, stderr", [("import sys; sys.exit(3)", 3, ""),
                                                   ("import sys; sys.exit('bad input')", 1, "bad input\n"),
                                                   ("raise ValueError('boom')", 1, "ValueError: boom\n")])
def test_exit_status_and_errors_are_a_subprocess_s(tmp_path, code, status, stderr):
    returncode, _, err = run_forked(["-c", code], str(tmp_path), dict(os.environ), timeout=60)
    assert returncode == status and err.endswith(stderr)


def test_a_timeout_ends_the_command_and_its_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time\n"
            "print('started', flush=True)\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(600)\n")
    with pytest.raises(subprocess.TimeoutExpired) as err:
        run_forked(["-c", code], str(tmp_path), dict(os.environ), timeout=5)
    assert "started" in err.value.output
    grandchild = int(pid_file.read_text())
    for _ in range(600):  # killed with the command's process group, it ends (at once; 60 s allowed)
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    else:
        os.kill(grandchild, 9)
        pytest.fail("the command's child outlived its timeout")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
