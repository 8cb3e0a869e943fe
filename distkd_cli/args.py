"""Argument parsing for every command-line tool: one line for a bad command line, with the fix."""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Collection
from typing import Any

from distkd.errors import UserError
from distkd_cli.config import close_matches

_TYPE_NAMES = {int: "an integer", float: "a number"}


class ArgumentParser(argparse.ArgumentParser):
    """argparse for every command-line tool: no option prefixes (``--epoch`` is not ``--epochs``), and a
    bad command line is a :class:`~distkd.errors.UserError` (one line on stderr and exit 2 through
    :func:`distkd_cli.run.run_cli`) naming the problem and the fix, with the closest option or
    choice for a typo, instead of argparse's usage block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        if kwargs.get("prog") is None and sys.argv and sys.argv[0].endswith(".py"):
            script = os.path.relpath(sys.argv[0]) if os.path.isabs(sys.argv[0]) else sys.argv[0]
            kwargs["prog"] = f"python {script if not script.startswith('..') else sys.argv[0]}"
        super().__init__(*args, **kwargs)

    def long_options(self) -> list[str]:
        return sorted({flag for action in self._actions for flag in action.option_strings if flag.startswith("--")})

    def error(self, message: str):  # argparse's hook for every command-line error
        raise UserError(explain_argparse_error(message, self.long_options(), self.prog))


def explain_argparse_error(message: str, options: Collection[str], prog: str) -> str:
    """argparse's error ``message`` as one line with the fix: unknown options get the closest names,
    invalid choices the closest choice; the rest point to ``--help``."""
    help_hint = f"'{prog} --help' lists the options"
    if message.startswith("unrecognized arguments: "):
        words = message[len("unrecognized arguments: "):].split()
        flags = [w.split("=", 1)[0] for w in words if w.startswith("-") and len(w) > 1]
        if flags:
            parts = [f"unknown option '{flag}'{close_matches(flag, options)}" for flag in flags]
            return "; ".join(parts) + f"; {help_hint}"
        return f"unexpected argument(s) {' '.join(repr(w) for w in words)}; {help_hint}"
    if "invalid choice: " in message:  # argument --dataset: invalid choice: 'imagenett' (choose from ...)
        head, _, rest = message.partition("invalid choice: ")
        value = rest.split(" (choose from", 1)[0].strip("'\"")
        choices = [c.strip(" '\")") for c in rest.partition("(choose from ")[2].split(",")]
        return f"{head}invalid choice '{value}'{close_matches(value, choices)}; choose from {', '.join(choices)}"
    invalid = re.match(r"argument (\S+): invalid (int|float) value: (.*)$", message)
    if invalid:
        option, kind, value = invalid.groups()
        return f"{option.split('/')[-1]}: {value} is not {_TYPE_NAMES[{'int': int, 'float': float}[kind]]}"
    if message.startswith("the following arguments are required: "):
        return f"missing {message[len('the following arguments are required: '):]} (required); {help_hint}"
    return f"{message}; {help_hint}"
