"""The bundled paper table: every row loads into its table with the right recipe and options."""
import pytest

from distkd.errors import UserError
from reproduce.paper import DIGITS_ROW, PAPER_TABLES, TABLES, load_paper_rows, rows_of_table


def test_every_row_of_the_paper_is_in_one_table():
    rows = load_paper_rows()
    assert len(rows) == 24
    counts = {table: sum(row.table == table for row in rows) for table in PAPER_TABLES}
    assert counts == {"imagenet_baseline": 2, "imagenet_stronger_teachers": 6, "imagenet_strong_strategy": 6,
                      "cifar100": 6, "coco": 2, "cityscapes": 2}


def test_numbers_and_roles():
    row = next(r for r in load_paper_rows() if r.student_model == "cifar_resnet8x4")
    assert (row.baseline, row.teacher_acc, row.kd, row.dist, row.dist_std) == (72.50, 79.42, None, 76.31, 0.19)
    assert row.roles == ("teacher", "baseline", "kd", "dist")
    assert row.paper_value("dist") == 76.31
    det = next(r for r in load_paper_rows() if r.student_model == "retinanet_r50_fpn")
    assert det.paper_value("dist_mimic") == 40.1 and "dist_mimic" in det.roles


def test_row_overrides_and_configs():
    rows = {r.student_model: r for r in rows_of_table("cifar100")}
    assert rows["cifar_mobile_half"].overrides == ("--lr", "0.01", "--warmup-lr", "0.01")
    assert rows["cifar_resnet8x4"].overrides == ()
    assert rows["cifar_resnet8x4"].config_path == "configs/strategies/distill/dist_cifar.yaml"
    swin_t = next(r for r in rows_of_table("imagenet_strong_strategy") if "swin_tiny" in r.student_model)
    assert swin_t.config_path is None and swin_t.overrides == () and "Swin" in swin_t.note


def test_digits_row_is_the_projects_own():
    assert rows_of_table("digits") == [DIGITS_ROW]
    assert DIGITS_ROW.source == "project" and DIGITS_ROW.dist is None
    assert "digits" in TABLES and "digits" not in PAPER_TABLES


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="unknown table 'cifar10'"):
        rows_of_table("cifar10")
    with pytest.raises(UserError, match="paper table not found"):
        load_paper_rows(tmp_path / "missing.csv")
