from pathlib import Path

import pytest

from classification.config import parse_args
from distkd.errors import UserError
from tests.conftest import ROOT

CONFIGS = ROOT / "configs"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_sets_defaults_and_command_line_wins(tmp_path):
    cfg = write(tmp_path, "lr: 0.5\nepochs: 7\nkd: dist_t4\nsgd_no_nesterov: false\nweight-decay: 1e-4\n")
    args = parse_args(["-c", cfg, "--lr", "0.01", "--model", "m"])
    assert args.lr == 0.01  # the command line wins
    assert args.epochs == 7 and args.kd == "dist_t4" and args.sgd_no_nesterov is False
    assert args.weight_decay == pytest.approx(1e-4)  # YAML '1e-4' is a string; argparse converts it
    assert parse_args(["-c", cfg, "--sgd-no-nesterov"]).sgd_no_nesterov is True
    assert parse_args(["-c", cfg, "--sgd_no_nesterov"]).sgd_no_nesterov is True  # the original's spelling
    assert parse_args(["-c", cfg, "--kd", "dist"]).kd == "dist"


def test_unknown_yaml_key_is_named_with_a_suggestion(tmp_path):
    cfg = write(tmp_path, "lr: 0.1\nwieght_decay: 0.1\n")
    with pytest.raises(UserError, match="unknown key 'wieght_decay'.*weight_decay"):
        parse_args(["-c", cfg])


def test_yaml_syntax_error_names_the_line(tmp_path):
    cfg = write(tmp_path, "lr: 0.1\nepochs: [1, 2\nkd: dist\n")
    with pytest.raises(UserError, match=r"YAML syntax error .* line \d+"):
        parse_args(["-c", cfg])


def test_yaml_value_outside_choices_is_rejected(tmp_path):
    with pytest.raises(UserError, match="invalid value 'imagenett'"):
        parse_args(["-c", write(tmp_path, "dataset: imagenett\n")])


def test_missing_config_file():
    with pytest.raises(UserError, match="config file not found"):
        parse_args(["-c", "nope.yaml"])


def test_kd_loss_kwargs_are_parsed_as_yaml_scalars():
    args = parse_args(["--kd-loss-kwargs", "beta=2", "gamma=0.5", "tau=4"])
    assert args.kd_loss_kwargs == {"beta": 2, "gamma": 0.5, "tau": 4}
    with pytest.raises(UserError, match="key=value"):
        parse_args(["--kd-loss-kwargs", "beta"])


def test_evaluation_parser_accepts_a_training_config():
    args = parse_args(["-c", str(CONFIGS / "strategies/distill/resnet_dist.yaml"), "--ckpt", "x.pth"], for_test=True)
    assert args.dataset == "imagenet" and args.batch_size == 32 and not hasattr(args, "epochs")


RECIPES = {  # ../shared/reference/recipes.md; the distill files are the original's (tests/.../test_original_configs.py)
    "distill/resnet_dist.yaml": dict(dataset="imagenet", epochs=100, batch_size=32, opt="sgd", sgd_no_nesterov=False,
                                     lr=0.1, weight_decay=1e-4, sched="step", decay_epochs=30, decay_rate=0.1,
                                     warmup_epochs=0, min_lr=1e-5, smoothing=0.0, model_ema=False, kd="dist",
                                     ori_loss_weight=1.0, kd_loss_weight=2.0, seed=42, workers=8),
    "distill/resnet_kdt4.yaml": dict(dataset="imagenet", epochs=100, batch_size=32, sgd_no_nesterov=False, lr=0.1,
                                     kd="kdt4", ori_loss_weight=0.9, kd_loss_weight=1.0, seed=42),
    "distill/dist_b2.yaml": dict(dataset="imagenet", epochs=450, batch_size=96, opt="rmsproptf", opt_eps=1e-3,
                                 momentum=0.9, lr=0.048, weight_decay=1e-5, decay_epochs=2.4, decay_rate=0.97,
                                 decay_by_epoch=False, warmup_epochs=3, warmup_lr=1e-6, min_lr=1e-5,
                                 smoothing=0.1, aa="rand-m9-mstd0.5", reprob=0.2, remode="pixel", drop=0.2,
                                 model_ema=True, model_ema_decay=0.9999, kd="dist", ori_loss_weight=1.0,
                                 kd_loss_weight=2.0, workers=4),
    "distill/dist_cifar.yaml": dict(dataset="cifar100", epochs=240, batch_size=64, opt="sgd", sgd_no_nesterov=True,
                                    opt_no_filter=True, lr=0.05, weight_decay=5e-4, decay_epochs=30,
                                    decay_rate=0.1, warmup_epochs=120, warmup_lr=0.05, min_lr=1e-6,
                                    kd="dist_t4", ori_loss_weight=1.0, kd_loss_weight=2.0, seed=42, workers=4),
    "baseline/cifar.yaml": dict(dataset="cifar100", epochs=240, lr=0.05, kd=None, sgd_no_nesterov=True),
    "baseline/resnet.yaml": dict(dataset="imagenet", epochs=100, lr=0.1, kd=None),
    "baseline/b2.yaml": dict(dataset="imagenet", epochs=450, lr=0.048, kd=None, model_ema=True),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_shipped_configs_hold_the_recipe_values(name):
    args = parse_args(["-c", str(CONFIGS / "strategies" / name)])
    for key, expected in RECIPES[name].items():
        actual = getattr(args, key)
        assert actual == (pytest.approx(expected) if isinstance(expected, float) else expected), key


def test_list_models_prints_names_and_filters(capsys):
    from classification.train import main

    assert main(["--list-models"]) == {}
    names = capsys.readouterr().out.splitlines()
    assert "cifar_resnet8" in names and "tv_resnet18" not in names
    main(["--list-models", "resnet18"])
    filtered = capsys.readouterr().out.splitlines()
    assert "tv_resnet18" in filtered and "timm_resnet18" in filtered and "cifar_resnet8" not in filtered


def test_unknown_model_message_is_short_and_points_to_the_list(capsys):
    import pytest

    from classification.models import check_model_name
    from distkd.errors import UserError

    with pytest.raises(UserError) as err:
        check_model_name("cifar_resnt8")
    message = str(err.value)
    assert "Did you mean: cifar_resnet8" in message and "--list-models" in message and len(message) < 200


def test_step_schedule_without_decay_rate_decays_by_a_tenth(tmp_path):
    from classification.config import fill_defaults

    assert parse_args([]).decay_rate is None  # the original's (missing) default, as parsed
    assert fill_defaults(parse_args(["--model", "cifar_resnet8"])).decay_rate == 0.1  # timm's / torchvision's
    assert fill_defaults(parse_args(["--dr", "0.5"])).decay_rate == 0.5
    for name in ("resnet_dist", "dist_b2", "dist_cifar"):  # the paper's YAML files keep their own value
        args = fill_defaults(parse_args(["-c", str(CONFIGS / "strategies/distill" / f"{name}.yaml")]))
        assert args.decay_rate == {"dist_b2": 0.97}.get(name, 0.1)
