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


def kd_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """``--kd-loss-kwargs`` as a dict: the YAML config's mapping, updated by the command line's pairs."""
    from_config = parser.get_default("kd_loss_kwargs")
    given = {} if args.kd_loss_kwargs is from_config else key_value_pairs(args.kd_loss_kwargs)
    return {**key_value_pairs(from_config), **given}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of option: value, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: '{path}'")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise UserError(f"YAML syntax error in '{path}'{where}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"config '{path}' must be a mapping of option: value, got {type(data).__name__}")
    return data


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
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("-c", "--config", default=None)
    config = pre.parse_known_args(argv)[0].config
    if config:
        names, defaults = option_names(parser), {}
        for key, value in load_yaml(config).items():
            name = str(key).replace("-", "_")
            if name in names:
                defaults[names[name]] = value
            elif name not in known:
                close = difflib.get_close_matches(name, sorted({*names, *known}), n=3)
                hint = f" (did you mean: {', '.join(close)}?)" if close else ""
                raise UserError(f"unknown key '{key}' in config '{config}'{hint}")
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    for action in parser._actions:  # argparse does not check YAML-given defaults against choices
        value = getattr(args, action.dest, None)
        if action.choices is not None and value is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UserError(f"invalid value '{value}' for '{action.dest}' in config: choose from {choices}")
    return args
