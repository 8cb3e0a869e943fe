"""The run configuration: parsed once into frozen option groups; derived values computed where the
options are defined; recorded (args.yaml, checkpoints) as the same flat ``option: value`` mapping."""
import dataclasses

import pytest

from classification.config import build_parser, load_config, parse_args
from classification.options import DEFAULT_DECAY_RATE
from tests.conftest import ROOT

DIST_B2 = str(ROOT / "configs/strategies/distill/dist_b2.yaml")


def test_the_configuration_is_frozen():
    config = load_config(["--model", "cifar_resnet8"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.optim.lr = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.optim = None


def test_derived_values_are_computed_once_where_the_options_are():
    config = load_config(["--model", "cifar_resnet8", "--dataset", "cifar100", "--emulate-gpus", "8"])
    assert config.run.experiment == "cifar_resnet8-baseline-cifar100"
    assert config.data.data_path == "data/cifar" and config.data.size == 32
    assert config.optim.decay_rate == DEFAULT_DECAY_RATE
    assert config.optim.grad_accum_steps is None and config.for_processes(2).optim.grad_accum_steps == 4
    assert load_config(["--model", "m"]).optim.grad_accum_steps == 1  # neither option given


def test_the_recorded_options_are_the_parsed_ones_flat_in_the_parsers_order():
    argv = ["-c", DIST_B2, "--model", "tv_resnet18", "--opt", "adamw", "--opt-betas", "0.9", "0.99",
            "--kd-loss-kwargs", "tau=2"]
    recorded = load_config(argv).for_processes(1).as_dict()
    parsed = vars(parse_args(argv))
    assert list(recorded) == list(parsed) == list(dict.fromkeys(a.dest for a in build_parser()._actions
                                                                if a.dest != "help"))
    changed = {k for k in parsed if parsed[k] != recorded[k]}
    assert changed == {"experiment", "data_path", "grad_accum_steps"}  # the derived ones, filled in
    assert recorded["opt_betas"] == [0.9, 0.99] and recorded["kd_loss_kwargs"] == {"tau": 2}
