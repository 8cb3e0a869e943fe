"""Entry-point wrapper: a :class:`~distkd.errors.UserError` becomes one line on stderr and exit 2; a
pre-emption (:class:`~distkd.utils.preemption.Preempted`) one line and exit 75; Ctrl-C exit 130."""
from __future__ import annotations

import sys
from collections.abc import Callable

from distkd.errors import UserError
from distkd.utils.distributed import RankFailed
from distkd.utils.preemption import PREEMPTED_EXIT_CODE, Preempted


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line. A UserError raised in a DataLoader worker arrives wrapped,
    with the worker's traceback in its message: keep the original message only."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if last.startswith(("distkd.errors.UserError", "UserError")) else last
    return " ".join(text.split())


def run_cli(main: Callable[[], object]) -> None:
    try:
        main()
    except UserError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except RankFailed as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    except Preempted as err:
        print(f"pre-empted: {one_line(err)}", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_CODE)
    except KeyboardInterrupt:
        print("interrupted: the last completed checkpoint is kept; continue with --resume auto", file=sys.stderr)
        sys.exit(130)
