"""tools/report.py on a synthetic experiments folder: 3 seeds with a known mean and std, a crashed
run, a run matching no paper row, a pretrained teacher, an unreadable folder."""
import csv
import sys
from pathlib import Path

import pytest

from distkd.errors import UserError
from reproduce.matching import build_lines, roles_in_row
from reproduce.paper import reference_rows
from reproduce.report import write_report
from reproduce.runs import load_run

sys.path.insert(0, str(Path(__file__).parent))
from fake_runs import write_run  # noqa: E402

DIGITS = "configs/digits.yaml"
DIST_CIFAR = "configs/strategies/distill/dist_cifar.yaml"


@pytest.fixture
def experiments(tmp_path):
    root = tmp_path / "experiments"
    write_run(root, "digits-r20-teacher-s0", model="cifar_resnet20", dataset="digits", epochs=3,
              top1=[80, 90, 95], config=DIGITS)
    for seed, (best, last) in enumerate([(70, 69), (71, 70), (72, 71)]):
        write_run(root, f"digits-r8-baseline-s{seed}", model="cifar_resnet8", dataset="digits", epochs=3,
                  top1=[60, best, last], seed=seed, config=DIGITS)
    write_run(root, "digits-r8_r20-kd-s0", model="cifar_resnet8", dataset="digits", epochs=3, top1=[60, 73, 72],
              kd="kdt4", teacher="cifar_resnet20", config=DIGITS, teacher_top1=95.0)
    # crashed after its first epoch, while writing the second metrics row
    write_run(root, "digits-r8_r20-kd-s1", model="cifar_resnet8", dataset="digits", epochs=3, top1=[61], seed=1,
              kd="kdt4", teacher="cifar_resnet20", config=DIGITS, torn_line=True)
    for seed, best in enumerate([76.0, 76.5, 77.0]):
        write_run(root, f"cifar100-r8x4_r32x4-dist-s{seed}", model="cifar_resnet8x4", dataset="cifar100", epochs=2,
                  top1=[best, best - 1], seed=seed, kd="dist_t4", teacher="cifar_resnet32x4", config=DIST_CIFAR)
    # DIST with tau 1 is not the paper's CIFAR recipe (tau 4): the user's own row
    write_run(root, "my-dist-tau1", model="cifar_resnet8x4", dataset="cifar100", epochs=2, top1=[70, 74],
              kd="dist", teacher="cifar_resnet32x4", config=DIST_CIFAR)
    write_run(root, "imagenet-r18_r34-dist-s0", model="tv_resnet18", dataset="imagenet", epochs=100,
              top1=[50, 60], kd="dist", teacher="tv_resnet34", config="configs/strategies/distill/resnet_dist.yaml",
              teacher_top1=73.3)
    (root / "broken").mkdir()
    (root / "broken" / "args.yaml").write_text("[1, 2")
    return root


def _records(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with open(path, newline="") as handle:
        return {(r["group"], r["student"], r["method"]): r for r in csv.DictReader(handle)}


def test_report_values(experiments, tmp_path):
    out = tmp_path / "report"
    markdown = write_report(experiments, out)
    records = _records(out / "report.csv")

    baseline = records[("digits", "cifar_resnet8", "baseline")]
    assert float(baseline["best_mean"]) == pytest.approx(71.0) and float(baseline["best_std"]) == pytest.approx(1.0)
    assert float(baseline["last_mean"]) == pytest.approx(70.0) and float(baseline["last_std"]) == pytest.approx(1.0)
    assert baseline["n_finished"] == "3" and baseline["paper"] == "" and baseline["source"] == "project"

    kd = records[("digits", "cifar_resnet8", "kd")]  # one finished seed, one crashed
    assert (kd["best_mean"], kd["best_std"], kd["n_finished"], kd["n_unfinished"]) == ("73.0", "", "1", "1")
    assert "digits-r8_r20-kd-s1: unfinished (1 of 3 epochs done)" in kd["status"]
    assert records[("digits", "cifar_resnet8", "teacher")]["best_mean"] == "95.0"
    assert records[("digits", "cifar_resnet8", "dist")]["status"] == "not run"

    dist = records[("cifar100", "cifar_resnet8x4", "dist")]
    assert float(dist["best_mean"]) == pytest.approx(76.5) and float(dist["best_std"]) == pytest.approx(0.5)
    assert float(dist["last_mean"]) == pytest.approx(75.5)
    assert float(dist["paper"]) == 76.31 and float(dist["diff_best"]) == pytest.approx(0.19)
    assert records[("cifar100", "cifar_resnet8x4", "baseline")]["paper"] == "72.5"

    own = records[("own", "cifar_resnet8x4", "dist")]
    assert own["source"] == "own" and own["paper"] == "" and float(own["best_mean"]) == 74.0

    teacher = records[("imagenet_baseline", "tv_resnet18", "teacher")]  # pretrained, measured before KD
    assert float(teacher["best_mean"]) == 73.3 and float(teacher["diff_best"]) == pytest.approx(-0.01)
    student = records[("imagenet_baseline", "tv_resnet18", "dist")]
    assert student["best_mean"] == "" and "2 of 100 epochs done" in student["status"]

    assert "Your own rows" in markdown and "| 76.50 ± 0.50 |" in markdown and "+0.19" in markdown
    assert "broken/args.yaml" in markdown
    assert (out / "report.md").read_text() == markdown
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_imagenet_baselines_are_told_apart_by_recipe(tmp_path):
    plain = load_run(write_run(tmp_path, "a", model="tv_resnet18", dataset="imagenet", epochs=1, top1=[70],
                               config="configs/strategies/baseline/resnet.yaml"))
    strong = load_run(write_run(tmp_path, "b", model="tv_resnet18", dataset="imagenet", epochs=1, top1=[73],
                                config="configs/strategies/baseline/b2.yaml"))
    rows = [row for row in reference_rows() if row.student_model == "tv_resnet18"]
    plain_tables = {row.table for row in rows if roles_in_row(plain, row) == ["baseline"]}
    strong_tables = {row.table for row in rows if roles_in_row(strong, row) == ["baseline"]}
    assert plain_tables == {"imagenet_baseline", "imagenet_stronger_teachers"}
    assert strong_tables == {"imagenet_strong_strategy"}
    lines = build_lines([strong], reference_rows())
    assert [(line.method, line.paper) for line in lines if line.runs] == [("baseline", 73.4)]


def test_a_trained_model_that_is_a_teacher_fills_the_teacher_line(tmp_path):
    run = load_run(write_run(tmp_path, "t", model="cifar_resnet32x4", dataset="cifar100", epochs=1, top1=[79.0],
                             config="configs/strategies/baseline/cifar.yaml"))
    lines = [line for line in build_lines([run], reference_rows()) if line.runs]
    assert {line.row.student_model for line in lines} == {"cifar_resnet8x4", "cifar_ShuffleV1", "cifar_ShuffleV2"}
    assert {(line.method, line.paper) for line in lines} == {("teacher", 79.42)}


def test_empty_and_missing_folders(tmp_path):
    markdown = write_report(tmp_path)
    assert "No runs found." in markdown
    with pytest.raises(UserError, match="experiments folder not found"):
        write_report(tmp_path / "nope")
