"""The dry run's launcher: each Python command runs in a fork of the GPU check's own process, which
has imported torch, torchvision, timm and the trainer once, instead of in a fresh interpreter.

On a small CPU a fresh interpreter spends 5-7 s of CPU importing those, more than a dry-run step
computes; forked, a command starts in milliseconds. What it gets is a subprocess's: its argv
(``python -c``, ``-m`` or a script; ``sys.argv`` and ``sys.path[0]`` as the interpreter sets them),
the working directory, the environment, its own process group (a timeout ends its loader workers
too), its stdout, stderr and exit status. The GPU run never forks (a fork after CUDA starts is
unusable, and the GPU run measures fresh processes); the dry run's ``env`` step still runs in a
fresh interpreter, which shows that one imports everything.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time
import traceback

PRELOAD = ["numpy", "PIL.Image", "yaml", "torch", "torchvision", "timm", "pytest", "classification.train",
           "tools.build_teacher_store", "benchmarks.bench_step", "benchmarks.bench_seg_memory"]


def preload() -> list[str]:
    """Imports :data:`PRELOAD` (those that import: a failure shows in the step that needs the module)."""
    failed = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as err:  # the command that needs it reports it, in its own output
            failed.append(f"{name} ({type(err).__name__})")
    return failed


def run_forked(args: list[str], cwd: str, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """``python *args`` in a fork: ``(exit status, stdout, stderr)``; ``subprocess.TimeoutExpired``
    after ``timeout`` seconds (the command's process group is killed)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(args, cwd, env, out.fileno(), err.fileno())
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(["python", *args], timeout, _read(out), _read(err))
            time.sleep(0.02)
        return os.waitstatus_to_exitcode(status), _read(out), _read(err)


def _child(args: list[str], cwd: str, env: dict[str, str], out: int, err: int) -> None:
    code = 1
    try:
        os.setpgid(0, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        code = _main(args, cwd)
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1
        if code == 1 and not isinstance(stop.code, int):  # sys.exit("message"): printed, exit 1
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - as the interpreter does: the traceback, exit 1
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _main(args: list[str], cwd: str) -> int:
    """What ``python *args`` runs; 0 unless it raises ``SystemExit``."""
    if args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        sys.path.insert(0, "")
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    elif args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        sys.path.insert(0, cwd)
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        script = os.path.abspath(args[0])
        sys.argv = [args[0], *args[1:]]
        sys.path.insert(0, os.path.dirname(script))
        runpy.run_path(script, run_name="__main__")
    return 0


def _read(file) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")
