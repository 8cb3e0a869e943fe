"""tools/reproduce.py: the dry-run output of every table is parsed and checked against the paper
rows, the model names the trainer accepts and the config files on disk."""
import shlex
import sys
from pathlib import Path

import pytest

from distkd.errors import UserError
from distkd_cli.recipes import RECIPES
from reproduce import cli as reproduce_cli
from reproduce.dense_jobs import SEG_SCRIPT
from reproduce.paper import load_paper_rows
from reproduce.sweep import plan

ROOT = Path(__file__).resolve().parents[2]
# CIFAR family names of the trainer (the zoo may not be registered in this tree yet).
CIFAR_MODELS = {
    "cifar_resnet8", "cifar_resnet14", "cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56",
    "cifar_resnet110", "cifar_resnet8x4", "cifar_resnet32x4", "cifar_wrn_16_1", "cifar_wrn_16_2",
    "cifar_wrn_40_1", "cifar_wrn_40_2", "cifar_vgg8", "cifar_vgg11", "cifar_vgg13", "cifar_vgg16", "cifar_vgg19",
    "cifar_mobile_half", "cifar_ShuffleV1", "cifar_ShuffleV2", "cifar_ResNet50", "mobilenet_v1",
}


def dry_run(monkeypatch, capsys, *argv: str) -> list[list[str]]:
    """Run the tool as a user would; return its commands, each split into arguments."""
    monkeypatch.setattr(sys, "argv", ["reproduce.py", *argv])
    reproduce_cli.main()
    out = capsys.readouterr().out
    return [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def trainer_argv(argv: list[str]) -> list[str]:
    """The options ``tools/train.py`` receives from a ``python tools/train.py`` or a
    ``sh tools/dist_train.sh GPUS CONFIG MODEL ...`` command."""
    if argv[:2] == ["sh", "tools/dist_train.sh"]:
        return ["-c", argv[3], "--model", argv[4], *argv[5:]]
    assert argv[:2] == ["python", "tools/train.py"], argv
    return argv[2:]


def _classification_fields(argv: list[str]) -> dict:
    """model, config, kd, teacher of a classification command."""
    options = trainer_argv(argv)
    return {"model": _option(options, "--model"), "config": _option(options, "-c"), "kd": _option(argv, "--kd"),
            "teacher": _option(argv, "--teacher-model"), "argv": argv}


def model_exists(name: str) -> bool:
    if name.startswith("tv_"):
        import torchvision

        return name[3:] in torchvision.models.list_models(module=torchvision.models)
    if name.startswith("timm_"):
        import timm

        return timm.is_model(name[5:])
    from classification.models import model_names

    return name in CIFAR_MODELS or name in model_names()


CLASSIFICATION_TABLES = ("cifar100", "imagenet_baseline", "imagenet_stronger_teachers", "imagenet_strong_strategy")


@pytest.mark.parametrize("table", CLASSIFICATION_TABLES)
def test_every_classification_row_has_valid_commands(table, monkeypatch, capsys):
    commands = [_classification_fields(argv) for argv in dry_run(monkeypatch, capsys, table, "--seeds", "1")]
    rows = [row for row in load_paper_rows() if row.table == table]
    recipe = RECIPES[rows[0].recipe]
    for row in rows:
        baseline = [c for c in commands if c["model"] == row.student_model and c["kd"] is None]
        assert [c["config"] for c in baseline] == [recipe.baseline], row
        for column, (config, kd_name, _) in (("kd", recipe.kd), ("dist", recipe.dist)):
            found = [c for c in commands if (c["model"], c["teacher"], c["kd"]) ==
                     (row.student_model, row.teacher_model, kd_name)]
            assert len(found) == 1 and found[0]["config"] == config, (row, column)
            assert _option(found[0]["argv"], "--dataset") == row.dataset
            for option, value in zip(row.overrides[::2], row.overrides[1::2]):
                assert _option(found[0]["argv"], option) == value
        if row.config_path:  # the row's own config is the DIST command's
            assert recipe.dist[0] == row.config_path
    for command in commands:
        assert model_exists(command["model"]), command["model"]
        assert command["teacher"] is None or model_exists(command["teacher"]), command["teacher"]
        assert (ROOT / command["config"]).is_file(), f"config {command['config']} does not exist in the tree"


@pytest.mark.parametrize("table", [*CLASSIFICATION_TABLES, "digits"])
def test_the_trainer_accepts_every_classification_command(table, monkeypatch, capsys):
    """Each command parses with the trainer's own parser (config YAML included) into the intended run."""
    if not (ROOT / "classification" / "config.py").is_file():
        pytest.skip("the classification trainer is not in this tree yet")
    from classification.config import parse_args

    commands = dry_run(monkeypatch, capsys, table, "--seeds", "1")
    monkeypatch.chdir(ROOT)
    for argv in commands:
        args = parse_args(trainer_argv(argv))
        assert (args.model, args.kd, args.teacher_model) == (_option(trainer_argv(argv), "--model"),
                                                             _option(argv, "--kd"), _option(argv, "--teacher-model"))
        assert (args.experiment, args.seed, args.output) == (_option(argv, "--experiment"), 0, "experiments")
        assert args.dataset == ("digits" if table == "digits" else table.split("_")[0])


def test_cifar_teachers_are_trained_first_and_students_use_their_checkpoint(monkeypatch, capsys):
    commands = dry_run(monkeypatch, capsys, "cifar100", "--seeds", "2", "--output", "runs")
    names = [_option(argv, "--experiment") for argv in commands]
    teachers = [name for name in names if name.endswith("-teacher-s0")]
    assert sorted(teachers) == ["cifar100-r32x4-teacher-s0", "cifar100-r50-teacher-s0",
                                "cifar100-r56-teacher-s0", "cifar100-wrn40-2-teacher-s0"]
    assert names[: len(teachers)] == teachers  # teachers come first, each once
    assert len(names) == len(set(names)) == 4 + 2 * 6 * 3
    dist = commands[names.index("cifar100-r8x4_r32x4-dist-s1")]
    assert _option(dist, "--teacher-ckpt") == "runs/cifar100-r32x4-teacher-s0/best.pth"
    assert _option(dist, "--seed") == "1" and _option(dist, "--kd") == "dist_t4"


def test_imagenet_teachers_are_pretrained_and_shared_baselines_run_once(monkeypatch, capsys):
    commands = dry_run(monkeypatch, capsys, "imagenet_stronger_teachers", "--seeds", "3")
    names = [_option(argv, "--experiment") for argv in commands]
    assert names.count("imagenet-r18-baseline-s2") == 1  # shared by three rows
    assert len(names) == 3 * (2 + 6 * 2)
    assert all("--teacher-pretrained" in argv for argv in commands if "--kd" in argv)
    assert all(argv[:3] == ["sh", "tools/dist_train.sh", "8"] for argv in commands)


def test_digits_sweep_with_extra_options_only_and_gpus(monkeypatch, capsys):
    commands = dry_run(monkeypatch, capsys, "digits", "--extra", "--epochs 2 -b 16", "--gpus", "0")
    assert len(commands) == 1 + 3 * 3
    assert all(argv[-4:] == ["--epochs", "2", "-b", "16"] for argv in commands)
    assert all(_option(argv, "-c") == "configs/digits.yaml" for argv in commands)
    kds = {_option(argv, "--kd") for argv in commands}
    assert kds == {None, "kdt4", "dist_t4"}
    only = dry_run(monkeypatch, capsys, "digits", "--only", "dist", "--seeds", "2")
    assert [_option(argv, "--experiment") for argv in only] == ["digits-r8_r20-dist-s0", "digits-r8_r20-dist-s1"]


def test_dry_run_is_the_default_and_creates_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    commands = dry_run(monkeypatch, capsys, "digits", "--output", "out")
    assert commands and not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_bad_arguments_are_clear_errors():
    with pytest.raises(UserError, match="--seeds must be at least 1"):
        plan("digits", seeds=0)
    with pytest.raises(UserError, match="unknown table"):
        plan("imagenet")


def _dense_commands(monkeypatch, capsys, table):
    return dry_run(monkeypatch, capsys, table, "--seeds", "1")


def test_cityscapes_rows_map_to_commands(monkeypatch, capsys):
    commands = _dense_commands(monkeypatch, capsys, "cityscapes")
    for row in load_paper_rows():
        if row.table != "cityscapes":
            continue
        arch, backbone = {"deeplabv3_resnet18": ("deeplabv3", "resnet18_v1s"),
                          "pspnet_resnet18": ("psp", "resnet18_v1s")}[row.student_model]
        mine = [argv for argv in commands if (_option(argv, "--student-model"), _option(argv, "--student-backbone"))
                == (arch, backbone)]
        assert len(mine) == 2 and sum("--teacher-model" in argv for argv in mine) == 1, row
        dist = next(argv for argv in mine if "--teacher-model" in argv)
        assert (_option(dist, "--teacher-model"), _option(dist, "--teacher-backbone")) == ("deeplabv3", "resnet101_v1s")
        assert (_option(dist, "--weight-decay"), _option(dist, "--val-interval")) == ("5e-4", "400")
        base = next(argv for argv in mine if "--teacher-model" not in argv)
        assert (_option(base, "--weight-decay"), _option(base, "--val-interval"), _option(base, "--min-lr")) == \
            ("1e-4", "800", "0")
        assert "--no-amp" in dist and _option(dist, "--student-pretrained-base") == "ckpts/resnet18-imagenet.pth"
        assert _option(dist, "--teacher-ckpt") == "experiments/cityscapes-dlv3r101-teacher-s0/best.pth"
    teacher = commands[0]
    assert (_option(teacher, "--student-backbone"), _option(teacher, "--output"), _option(teacher, "--experiment")) \
        == ("resnet101_v1s", "experiments", "cityscapes-dlv3r101-teacher-s0")
    if not (ROOT / "segmentation").is_dir():
        pytest.skip("segmentation/ is not in this tree yet: script existence not checked")
    for argv in commands:
        script = next(arg for arg in argv if arg.endswith(".py"))
        assert (ROOT / script).is_file(), script
    from segmentation.config import parse_args

    for argv in commands:  # the segmentation trainer's parser accepts every command
        args = parse_args(argv[argv.index(SEG_SCRIPT) + 1:])
        assert args.experiment == _option(argv, "--experiment") and args.seed == 0


def test_coco_rows_map_to_commands(monkeypatch, capsys):
    commands = _dense_commands(monkeypatch, capsys, "coco")
    assert len(commands) == 2 * 3
    configs = [argv[2] for argv in commands]
    assert len(set(configs)) == 6 and all(config.startswith("configs/detection/") for config in configs)
    if not (ROOT / "configs" / "detection").is_dir():
        pytest.skip("configs/detection/ is not in this tree yet: config existence not checked")
    for config in configs:
        assert (ROOT / config).is_file(), config
    assert (ROOT / commands[0][1]).is_file()


def plan_output(monkeypatch, capsys, *argv: str) -> str:
    monkeypatch.setattr(sys, "argv", ["reproduce.py", *argv])
    reproduce_cli.main()
    return capsys.readouterr().out


@pytest.mark.parametrize("gpus", ["1", "2", "4"])
def test_imagenet_on_fewer_gpus_emulates_the_papers_eight(gpus, monkeypatch, capsys):
    """--gpus G < 8: every command emulates the paper's 8 GPUs; each row says its per-GPU batch."""
    out = plan_output(monkeypatch, capsys, "imagenet_baseline", "--seeds", "1", "--gpus", gpus)
    commands = [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]
    assert commands and all(_option(argv, "--emulate-gpus") == "8" for argv in commands)
    launch = ["python", "tools/train.py"] if gpus == "1" else ["sh", "tools/dist_train.sh", gpus]
    assert all(argv[: len(launch)] == launch for argv in commands)
    notes = [line for line in out.splitlines() if line.startswith("#   per GPU")]
    assert len(notes) == 2 and all(f"per GPU 32 images: {gpus} GPU(s) x {8 // int(gpus)} emulated GPUs "
                                   "(--emulate-gpus 8) = the paper's 8 x 32 per step" in n for n in notes), notes
    from classification.config import parse_args

    monkeypatch.chdir(ROOT)
    assert all(parse_args(trainer_argv(argv)).emulate_gpus == 8 for argv in commands)


def test_the_papers_gpu_count_emulates_nothing(monkeypatch, capsys):
    for argv in [*dry_run(monkeypatch, capsys, "imagenet_baseline", "--seeds", "1"),
                 *dry_run(monkeypatch, capsys, "cifar100", "--seeds", "1"),
                 *dry_run(monkeypatch, capsys, "cityscapes", "--seeds", "1")]:
        assert "--emulate-gpus" not in argv
    out = plan_output(monkeypatch, capsys, "imagenet_strong_strategy", "--seeds", "1")
    assert "#   per GPU 96 images: 8 GPU(s) x 96 per step (the paper's)" in out


def test_dense_tables_on_fewer_gpus(monkeypatch, capsys):
    out = plan_output(monkeypatch, capsys, "cityscapes", "--seeds", "1", "--gpus", "2")
    commands = [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]
    assert all(argv[:3] == ["sh", "tools/torchrun.sh", "2"] and _option(argv, "--emulate-gpus") == "8"
               for argv in commands)
    assert "per GPU 2 crops: 2 GPU(s) x 4 emulated GPUs (--emulate-gpus 8)" in out
    from segmentation.config import parse_args

    assert all(parse_args(argv[argv.index(SEG_SCRIPT) + 1:]).emulate_gpus == 8 for argv in commands)
    out = plan_output(monkeypatch, capsys, "coco", "--seeds", "1", "--gpus", "4")
    commands = [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]
    assert all(argv[:4] == ["sh", "tools/dist_train_mmdet.sh", argv[2], "4"] for argv in commands)
    assert "per GPU 2 images: 4 GPU(s) x 2 x 2 accumulated iterations (accumulative_counts" in out


@pytest.mark.parametrize("table", ["imagenet_baseline", "cityscapes", "coco"])
def test_a_gpu_count_that_does_not_divide_the_papers_is_refused(table):
    with pytest.raises(UserError, match=rf"^--gpus 3 does not divide the paper's 8 GPUs of {table}: use 1, 2, 4, 8"):
        plan(table, gpus=3)
