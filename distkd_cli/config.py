"""Options shared by the trainers and YAML configs.

Precedence: built-in defaults < YAML file given with ``-c`` < the command line. A YAML key may be
any spelling of an option (dashes or underscores, documented name or alias); a key that is not an
option is an error naming it and the closest names.
"""
from __future__ import annotations

import argparse
import difflib
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


def key_value_pairs(values: Sequence[str] | Mapping | None, option: str = "--kd-loss-kwargs") -> dict[str, Any]:
    """``['beta=2', 'tau=4']`` -> ``{'beta': 2, 'tau': 4}`` (YAML scalars); a mapping (YAML config) as it is."""
    if values is None or isinstance(values, Mapping):
        return dict(values or {})
    if bad := [item for item in values if "=" not in item]:
        raise UserError(f"{option} takes key=value pairs, got '{bad[0]}'")
    return {k.strip(): yaml.safe_load(v) for k, v in (item.split("=", 1) for item in values)}


def add_kd_options(g: argparse._ArgumentGroup, absent: str, weight_aliases: Sequence[str] = ()) -> None:
    """The ``kd`` configuration's options, as both trainers spell them."""
    g.add_argument("--kd", default=None, help=f"KD method: kd, kdtN, dkd, dist, dist_tN, mse, ...; {absent}")
    g.add_argument("--kd-loss-weight", *weight_aliases, type=float, default=1.0, help="weight of the KD loss")
    g.add_argument("--kd-loss-kwargs", nargs="*", default=None,
                   help="the method's options, key=value (tau, beta, gamma, alpha, warmup; ls=1 logit "
                        "standardisation); they add to a YAML config's mapping")


def kd_options(parser: argparse.ArgumentParser, parsed: Sequence[str] | Mapping | None) -> dict[str, Any]:
    """``--kd-loss-kwargs`` (``parsed``: its parsed value) as a dict: the YAML config's mapping, updated
    by the command line's pairs."""
    from_config = parser.get_default("kd_loss_kwargs")
    given = {} if parsed is from_config else key_value_pairs(parsed)
    return {**key_value_pairs(from_config), **given}


def close_matches(word: str, candidates: Collection[str], n: int = 3) -> str:
    """`` (did you mean: a, b?)`` or an empty string."""
    close = difflib.get_close_matches(word, sorted(candidates), n=n, cutoff=0.75)
    if not close and word.startswith("--"):  # a prefix of an option: --epoch for --epochs
        close = [c for c in sorted(candidates) if c.startswith(word)][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""


class _PreParser(argparse.ArgumentParser):  # reads -c alone, with one-line errors
    def error(self, message: str):
        raise UserError(f"{message}; -c takes the YAML file of the options")


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


_TYPE_NAMES = {int: "an integer", float: "a number"}


def check_yaml_value(action: argparse.Action, value: Any, key: str, where: str) -> str | None:
    """Why ``value`` of ``key`` (YAML at ``where``) is not a valid value of ``action``; None if it is."""
    bad = f"key '{key}' in config {where}:"
    if value is None:
        return None
    if action.nargs == 0:  # a flag
        return None if isinstance(value, bool) else f"{bad} expected true or false, got {value!r}"
    items = value if action.nargs in ("+", "*") or isinstance(action.nargs, int) else [value]
    items = items if isinstance(items, (list, tuple)) else [items]
    if isinstance(action.nargs, int) and len(items) != action.nargs:
        return f"{bad} expected a list of {action.nargs} values, got {value!r}"
    for item in items:
        if action.type in (int, float):
            try:
                ok = not isinstance(item, (bool, list, dict)) and action.type(item) == float(item)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                return f"{bad} expected {_TYPE_NAMES[action.type]}, got {item!r}"
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
    pre = _PreParser(add_help=False, allow_abbrev=False)
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
