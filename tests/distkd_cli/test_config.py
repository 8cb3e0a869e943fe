"""Shared YAML configs and experiment options: defaults < YAML < command line, aliases in YAML."""
import argparse

import pytest

from distkd.errors import UserError
from distkd_cli.config import add_experiment_options, parse_with_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("-c", "--config")
    p.add_argument("--data-path", "--data", default="d")
    p.add_argument("--opt", default="sgd", choices=["sgd", "adamw"])
    add_experiment_options(p, log_interval=10, save_interval=100, aliases={"log_interval": ["--log-iter"]})
    return p


def test_precedence_and_alias_keys(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: from_yaml\nlog_iter: 3\nsave-interval: 7\nopt: adamw\n")
    args = parse_with_config(parser(), ["-c", str(cfg), "--save_interval", "9"])
    assert (args.data_path, args.log_interval, args.save_interval, args.opt) == ("from_yaml", 3, 9, "adamw")
    assert parse_with_config(parser(), ["-c", str(cfg), "--data", "cli"]).data_path == "cli"


def test_resume_without_value_means_auto():
    assert parse_with_config(parser(), ["--resume"]).resume == "auto"
    assert parse_with_config(parser(), ["--resume", "x.pth"]).resume == "x.pth"
    assert parse_with_config(parser(), []).resume is None


@pytest.mark.parametrize("text, message", [
    ("dataa: x\n", r"unknown key 'dataa' .*did you mean: data"),
    ("opt: lamb\n", r"invalid value 'lamb' for 'opt'"),
    ("- a\n", "must be a mapping"),
    ("a: [\n", "YAML syntax error"),
])
def test_bad_configs_are_one_line_errors(tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(UserError, match=message):
        parse_with_config(parser(), ["-c", str(cfg)])


def test_keys_of_another_tool_are_ignored_when_known(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 3\n")
    assert parse_with_config(parser(), ["-c", str(cfg)], known={"epochs"}).data_path == "d"
