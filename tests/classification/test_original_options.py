"""The original trainer's option vocabulary: names, defaults and effects (dropout, drop path, mixup,
other projects' options, distributed launch options, KD modules)."""
import copy
import os

import pytest
import torch
from torch import nn

from classification.builders import build_student
from classification.config import FOREIGN_OPTIONS, build_parser, load_config, parse_args
from classification.data import build_loaders
from classification.launch_env import set_distributed_env
from classification.models import build_model
from classification.train import ignored_options
from distkd.distiller import Distiller
from distkd.errors import UserError
from distkd.losses import build_kd_loss
from distkd.utils.distributed import DistInfo
from tests.conftest import ROOT

DIST_B2 = str(ROOT / "configs/strategies/distill/dist_b2.yaml")
ORIGINAL_DEFAULTS = {  # lib/utils/args.py of hunto/image_classification_sota
    "dataset": "imagenet", "batch_size": 32, "val_batch_size_multiplier": 1.0, "smoothing": 0.1, "opt": "sgd",
    "opt_eps": 1e-8, "opt_no_filter": False, "momentum": 0.9, "sgd_no_nesterov": False, "weight_decay": 1e-4,
    "clip_grad_norm": False, "clip_grad_max_norm": 5.0, "amp": False, "sched": "step", "decay_epochs": 3,
    "decay_rate": None, "lr": 0.01, "warmup_lr": 1e-4, "min_lr": 1e-5, "epochs": 200, "warmup_epochs": 3,
    "decay_by_epoch": False, "image_mean": None, "image_std": None, "interpolation": "bilinear",
    "color_jitter": 0.0, "cutout_length": 0, "aa": None, "reprob": 0.0, "remode": "const", "drop": 0.0,
    "drop_path_rate": 0.0, "drop_path_strategy": "const", "mixup": 0.0, "cutmix": 0.0, "cutmix_minmax": None,
    "mixup_prob": 1.0, "mixup_switch_prob": 0.5, "mixup_mode": "batch", "model_ema": False,
    "model_ema_decay": 0.9998, "seed": 42, "log_interval": 50, "workers": 4, "slurm": False, "local_rank": 0,
    "dist_port": "12345", "teacher_pretrained": True, "kd_loss_weight": 1.0, "ori_loss_weight": 1.0,
    "teacher_module": "", "student_module": "", **FOREIGN_OPTIONS,
}


def test_every_original_option_exists_with_the_original_default():
    args = parse_args([])
    for name, default in ORIGINAL_DEFAULTS.items():
        assert getattr(args, name) == (pytest.approx(default) if isinstance(default, float) else default), name
    dests = {a.dest for a in build_parser()._actions}
    for name in ("data_path", "model", "resume", "experiment", "kd", "teacher_model", "teacher_ckpt", "kd_loss_kwargs"):
        assert name in dests


def test_underscore_spellings_and_aliases_on_the_command_line():
    args = parse_args(["--color_jitter", "0.4", "--clip_grad_norm", "--clip_grad_max_norm=2", "--dr", "0.5",
                       "--local_rank", "3", "--decay_by_epoch", "--val_batch_size_multiplier", "2"])
    assert (args.color_jitter, args.clip_grad_norm, args.clip_grad_max_norm, args.decay_rate) == (0.4, True, 2.0, 0.5)
    assert args.local_rank == 3 and args.decay_by_epoch and args.val_batch_size_multiplier == 2


def test_other_projects_options_are_accepted_at_defaults_and_refused_otherwise(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dyrep: false\nmodel_config: ''\nauxiliary_weight: 0.4\ndbb: false\n")
    assert parse_args(["-c", str(cfg)]).dyrep is False
    for argv in (["--dyrep"], ["--dbb"], ["--auxiliary"], ["--model-config", "x.yaml"], ["--edgenn_config", "e.py"],
                 ["--dyrep-adjust-interval", "15"]):
        with pytest.raises(UserError, match="accepts it only at its default"):
            parse_args(argv)
    cfg.write_text("dyrep_typo: 1\n")
    with pytest.raises(UserError, match="unknown key 'dyrep_typo'"):
        parse_args(["-c", str(cfg)])


def has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Dropout) for m in model.modules())


def train_mode_outputs_differ(model: nn.Module) -> bool:
    model.train()
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    return not torch.allclose(a, model(x))


def test_dist_b2_drop_gives_tv_resnet18_no_dropout_and_classifier_dropout_does():
    args = load_config(["-c", DIST_B2, "--model", "tv_resnet18"])
    assert args.model.drop == 0.2
    model = build_student(args.model, 1000)
    assert not has_dropout(model) and not train_mode_outputs_differ(model)
    assert any("--drop 0.2 has no effect" in note for note in ignored_options(args))

    args = load_config(["-c", DIST_B2, "--model", "tv_resnet18", "--classifier-dropout", "0.2"])
    model = build_student(args.model, 1000)
    assert has_dropout(model) and train_mode_outputs_differ(model)
    assert model.state_dict().keys() == build_model("tv_resnet18", 1000).state_dict().keys()
    ema = copy.deepcopy(model).eval()  # a copy (EMA) uses its own dropout: deterministic in eval
    model.train()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(ema(x), ema(x))


def test_timm_students_get_drop_path_rate_but_not_drop():
    args = load_config(["-c", DIST_B2, "--model", "timm_resnet18", "--drop-path-rate", "0.1"])
    model = build_student(args.model, 10)
    assert model.drop_rate == 0.0  # 'drop: 0.2' of dist_b2 does not reach timm models
    rates = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) == pytest.approx(0.1)
    model = build_student(load_config(["--model", "timm_resnet18", "--classifier-dropout", "0.3"]).model, 10)
    assert model.drop_rate == pytest.approx(0.3)


def test_val_batch_size_multiplier_and_mixup_family():
    args = load_config(["--dataset", "digits", "-b", "16", "--val-batch-size-multiplier", "2.5", "--workers", "0",
                       "--cutmix-minmax", "0.2", "0.8", "--mixup-prob", "0.7", "--mixup-switch-prob", "0.3",
                       "--mixup-mode", "pair", "--smoothing", "0.0"])
    train, val, _, mixup = build_loaders(args, DistInfo())
    assert val.batch_size == 40 and train.batch_sampler.batch_size == 16  # batches from SeededBatchSampler
    assert mixup is not None  # cutmix_minmax alone turns it on, as the original
    assert (mixup.mix_prob, mixup.switch_prob, mixup.mode, mixup.cutmix_minmax) == (0.7, 0.3, "pair", [0.2, 0.8])


def test_student_and_teacher_module_choose_the_distilled_outputs():
    torch.manual_seed(0)
    student, teacher = build_model("cifar_resnet8", 10), build_model("cifar_resnet14", 10)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    outputs = Distiller(student, nn.CrossEntropyLoss(), teacher, build_kd_loss("dist"))(x, y)
    named = Distiller(student, nn.CrossEntropyLoss(), teacher, build_kd_loss("dist"), student_module="fc",
                      teacher_module="fc")(x, y)
    assert torch.allclose(outputs["loss_kd"], named["loss_kd"])  # 'fc' is the output layer
    with pytest.raises(AttributeError):
        Distiller(student, nn.CrossEntropyLoss(), teacher, build_kd_loss("dist"), student_module="nope")


@pytest.mark.parametrize("dataset, path", [("imagenet", "data/imagenet"), ("cifar100", "data/cifar")])
def test_data_path_defaults_to_the_original_locations(tmp_path, monkeypatch, dataset, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"'{path}' does not exist"):
        build_loaders(load_config(["--dataset", dataset, "--workers", "0"]), DistInfo())


def test_slurm_and_local_rank_fill_the_launch_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(name, "")  # recorded, so that teardown removes what the code under test sets
        monkeypatch.delenv(name)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_LAUNCH_NODE_IPADDR", "10.0.0.1")
    monkeypatch.setenv("PATH", "")  # no scontrol
    set_distributed_env(slurm=True, dist_port="29501", local_rank=0)
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["MASTER_PORT"]) == ("3", "8", "29501")
    assert os.environ["MASTER_ADDR"] == "10.0.0.1"
    monkeypatch.delenv("SLURM_PROCID")
    with pytest.raises(UserError, match="srun"):
        set_distributed_env(slurm=True, dist_port="12345", local_rank=0)
