"""Options shared by the trainers and YAML configs.

Precedence: built-in defaults < YAML file given with ``-c`` < the command line. A YAML key may be
any spelling of an option (dashes or underscores, documented name or alias); a key that is not an
option is an error naming it and the closest names.
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from distkd.errors import UserError


def add_experiment_options(p: argparse.ArgumentParser, log_interval: int, save_interval: int,
                           aliases: Mapping[str, Sequence[str]] | None = None) -> None:
    """The experiment contract both trainers share (:class:`~distkd.utils.experiment.ExperimentDir`).
    ``aliases``: extra option strings (the paper's names) by destination."""
    more = dict(aliases or {})
    g = p.add_argument_group("experiment (folder, checkpoints, resume)")
    g.add_argument("--output", default="experiments", help="root folder of experiments")
    g.add_argument("--experiment", *more.get("experiment", ()), default=None,
                   help="experiment name: its folder under --output (default: derived from the models)")
    g.add_argument("--resume", nargs="?", const="auto", default=None, metavar="auto|PATH",
                   help="continue a run: 'auto' (or no value) = the experiment's last.pth, started fresh while "
                        "there is none; or a checkpoint path")
    g.add_argument("--overwrite", action="store_true",
                   help="start over in an experiment that holds checkpoints (removes them and the records)")
    g.add_argument("--log-interval", *more.get("log_interval", ()), type=int, default=log_interval,
                   help="iterations between log lines")
    g.add_argument("--save-interval", *more.get("save_interval", ()), type=int, default=save_interval,
                   help="also write last.pth every N iterations (0: at the end of each epoch only)")


class ArgumentParser(argparse.ArgumentParser):
    """argparse for every command-line tool: no option prefixes (``--epoch`` is not ``--epochs``), and a
    bad command line is a :class:`~distkd.errors.UserError` (one line on stderr and exit 2 through
    :func:`distkd.utils.cli.run_cli`) naming the problem and the fix, with the closest option or
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


def close_matches(word: str, candidates: Collection[str], n: int = 3) -> str:
    """`` (did you mean: a, b?)`` or an empty string."""
    close = difflib.get_close_matches(word, sorted(candidates), n=n, cutoff=0.75)
    if not close and word.startswith("--"):  # a prefix of an option: --epoch for --epochs
        close = [c for c in sorted(candidates) if c.startswith(word)][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""


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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of option: value, with one-line errors."""
    return load_yaml_with_lines(path)[0]


def load_yaml_with_lines(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML mapping of option: value and the line (1-based) of each top-level key."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config '{path}' is a folder: pass a YAML file, e.g. configs/digits.yaml")
    if not path.is_file():
        raise UserError(f"config file not found: '{path}'")
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
        node = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise UserError(f"YAML syntax error in '{path}'{where}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"config '{path}' must be a mapping of option: value, got {type(data).__name__}")
    lines = {}
    if isinstance(node, yaml.MappingNode):
        lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value if hasattr(key, "value")}
    return data, lines


_BOOL_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string"}


def check_yaml_value(action: argparse.Action, value: Any, key: str, where: str) -> str | None:
    """Why ``value`` of ``key`` (read from a YAML file at ``where``) is not a valid value of
    ``action``, as one line; None when it is valid."""
    if value is None:
        return None
    bad = f"key '{key}' in config {where}:"
    if isinstance(action, _BOOL_ACTIONS):
        return None if isinstance(value, bool) else f"{bad} expected true or false, got {value!r}"
    many = action.nargs in ("+", "*") or isinstance(action.nargs, int) and action.nargs > 1
    values = value if many and isinstance(value, (list, tuple)) else [value]
    if many and isinstance(action.nargs, int) and isinstance(value, (list, tuple)) and len(value) != action.nargs:
        return f"{bad} expected a list of {action.nargs} values, got {len(value)}"
    kind = action.type
    for item in values:
        if kind in (int, float):
            if isinstance(item, (bool, list, dict)):
                return f"{bad} expected {_TYPE_NAMES[kind]}, got {item!r}"
            if isinstance(item, str):
                try:
                    kind(item)
                except ValueError:
                    return f"{bad} expected {_TYPE_NAMES[kind]}, got {item!r}"
            elif kind is int and isinstance(item, float) and not item.is_integer():
                return f"{bad} expected an integer, got {item!r}"
        elif isinstance(item, (list, dict)) and not many and kind is not None:
            return f"{bad} expected a single value, got {item!r}"
        if action.choices is not None and item not in action.choices:
            return (f"invalid value '{item}' for '{key}' in config {where}"
                    f"{close_matches(str(item), [str(c) for c in action.choices])}; "
                    f"choose from {', '.join(map(str, action.choices))}")
    return None


def option_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Every long option spelling of ``parser`` (without dashes, ``_`` for ``-``) -> its destination."""
    names = {}
    for action in parser._actions:
        if action.dest in ("help", "config"):
            continue
        names[action.dest] = action.dest
        for flag in action.option_strings:
            if flag.startswith("--"):
                names[flag[2:].replace("-", "_")] = action.dest
    return names


def dashed(argv: Sequence[str]) -> list[str]:
    """``--color_jitter=0.4`` -> ``--color-jitter=0.4``: option names written with underscores."""
    out = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, sep, value = token.partition("=")
            token = name.replace("_", "-") + sep + value
        out.append(token)
    return out


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
                      known: Collection[str] = ()) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) with the YAML of ``-c`` as defaults. ``known``: keys
    of other tools' options that a config may hold and this parser ignores (e.g. training-only keys
    in a config given to the evaluation tool)."""
    argv = dashed(sys.argv[1:] if argv is None else argv)
    pre = ArgumentParser(add_help=False, prog=parser.prog)
    pre.add_argument("-c", "--config", default=None)
    config = pre.parse_known_args(argv)[0].config
    if config:
        names, defaults = option_names(parser), {}
        actions = {action.dest: action for action in parser._actions}
        data, lines = load_yaml_with_lines(config)
        for key, value in data.items():
            name = str(key).replace("-", "_")
            where = f"'{config}', line {lines[str(key)]}" if str(key) in lines else f"'{config}'"
            if name in names:
                problem = check_yaml_value(actions[names[name]], value, str(key), where)
                if problem:
                    raise UserError(problem)
                defaults[names[name]] = value
            elif name not in known:
                hint = close_matches(name, sorted({*names, *known}))
                raise UserError(f"unknown key '{key}' in config {where}{hint}; "
                                "'--help' lists the options (a key is an option name without the dashes)")
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    for action in parser._actions:  # argparse does not check YAML-given defaults against choices
        value = getattr(args, action.dest, None)
        if action.choices is not None and value is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UserError(f"invalid value '{value}' for '{action.dest}' in config: choose from {choices}")
    return args
