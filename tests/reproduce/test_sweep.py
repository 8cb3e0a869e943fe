"""--run: commands run in order, finished experiments are skipped, the first failure stops the sweep."""
import sys
from pathlib import Path

import pytest

from distkd.errors import UserError
from reproduce.jobs import Job, short_name
from reproduce.paper import DIGITS_ROW
from reproduce.sweep import run_jobs
from tests.conftest import ROOT as ROOT_DIR

sys.path.insert(0, str(Path(__file__).parent))
from fake_runs import write_run  # noqa: E402


def _job(name: str, code: str, root: Path) -> Job:
    return Job(name, "baseline", DIGITS_ROW, 0, (sys.executable, "-c", code), None, (), str(root / name))


def test_run_jobs_skips_finished_and_stops_at_first_failure(tmp_path, capsys):
    root = tmp_path / "experiments"
    write_run(root, "done", model="cifar_resnet8", dataset="digits", epochs=2, top1=[50, 60])
    write_run(root, "crashed", model="cifar_resnet8", dataset="digits", epochs=2, top1=[50])
    (root / "crashed" / "last.pth").write_bytes(b"")  # it left a checkpoint: resumed
    jobs = [
        _job("done", "raise SystemExit(3)", root),  # finished earlier: must not run
        _job("crashed", "import sys; open('ran_crashed', 'w').write(' '.join(sys.argv[1:]))", root),
        _job("fails", "raise SystemExit(5)", root),
        _job("after", "open('ran_after', 'w')", root),
    ]
    assert run_jobs(jobs, cwd=tmp_path) == 5
    assert (tmp_path / "ran_crashed").read_text() == "--resume auto"
    assert not (tmp_path / "ran_after").exists()
    captured = capsys.readouterr()
    assert "[1/4] done: finished earlier, skipped" in captured.out
    assert "[3/4] fails failed (exit 5)" in captured.err


def test_run_jobs_puts_the_repository_on_the_python_path(tmp_path):
    (tmp_path / "marker_pkg.py").write_text("")
    job = _job("imports", "import marker_pkg", tmp_path)
    assert run_jobs([job], cwd=tmp_path) == 0


def test_short_names():
    assert [short_name(m) for m in ("cifar_resnet8x4", "cifar_wrn_40_2", "tv_resnet18", "cifar_ShuffleV1",
                                    "timm_resnet50", "deeplabv3_resnet101")] == \
        ["r8x4", "wrn40-2", "r18", "shv1", "r50sb", "dlv3r101"]


def test_missing_config_or_script_stops_before_anything_runs(tmp_path):
    job = Job("x", "baseline", DIGITS_ROW, 0, ("python", "tools/train.py", "-c", "configs/digits.yaml"),
              "configs/digits.yaml", (), str(tmp_path / "x"))
    with pytest.raises(UserError, match="missing configs/digits.yaml, tools/train.py"):
        run_jobs([job], cwd=tmp_path)


def test_a_run_started_with_other_options_is_named_with_what_to_do(tmp_path):
    import yaml

    from classification.config import fill_defaults, parse_args
    from reproduce.sweep import changed_options

    command = ["-c", str(ROOT_DIR / "configs/digits.yaml"), "--model", "cifar_resnet8", "--epochs", "3"]
    job = Job("e", "baseline", DIGITS_ROW, 0, ("python", "tools/train.py", *command), None, (), str(tmp_path / "e"))
    from reproduce.cli import trainer_options as options_of

    assert changed_options(job, options_of=options_of) == []  # nothing started yet
    (tmp_path / "e").mkdir()
    earlier = vars(fill_defaults(parse_args([*command[:-1], "2", "--output", "elsewhere", "--workers", "9"])))
    (tmp_path / "e" / "args.yaml").write_text(yaml.safe_dump(earlier))
    # where it wrote and how many workers: the same experiment
    assert changed_options(job, options_of=options_of) == ["epochs 2 -> 3"]
    with pytest.raises(UserError, match=r"1 experiment\(s\) were started with other options .*\(e: epochs 2 -> 3\);"
                                        r" add --rerun-changed .* --output DIR"):
        run_jobs([job], cwd=ROOT_DIR, options_of=options_of)
