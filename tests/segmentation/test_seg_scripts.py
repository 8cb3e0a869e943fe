"""The launch scripts call torchrun with options the trainer / tester accept (torchrun faked), and the
paper's rows run the paper's settings, each passed explicitly (not left to parser defaults)."""
import os
import subprocess
from pathlib import Path

import pytest

from segmentation import config as seg_config
from segmentation import test as seg_test
from segmentation.engine import loop as seg_loop
from segmentation.options import SegConfig

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "segmentation" / "train_scripts").rglob("*.sh"))
KD = {"weight_decay": 5e-4, "val_interval": 400, "amp": False, "min_lr": 1e-4}  # the paper's train_kd.py
BASELINE = {"weight_decay": 1e-4, "val_interval": 800, "amp": False, "min_lr": 0.0}  # its train_baseline.py
COMMON = {"input_format": "paper", "batch_size": 16, "max_iterations": 40000, "lr": 0.02, "momentum": 0.9,
          "power": 0.9, "aux_weight": 0.4, "crop_size": [512, 1024]}  # fmt: skip
# script -> (student model, student backbone, ImageNet file, settings)
PAPER_ROWS = {
    "train_baseline/deeplabv3_res101.sh": ("deeplabv3", "resnet101_v1s", "resnet101-imagenet.pth", BASELINE),
    "train_baseline/deeplabv3_res18.sh": ("deeplabv3", "resnet18_v1s", "resnet18-imagenet.pth", BASELINE),
    "train_baseline/pspnet_res18.sh": ("psp", "resnet18_v1s", "resnet18-imagenet.pth", BASELINE),
    "train_kd/deeplabv3_res18.sh": ("deeplabv3", "resnet18_v1s", "resnet18-imagenet.pth", KD),
    "train_kd/pspnet_res18.sh": ("psp", "resnet18_v1s", "resnet18-imagenet.pth", KD),
}
# options whose value must be written in the script itself
EXPLICIT = ("--student-backbone", "--input-format", "--weight-decay", "--val-interval", "--min-lr", "--no-amp",
            "--batch-size", "--max-iterations", "--lr", "--momentum", "--power", "--aux-weight", "--crop-size")


def run_script(script: Path, tmp_path: Path, **env_extra: str) -> list[str]:
    """The command the script launches: tools/torchrun.sh runs $PYTHON -m distkd_cli.launch
    [torchrun options] TOOL [options], with a stand-in $PYTHON that records its arguments."""
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    fake.chmod(0o755)
    out = tmp_path / "args.txt"
    env = dict(os.environ, PYTHON=str(fake), ARGS_OUT=str(out), GPUS="4", **env_extra)
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=60)
    args = out.read_text().splitlines()
    assert args[:2] == ["-m", "distkd_cli.launch"]
    assert args[args.index("--nproc_per_node") + 1] == "4"
    return args[args.index("--master_port") + 2:]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script_options_parse(script, tmp_path):
    tool, *options = run_script(script, tmp_path, CKPT="x.pth", FLIP="1", SCALES="0.75 1.0")
    parser = seg_config.get_args_parser() if tool.endswith("train_seg.py") else seg_test.get_args_parser()
    parsed = parser.parse_args(options)
    if tool.endswith("test_seg.py") and script.name == "test_seg.sh":
        assert parsed.flip and parsed.scales == [0.75, 1.0]


def test_every_paper_row_has_a_script():
    assert {str(s.relative_to(ROOT / "segmentation" / "train_scripts")) for s in SCRIPTS} >= PAPER_ROWS.keys()


@pytest.mark.parametrize("name", sorted(PAPER_ROWS))
def test_paper_scripts_run_the_paper_settings(name, tmp_path):
    model, backbone, imagenet_file, settings = PAPER_ROWS[name]
    tool, *options = run_script(ROOT / "segmentation" / "train_scripts" / name, tmp_path, CKPTS="ck")
    assert tool == "tools/train_seg.py"
    for option in EXPLICIT:
        assert option in options, f"{name} leaves {option} to a parser default"
    args = seg_config.fill_paper_defaults(seg_config.get_args_parser().parse_args(options))
    assert (args.student_model, args.student_backbone) == (model, backbone)
    assert args.student_pretrained_base == f"ck/{imagenet_file}"
    assert {k: getattr(args, k) for k in settings} == settings
    assert {k: getattr(args, k) for k in COMMON} == COMMON
    if name.startswith("train_kd/"):
        assert (args.teacher_model, args.teacher_backbone) == ("deeplabv3", "resnet101_v1s")
        assert args.teacher_ckpt == "ck/deeplabv3_resnet101_citys_best_model.pth"  # the released teacher
        assert args.teacher_input_format == "paper" and (args.kd_loss_weight, args.kd_temperature) == (1.0, 1.0)
    else:
        assert args.teacher_model is None


def test_released_teacher_evaluation_script(tmp_path):
    tool, *options = run_script(ROOT / "segmentation" / "train_scripts" / "eval_released_teacher.sh", tmp_path,
                                CKPTS="ck")  # fmt: skip
    args = seg_test.get_args_parser().parse_args(options)
    assert tool == "tools/test_seg.py" and (args.model, args.backbone) == ("deeplabv3", "resnet101_v1s")
    assert args.checkpoint == "ck/deeplabv3_resnet101_citys_best_model.pth" and args.input_format is None


def test_parser_defaults_are_the_paper_trainers():
    parse = seg_config.get_args_parser().parse_args
    kd = seg_config.fill_paper_defaults(parse(["--teacher-model", "deeplabv3"]))
    base = seg_config.fill_paper_defaults(parse([]))
    assert {k: getattr(kd, k) for k in KD} == KD and {k: getattr(base, k) for k in BASELINE} == BASELINE
    assert kd.input_format == base.input_format == "paper" and kd.teacher_backbone == "resnet101_v1s"
    base, kd = SegConfig.parsed(base).optim, SegConfig.parsed(kd).optim
    assert seg_loop.poly_lr(base, 40000) == 0.0 and seg_loop.poly_lr(kd, 40000) == pytest.approx(1e-4)
