"""Entry-point wrapper: a :class:`~distkd.errors.UserError` becomes one line on stderr and exit 2; a
pre-emption (:class:`~distkd.utils.preemption.Preempted`) one line and exit 75; Ctrl-C one line and
exit 130; output cut by its reader (``tools/reproduce.py ... | head``) a quiet exit 0.

Under :mod:`distkd_cli.launch` (``tools/torchrun.sh`` and the launchers built on it) every process
writes its line to the launcher's folder (``DISTKD_ERROR_DIR``) instead of printing it, and the
launcher prints it once, however many processes failed the same way.

``fast_exit`` (the ``tools/*.py`` scripts): on those ends the process leaves with ``os._exit`` once
its output is flushed and its ``atexit`` handlers (logging, data-loader workers) have run, skipping
the interpreter's teardown: with torch, timm and torchvision loaded that teardown is seconds of
garbage collection, tens of seconds on a loaded machine, and nothing of it matters once the
checkpoint is on disk. A watchdog bounds the handlers too (:data:`EXIT_DEADLINE_S`), and a second
Ctrl-C ends the process at once.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from distkd.errors import UserError
from distkd.utils.distributed import RankFailed
from distkd.utils.preemption import PREEMPTED_EXIT_CODE, Preempted

ERROR_DIR_ENV = "DISTKD_ERROR_DIR"  # set by distkd_cli.launch for the processes it starts
EXIT_DEADLINE_S = 20.0  # the most the exit handlers may take after an interrupt, pre-emption or error
INTERRUPTED = "interrupted: the last completed checkpoint is kept; continue with --resume auto"


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line. A UserError raised in a DataLoader worker arrives wrapped,
    with the worker's traceback in its message: keep the original message only."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if last.startswith(("distkd.errors.UserError", "UserError")) else last
    return " ".join(text.split())


def _same_line_elsewhere(code: int) -> bool:
    """A process of a multi-process launch without the launcher (plain torchrun, srun) that is not
    its node's first: every rank ends a bad input, a pre-emption or a Ctrl-C with the same line,
    which that first process prints (a failure on this rank alone reaches rank 0 as its error)."""
    local = os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID"))
    world = os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1"))
    return code in (2, PREEMPTED_EXIT_CODE, 130) and world not in ("", "1") and local not in (None, "", "0")


def report(code: int, line: str) -> None:
    """Print ``line`` on stderr, or, under the launcher, leave it for the launcher to print once."""
    folder = os.environ.get(ERROR_DIR_ENV)
    if folder:
        rank = os.environ.get("RANK", "0")
        try:
            path = Path(folder) / f"rank{rank}.json"
            path.with_suffix(".tmp").write_text(json.dumps({"rank": int(rank), "code": code, "line": line}))
            path.with_suffix(".tmp").replace(path)
            return
        except (OSError, ValueError):
            pass  # the launcher's folder is gone: print it here
    elif _same_line_elsewhere(code):
        return
    print(line, file=sys.stderr, flush=True)


def outcome(err: BaseException) -> tuple[int, str] | None:
    """(exit code, line) of an exception a tool ends with on purpose; None for a bug (traceback)."""
    if isinstance(err, UserError):
        return 2, f"error: {one_line(err)}"
    if isinstance(err, RankFailed):
        return 1, f"error: {one_line(err)}"
    if isinstance(err, Preempted):
        return PREEMPTED_EXIT_CODE, f"pre-empted: {one_line(err)}"
    if isinstance(err, KeyboardInterrupt):
        return 130, INTERRUPTED
    return None


def _quiet_stdout() -> None:
    """The reader of stdout went away (``| head``): send what is left nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _leave(code: int) -> None:
    """End the process now: flush, run the atexit handlers (logging, data-loader workers) under a
    watchdog, then ``os._exit`` without the interpreter's teardown."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C ends it at once
    except ValueError:  # not the main thread
        pass
    watchdog = threading.Timer(EXIT_DEADLINE_S, os._exit, (code,))
    watchdog.daemon = True
    watchdog.start()
    try:
        atexit._run_exitfuncs()
        watchdog.cancel()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def run_cli(main: Callable[[], object], fast_exit: bool = False) -> None:
    """Run a tool's ``main``; see the module docstring. ``fast_exit=False`` (in-process callers,
    tests) raises ``SystemExit`` instead of ending the process."""
    try:
        main()
        return
    except BrokenPipeError:
        _quiet_stdout()
        code = 0
    except BaseException as err:  # noqa: B036 - KeyboardInterrupt is one of the outcomes
        result = outcome(err)
        if result is None:
            raise  # a bug: its traceback is the report
        code, line = result
        report(code, line)
    if fast_exit:
        _leave(code)
    sys.exit(code)
