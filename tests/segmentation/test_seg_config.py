"""The segmentation trainer takes the classification trainer's option names, YAML configs, and the
paper's own option names as aliases (the paper's command line parses to the same run)."""
from pathlib import Path

import pytest

from distkd.errors import UserError
from segmentation.config import parse_args

# segmentation/train_scripts/train_kd/deeplabv3_res18.sh of hunto/DIST_KD (after train_kd.py), with the
# deep-stem backbone names of this trainer
PAPER = ["--teacher-model", "deeplabv3", "--student-model", "deeplabv3", "--teacher-backbone", "resnet101_v1s",
         "--student-backbone", "resnet18_v1s", "--data", "data/cityscapes/", "--save-dir",
         "work_dirs/dist_dv3-r101_dv3_r18", "--log-dir", "work_dirs/dist_dv3-r101_dv3_r18", "--gpu-id",
         "0,1,2,3,4,5,6,7", "--teacher-pretrained", "ckpts/deeplabv3_resnet101_citys_best_model.pth",
         "--student-pretrained-base", "ckpts/resnet18-imagenet.pth", "--local_rank=0"]
DOCUMENTED = ["--teacher-model", "deeplabv3", "--student-model", "deeplabv3", "--teacher-backbone", "resnet101_v1s",
              "--student-backbone", "resnet18_v1s", "--data-path", "data/cityscapes/", "--output", "work_dirs",
              "--experiment", "dist_dv3-r101_dv3_r18", "--teacher-ckpt",
              "ckpts/deeplabv3_resnet101_citys_best_model.pth", "--student-pretrained-base",
              "ckpts/resnet18-imagenet.pth"]
IGNORED = {"save_dir", "log_dir", "gpu_id", "local_rank"}


def run_options(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in IGNORED}


def test_the_papers_command_line_is_the_documented_one():
    paper, documented = parse_args(PAPER), parse_args(DOCUMENTED)
    assert run_options(paper) == run_options(documented)
    assert (paper.output, paper.experiment) == ("work_dirs", "dist_dv3-r101_dv3_r18")


@pytest.mark.parametrize("alias, name, value", [
    ("--lambda-kd", "kd_loss_weight", 0.5), ("--log-iter", "log_interval", 3), ("--val-per-iters", "val_interval", 4),
    ("--save-per-iters", "save_interval", 5),
])
def test_paper_aliases(alias, name, value):
    assert getattr(parse_args([alias, str(value)]), name) == value


def test_yaml_config_with_either_name_and_the_command_line_wins(tmp_path):
    cfg = tmp_path / "seg.yaml"
    cfg.write_text("data: from_yaml\nlambda_kd: 2.0\nmax-iterations: 100\nteacher_model: deeplabv3\n")
    args = parse_args(["-c", str(cfg), "--max-iterations", "50"])
    assert (args.data_path, args.kd_loss_weight, args.max_iterations) == ("from_yaml", 2.0, 50)
    assert args.weight_decay == 5e-4  # the paper's KD trainer default, chosen from the YAML's teacher
    cfg.write_text("lambda-kdd: 1\n")
    with pytest.raises(UserError, match="unknown key 'lambda-kdd'.*lambda_kd"):
        parse_args(["-c", str(cfg)])


def test_save_dir_names_the_experiment_folder():
    args = parse_args(["--save-dir", str(Path("runs") / "a")])
    assert (args.output, args.experiment) == ("runs", "a")
