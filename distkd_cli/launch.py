"""torchrun with one line per failure: ``python -m distkd_cli.launch [torchrun options] SCRIPT ...``.

``tools/torchrun.sh`` (and every launcher built on it) runs this instead of ``torch.distributed.run``.
It takes torchrun's options and behaves as torchrun, except when the processes fail:

- each process started through :func:`distkd_cli.run.run_cli` writes its one-line outcome (bad
  input: exit 2; pre-empted: 75; Ctrl-C: 130; another rank failed: 1) to a folder of this launcher
  (``DISTKD_ERROR_DIR``) instead of printing it;
- this launcher prints that line once (of 8 processes failing on the same bad option, one line) and
  exits with its code, without torchrun's ~30-line traceback and failure table;
- a process that crashed without such a line (a bug: its own traceback is above) gets one line naming
  its rank and exit code, and the launcher exits with that code.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from distkd_cli.run import ERROR_DIR_ENV, INTERRUPTED

PRIORITY = (2, 75, 130, 1)  # which line to print when the processes ended differently: bad input first


class _DropFailureLines(logging.Filter):
    """torchrun's own lines about a failure or a Ctrl-C ('failed (exitcode: N) local_rank: ...', 'Sending
    process N closing signal SIGTERM', 'Received 2 death signal'): the launcher's one line says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in str(record.msg) for text in ("failed (exitcode", "closing signal", "death signal"))


def read_records(folder: Path) -> list[dict]:
    records = []
    for path in sorted(folder.glob("rank*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def summarize(records: list[dict], failures: dict[int, int]) -> tuple[int, str]:
    """(exit code, the one line to print) from the processes' records and torchrun's failures
    (global rank -> exit code, negative for a signal)."""
    if records:
        best = min(records, key=lambda r: (PRIORITY.index(r["code"]) if r["code"] in PRIORITY else len(PRIORITY),
                                           r.get("rank", 0)))
        return int(best["code"]), str(best["line"])
    if not failures:
        return 1, "error: the launched processes failed (see their output above)"
    rank = min(failures)
    code = failures[rank]
    if code < 0:
        return 128 - code, f"error: rank {rank} was killed by signal {-code} ({len(failures)} process(es) failed)"
    return code, (f"error: rank {rank} exited with code {code} ({len(failures)} process(es) failed); "
                  "its output above says why")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(tempfile.mkdtemp(prefix="distkd-launch-"))
    os.environ[ERROR_DIR_ENV] = str(folder)
    for name in ("torch.distributed.elastic.multiprocessing.api", "torch.distributed.elastic.agent.server.api"):
        logging.getLogger(name).addFilter(_DropFailureLines())
    try:
        code, line = _run(argv, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if line:
        print(line, file=sys.stderr, flush=True)
    return code


def _run(argv: list[str], folder: Path) -> tuple[int, str | None]:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
        return 0, None
    except ChildFailedError as err:
        failures = {rank: failure.exitcode for rank, failure in err.failures.items()}
        return summarize(read_records(folder), failures)
    except SignalException as err:  # Ctrl-C / SIGTERM to the launcher: torchrun stopped the processes
        records = read_records(folder)
        if records:
            return summarize(records, {})
        sig = signal.Signals(getattr(err, "sigval", signal.SIGINT))
        return (130, INTERRUPTED) if sig == signal.SIGINT else (128 + sig.value, f"stopped by {sig.name}")
    except KeyboardInterrupt:
        return 130, INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
