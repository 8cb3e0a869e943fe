"""The README's classification commands work as written: configs exist, options parse, models exist."""
import re
import shlex

import pytest

from classification.config import parse_args
from classification.models import check_model_name
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
COMMANDS = sorted({c.strip() for c in re.findall(r"(?:`|^)((?:sh tools/dist_train\.sh|python tools/(?:train|test)\.py) "
                                                 r"[^`\n]+)", README, flags=re.M)})


def to_argv(command: str) -> tuple[list[str], bool]:
    words = shlex.split(command)
    if words[:2] == ["sh", "tools/dist_train.sh"]:
        _, _, _gpus, config, model, *rest = words
        return ["-c", config, "--model", model, *rest], False
    return words[2:], words[1] == "tools/test.py"


def test_readme_has_the_commands():
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses_and_names_real_things(command):
    argv, for_test = to_argv(command)
    if "-c" in argv:  # (the first command to try has no config)
        config = argv[argv.index("-c") + 1]
        assert (ROOT / config).is_file(), config
        argv[argv.index("-c") + 1] = str(ROOT / config)
    args = parse_args(argv, for_test=for_test)
    check_model_name(args.model)
    if not for_test and args.kd:
        check_model_name(args.teacher_model)


def test_every_file_the_readme_names_exists():
    pattern = r"\b((?:configs|tools|segmentation|detection|benchmarks|docs|distkd)/[\w./-]+\.(?:py|sh|yaml|md))"
    paths = set(re.findall(pattern, README))
    assert len(paths) > 20
    missing = sorted(p for p in paths if not (ROOT / p).is_file())
    assert not missing, missing


def test_experiment_names_in_the_readme_are_unique():
    """Two commands with one --experiment name would write one folder (the second refuses or resumes it)."""
    by_name: dict[str, set[str]] = {}
    for command in COMMANDS:
        words = shlex.split(command)
        if "--experiment" in words:
            by_name.setdefault(words[words.index("--experiment") + 1], set()).add(command)
    assert len(by_name) >= 20
    assert {name: sorted(cmds) for name, cmds in by_name.items() if len(cmds) > 1} == {}
