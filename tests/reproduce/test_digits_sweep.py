"""The CPU-sized reproduction: the digits sweep through tools/reproduce.py's plan, then the report."""
import csv

import pytest

from distkd.errors import UserError
from reproduce.report import write_report
from reproduce.sweep import plan, run_jobs
from tests.conftest import ROOT


@pytest.mark.slow
def test_digits_sweep_runs_end_to_end_at_reduced_size(tmp_path):
    jobs = plan("digits", seeds=2, gpus=0, output=str(tmp_path),
                extra="--epochs 1 --max-iters-per-epoch 2 --image-size 8")
    assert len(jobs) == 1 + 3 * 2  # teacher, then baseline / KD / DIST for each seed
    from reproduce.cli import trainer_options as options_of  # as tools/reproduce.py
    assert run_jobs(jobs, cwd=ROOT, options_of=options_of) == 0
    markdown = write_report(tmp_path)
    assert "DIST" in markdown and (tmp_path / "report.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(tmp_path / "report.csv")))
    digits = [r for r in rows if "digits" in " ".join(r.values()).lower()]
    assert len(digits) == 4
    finished = sorted(int(r["n_finished"]) for r in digits)
    assert finished == [1, 2, 2, 2]
    assert run_jobs(jobs, cwd=ROOT, options_of=options_of) == 0  # a second run: all finished, all skipped
    # Changed options are never skipped silently: the sweep says what differs and what to do ...
    changed = plan("digits", seeds=2, gpus=0, output=str(tmp_path), extra="--epochs 2 --max-iters-per-epoch 2 "
                   "--image-size 8")
    with pytest.raises(UserError, match=r"7 experiment\(s\) were started with other options .*epochs 1 -> 2.*"
                                        r"--rerun-changed"):
        run_jobs(changed, cwd=ROOT, options_of=options_of)
    # ... and with --rerun-changed trains them again from scratch
    teacher = [job for job in changed if job.role == "teacher"]
    assert run_jobs(teacher, cwd=ROOT, rerun_changed=True, options_of=options_of) == 0
    assert len(list(csv.DictReader(open(tmp_path / teacher[0].name / "metrics.csv")))) == 2
