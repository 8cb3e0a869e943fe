"""tools/reproduce.py cifar100-methods: KD, DKD and DIST with and without logit standardisation on the
paper's six CIFAR-100 pairs, one recipe; every command parses into its method's setting; the report
puts each measured number beside the published one with its source."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from distkd.errors import UserError
from distkd.losses import kd_config
from reproduce import methods
from reproduce.paper import load_paper_rows
from reproduce.report import write_report
from reproduce.sweep import plan

sys.path.insert(0, str(Path(__file__).parent))
from fake_runs import write_run  # noqa: E402
from test_commands import ROOT, _option, dry_run, trainer_argv  # noqa: E402

CIFAR_ROWS = [row for row in load_paper_rows() if row.table == "cifar100"]


def test_six_pairs_six_methods_teachers_first(monkeypatch, capsys):
    commands = dry_run(monkeypatch, capsys, methods.TABLE, "--seeds", "2", "--output", "runs")
    names = [_option(argv, "--experiment") for argv in commands]
    assert len(CIFAR_ROWS) == 6
    assert names[:4] == [n for n in names if n.endswith("-teacher-s0")] and len(set(names)) == len(names)
    assert len(names) == 4 + 2 * 6 * 6
    jobs = {job.name: job for job in plan(methods.TABLE, seeds=2, output="runs")}
    for row in CIFAR_ROWS:
        for column in methods.PAPER_RECIPE_COLUMNS:
            for seed in (0, 1):
                job = [j for j in jobs.values() if j.row == row and j.role == column and j.seed == seed]
                assert len(job) == 1, (row.label, column)
                argv = list(job[0].argv)
                assert _option(argv, "--teacher-ckpt").startswith("runs/cifar100-") and _option(argv, "--lr") == (
                    "0.01" if "lr 0.01" in row.config else None)


def test_kd_and_dist_runs_are_the_cifar100_tables(monkeypatch, capsys):
    """The same experiments (names and commands) as `tools/reproduce.py cifar100`: finished ones are reused."""
    table = {job.name: job.argv for job in plan("cifar100", seeds=1)}
    for job in plan(methods.TABLE, seeds=1):
        if job.role in ("teacher", "kd", "dist"):
            assert table[job.name] == job.argv


@pytest.mark.parametrize("recipe", methods.RECIPES)
def test_every_command_parses_into_its_methods_setting(recipe, monkeypatch, capsys):
    from classification.config import parse_args

    monkeypatch.chdir(ROOT)
    for job in plan(methods.TABLE, seeds=1, recipe=recipe):
        args = parse_args(trainer_argv(list(job.argv)))
        assert (ROOT / job.config).is_file()
        if job.role == "teacher":
            assert args.kd is None
            continue
        setting = methods.settings(job.row)[job.role]
        config = kd_config(args.kd, args.kd_loss_kwargs, args.kd_loss_weight)
        assert (config.method, tuple(sorted(config.options.items()))) == setting.signature, job.name
        assert (args.ori_loss_weight, config.weight) == (setting.ori_weight, setting.kd_weight), job.name
        assert (args.dataset, args.model, args.teacher_model) == ("cifar100", job.row.student_model,
                                                                   job.row.teacher_model)


def test_the_authors_settings():
    by_pair = {(r.student_model, r.teacher_model): methods.settings(r) for r in CIFAR_ROWS}
    r8x4 = by_pair[("cifar_resnet8x4", "cifar_resnet32x4")]
    assert dict(kd_config("dkd", r8x4["dkd"].options).options) == {"alpha": 1.0, "beta": 8.0, "tau": 4.0, "warmup": 20,
                                                                   "ls": False}
    assert dict(r8x4["dkd_ls"].options) == {"alpha": 9.0, "beta": 72.0, "tau": 2.0, "warmup": 20, "ls": True}
    assert (r8x4["kd_ls"].ori_weight, r8x4["kd_ls"].kd_weight, r8x4["kd_ls"].options["tau"]) == (0.1, 9.0, 2.0)
    assert by_pair[("cifar_wrn_40_1", "cifar_wrn_40_2")]["dkd"].options["beta"] == 6.0  # mdistiller's config
    assert by_pair[("cifar_resnet20", "cifar_resnet56")]["dkd_ls"].options["beta"] == 18.0  # 9 x 2
    published = [j.role for j in plan(methods.TABLE, seeds=1, recipe="published") if j.role.endswith("_pub")]
    assert sorted(published) == sorted(["kd_pub"] * 6 + ["kd_ls_pub"] + ["dkd_ls_pub"] * 3)
    pub = by_pair[("cifar_resnet20", "cifar_resnet56")]["dkd_ls_pub"]
    assert (pub.options["alpha"], pub.options["beta"], pub.options["tau"]) == (18.0, 36.0, 3.0)


def test_published_numbers_and_sources():
    row = next(r for r in CIFAR_ROWS if r.student_model == "cifar_resnet8x4")
    values = {c: methods.published(row, c) for c in methods.PAPER_RECIPE_COLUMNS}
    assert values == {"kd": (73.33, "mdistiller"), "dkd": (76.32, "mdistiller"), "kd_ls": (76.62, "LS"),
                      "dkd_ls": (77.01, "LS"), "dist": (76.31, "DIST paper"), "dist_ls": (None, "")}
    shv1 = next(r for r in CIFAR_ROWS if r.student_model == "cifar_ShuffleV1")
    assert methods.published(shv1, "kd_ls") == (None, "")  # not published
    assert all(methods.published(r, "dkd")[0] is not None for r in CIFAR_ROWS)


def test_bad_options():
    with pytest.raises(UserError, match="applies to the cifar100-methods table only"):
        plan("cifar100", recipe="published")
    with pytest.raises(UserError, match="unknown --recipe"):
        plan(methods.TABLE, recipe="mine")
    assert {j.role for j in plan(methods.TABLE, seeds=1, only=["dkd", "dkd_ls"])} == {"dkd", "dkd_ls"}


def test_report_puts_measured_beside_published(tmp_path):
    root = tmp_path / "experiments"
    pair = dict(model="cifar_resnet8x4", dataset="cifar100", epochs=2, teacher="cifar_resnet32x4")
    distill = "configs/strategies/distill"
    runs = {
        "kd": ("kdt4", {}, 0.9, 1.0, "kd_cifar"),
        "kd_ls": ("kd", {"tau": 2.0, "ls": True}, 0.1, 9.0, "kd_ls_cifar"),
        "dkd": ("dkd", {"alpha": 1.0, "beta": 8.0, "tau": 4.0, "warmup": 20}, 1.0, 1.0, "dkd_cifar"),
        "dkd_ls": ("dkd", {"alpha": 9.0, "beta": 72.0, "tau": 2.0, "warmup": 20, "ls": True}, 1.0, 1.0,
                   "dkd_ls_cifar"),
        "dist": ("dist_t4", {}, 1.0, 2.0, "dist_cifar"),
        "kd_pub": ("kdt4", {}, 0.1, 0.9, "kd_cifar"),
    }
    for seed, top in enumerate((75.0, 76.0)):
        for column, (kd, kwargs, ori, weight, config) in runs.items():
            write_run(root, f"{column}-s{seed}", kd=kd, top1=[top - 1, top], seed=seed,
                      config=f"{distill}/{config}.yaml", kd_loss_kwargs=kwargs, ori_loss_weight=ori,
                      kd_loss_weight=weight, **pair)
    write_run(root, "dkd-other-beta", kd="dkd", top1=[70, 71], kd_loss_kwargs={"beta": 3.0},
              config=f"{distill}/dkd_cifar.yaml", **pair)
    markdown = write_report(root, tmp_path / "report")
    assert methods.TABLE in markdown and "| Published | Source |" in markdown
    with open(tmp_path / "report" / "report.csv", newline="") as handle:
        records = {(r["group"], r["method"]): r for r in csv.DictReader(handle)}
    dkd_ls = records[(methods.TABLE, "dkd_ls")]
    assert (float(dkd_ls["paper"]), float(dkd_ls["best_mean"]), dkd_ls["n_finished"]) == (77.01, 75.5, "2")
    assert "logit-standardization-KD" in dkd_ls["published_in"]
    assert float(records[(methods.TABLE, "dkd")]["diff_best"]) == pytest.approx(75.5 - 76.32)
    assert records[(methods.TABLE, "dist_ls")]["status"] == "not run"
    assert float(records[(methods.TABLE, "kd_pub")]["paper"]) == 73.33
    # KD and DIST are also the paper table's columns; KD+LS is not the paper's KD
    assert float(records[("cifar100", "kd")]["best_mean"]) == 75.5 and records[("cifar100", "kd")]["n_finished"] == "2"
    own = [key for key in records if key[0] == "own"]
    assert own == [("own", "dkd")]  # beta 3 is no column's setting
