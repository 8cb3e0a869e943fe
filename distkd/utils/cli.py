"""Entry-point wrapper: a :class:`~distkd.errors.UserError` becomes one line on stderr and exit 2."""
from __future__ import annotations

import sys
from collections.abc import Callable

from distkd.errors import UserError


def run_cli(main: Callable[[], object]) -> None:
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: the last completed checkpoint is kept; continue with --resume", file=sys.stderr)
        sys.exit(130)
