"""The paper's per-epoch curve (original trainer's log format) beside a run of the same row."""
import csv

import pytest
import yaml

from distkd.errors import UserError
from distkd_cli.download import MIRROR_ENV
from reproduce import report_cli
from reproduce.paper_logs import PAPER_LOGS, first_departure, log_name_for, parse_log
from tests.loopback import online, refused_url, serve

PAPER = {0: 30.5, 1: 45.25, 2: 52.0, 3: 58.75}


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    online(monkeypatch)


def original_log(paper=PAPER, batches=4) -> str:
    """A log as image_classification_sota's trainer writes it (file handler format, running averages)."""
    lines = ["22-05-20 10:00:00 INFO Experiment directory: experiments/r18_r34_dist"]
    for i in range(batches):  # the teacher is validated once before training
        lines.append(f"22-05-20 10:00:0{i} INFO Test (teacher): 0 [{i:>4d}/{batches}] Loss: 1.100 (1.100) "
                     f"Top-1: 70.000% (73.310%) Top-5: 90.000% (91.420%) Time: 0.10s")
    for epoch, top1 in paper.items():
        lines.append(f"22-05-20 11:00:00 INFO Train: {epoch} [   0/5005] Loss: 6.900 (6.900) LR: 1.000e-01 "
                     "Time: 1.00s (1.00s) Data: 0.50s")
        for i in range(batches):
            avg = top1 if i == batches - 1 else top1 - 5  # only the last batch's average is the epoch's
            lines.append(f"22-05-20 11:10:00 INFO Test: {epoch} [{i:>4d}/{batches}] Loss: 2.000 (2.100) "
                         f"Top-1: 50.000% ({avg:.3f}%) Top-5: 80.000% (81.000%) Time: 0.20s")
            lines.append(f"22-05-20 11:10:01 INFO Test(EMA): {epoch} [{i:>4d}/{batches}] Loss: 2.000 (2.100) "
                         f"Top-1: 50.000% ({avg + 0.5:.3f}%) Top-5: 80.000% (81.000%) Time: 0.20s")
        lines.append("Checkpoints:\n        experiments/r18_r34_dist/checkpoint-0.pth.tar : 30.500%")
    return "\n".join(lines) + "\n"


def test_parse_the_original_format():
    series = parse_log(original_log())
    assert series["top1"] == PAPER
    assert series["top1_ema"] == {e: v + 0.5 for e, v in PAPER.items()}
    assert series["teacher"] == {0: 73.31}
    with pytest.raises(UserError, match="no per-epoch validation lines"):
        parse_log("nothing here\n")


def test_row_to_log_name():
    assert log_name_for("tv_resnet18", "tv_resnet34", "configs/strategies/distill/resnet_dist.yaml") == \
        "baseline_Res34-Res18.txt"
    assert log_name_for("tv_resnet18", "timm_resnet50", "configs/strategies/distill/dist_b2.yaml") == \
        "stronger_Res50SB-Res18.txt"
    with pytest.raises(UserError, match="no log for tv_resnet18 <- tv_resnet152"):
        log_name_for("tv_resnet18", "tv_resnet152", "configs/strategies/distill/resnet_dist.yaml")
    assert len(PAPER_LOGS) == 7
    assert first_departure(PAPER, {0: 30.0, 1: 45.0, 2: 49.0}, 1.0) == 2


def write_run(folder, top1):
    folder.mkdir(parents=True)
    args = {"model": "tv_resnet18", "teacher_model": "tv_resnet34",
            "config": "configs/strategies/distill/resnet_dist.yaml"}
    (folder / "args.yaml").write_text(yaml.safe_dump(args))
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "val_top1"])
        writer.writeheader()
        writer.writerows({"epoch": e, "val_top1": v} for e, v in top1.items())


def test_report_downloads_the_log_and_draws_both_curves(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "baseline_Res34-Res18.txt").write_text(original_log())
    write_run(tmp_path / "experiments" / "r18", {0: 30.0, 1: 45.0, 2: 48.5})  # departs at epoch 2
    report = report_cli
    with serve(tmp_path / "srv") as base:
        monkeypatch.setenv(MIRROR_ENV, base)
        report.main(["--run", "experiments/r18", "--paper-log", "auto"])
    out = capsys.readouterr().out
    assert "first epoch off by more than 1 point(s): 2" in out and "epoch 2: paper 52.00, yours 48.50" in out
    assert (tmp_path / "experiments" / "r18" / "paper_curve.png").stat().st_size > 1000
    assert (tmp_path / "checkpoints" / "paper_logs" / "sha256.json").is_file()
    monkeypatch.setenv(MIRROR_ENV, refused_url())  # downloaded once: no server needed now
    report.main(["--run", "experiments/r18", "--paper-log", "baseline_Res34-Res18.txt", "--tolerance", "5"])
    assert "within 5 point(s)" in capsys.readouterr().out


def test_report_with_a_log_path_and_a_refused_download(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text(original_log())
    write_run(tmp_path / "run", {0: 30.5, 1: 45.25})
    report = report_cli
    report.main(["--run", "run", "--paper-log", "mine.txt"])
    assert "within 1 point(s)" in capsys.readouterr().out
    monkeypatch.setenv(MIRROR_ENV, refused_url())
    with pytest.raises(UserError, match="could not download .*baseline_Res34-Res18.txt by hand"):
        report.main(["--run", "run", "--paper-log", "auto"])
    assert not list((tmp_path / "checkpoints" / "paper_logs").glob("*.txt"))
