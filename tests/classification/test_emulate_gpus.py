"""Reproducing an N-GPU run on fewer processes (``--emulate-gpus`` / ``--grad-accum-steps``).

The proof, on CPU with gloo: 4 processes x ``-b 8`` against 2 processes with ``--emulate-gpus 4``
and 1 process with ``--emulate-gpus 4``, 2 epochs on digits with DIST from a small trained teacher,
SGD (Nesterov momentum), weight decay and label smoothing; again with mixup / cutmix and
``--model-ema``. Every tensor of the checkpoints (weights, BatchNorm running statistics, EMA) is
equal to 1e-5 relative, every metric to its printed precision.

Why not bitwise: the 4 gradients are summed in another order (gloo's ring against the emulated
run's accumulation), which moves the weights by a rounding error. A ReLU whose input sits within
rounding of 0 turns that into more (in this tiny network: a channel that is constant over the
batch, whose BatchNorm output is its bias, stuck near 0): with dropout added to the mixup variant,
the 2-process run's ``layer2.0.bn1.bias`` differed by 4e-3 after 5 steps, the gradient of that one
micro-batch by 3.5 %. Two processes emulated by one sum two gradients, the same in any order: that
run (dropout, mixup / cutmix, EMA) is bitwise equal. The runs are shared by the assertions
(module-scoped fixtures)."""
from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from classification.accumulation import MicroSteps, fewer_gpus_warning, resolve_accumulation
from classification.train import main
from distkd.errors import UserError
from distkd.utils.sampling import SeededBatchSampler
from tests.conftest import ROOT

CONFIG = str(ROOT / "configs" / "digits.yaml")
COMMON = ["-c", CONFIG, "--device", "cpu", "--image-size", "16", "--model", "cifar_resnet8", "-b", "8",
          "--epochs", "2", "--max-iters-per-epoch", "3", "--smoothing", "0.1", "--lr", "0.01", "--warmup-epochs", "0",
          "--log-interval", "1", "--kd", "dist", "--teacher-model", "cifar_resnet14"]
MIXUP_EMA = ["--mixup", "0.2", "--cutmix", "1.0", "--model-ema", "--model-ema-decay", "0.9"]
FOUR = {"4 processes": (4, []), "2 processes, --emulate-gpus 4": (2, ["--emulate-gpus", "4"]),
        "1 process, --emulate-gpus 4": (1, ["--emulate-gpus", "4"])}
TWO = {"2 processes": (2, []), "1 process, --emulate-gpus 2": (1, ["--emulate-gpus", "2"])}
CASES = {  # name: (options, runs, tolerance)
    "plain": ([], FOUR, 1e-5),
    "mixup_cutmix_ema": (MIXUP_EMA, FOUR, 1e-5),
    "two_gpus_dropout_mixup_cutmix_ema": ([*MIXUP_EMA, "--classifier-dropout", "0.2"], TWO, 0.0),
}
PRINTED = {"lr": 4, "train_loss": 4, "loss_ori": 4, "loss_kd": 4, "val_loss": 4, "val_top1": 2, "val_top5": 2,
           "val_top1_ema": 2, "best_top1": 2}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> str:
    """A small teacher trained for a few steps."""
    out = tmp_path_factory.mktemp("teacher")
    main(["-c", CONFIG, "--device", "cpu", "--image-size", "16", "--model", "cifar_resnet14", "-b", "32", "--epochs",
          "1", "--max-iters-per-epoch", "15", "--output", str(out), "--experiment", "t"])
    return str(out / "t" / "best.pth")


def torchrun(processes: int, argv: list[str]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), DISTKD_DIST_TIMEOUT="120")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
           str(ROOT / "tools" / "train.py"), *argv]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its workers
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]


@pytest.fixture(scope="module", params=list(CASES))
def runs(request, teacher, tmp_path_factory) -> tuple[dict[str, Path], float]:
    """The runs of one case (name -> experiment folder, the first is the reference) and its tolerance."""
    options, runs, tolerance = CASES[request.param]
    out = tmp_path_factory.mktemp(request.param)
    folders = {}
    for index, (name, (processes, extra)) in enumerate(runs.items()):
        argv = [*COMMON, "--teacher-ckpt", teacher, *options, *extra, "--output", str(out), "--experiment", f"r{index}"]
        if processes == 1:
            main(argv)
        else:
            torchrun(processes, argv)
        folders[name] = out / f"r{index}"
    return folders, tolerance


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    if not a.is_floating_point():
        return 0.0 if torch.equal(a, b) else float("inf")
    return ((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item()


@pytest.mark.slow
def test_every_checkpoint_tensor_equals_the_real_multi_process_run(runs):
    """Weights, BatchNorm running statistics (rank 0's) and the EMA: to 1e-5 relative (bitwise for 2 GPUs)."""
    folders, tolerance = runs
    reference, *others = (torch.load(path / "last.pth", weights_only=True) for path in folders.values())
    assert reference["args"]["emulate_gpus"] is None and reference["args"]["grad_accum_steps"] == 1
    for name, ckpt in zip(list(folders)[1:], others):
        for part in ("model", "model_ema"):
            assert (part in ckpt) == (part in reference)
            if part not in ckpt:
                continue
            assert ckpt[part].keys() == reference[part].keys()
            worst = {k: relative_difference(v, ckpt[part][k]) for k, v in reference[part].items()}
            assert max(worst.values()) <= tolerance, (name, part, sorted(worst.items(), key=lambda kv: -kv[1])[:3])
        assert ckpt["args"]["grad_accum_steps"] == ckpt["args"]["emulate_gpus"] // int(name[0])
    assert ("model_ema" in reference) == reference["args"]["model_ema"]


@pytest.mark.slow
def test_metrics_equal_the_real_multi_process_run_to_their_printed_precision(runs):
    folders, _ = runs
    tables = [list(csv.DictReader(open(path / "metrics.csv"))) for path in folders.values()]
    assert len(tables[0]) == 2
    for name, table in zip(list(folders)[1:], tables[1:]):
        for row, ref in zip(table, tables[0], strict=True):
            for column, digits in PRINTED.items():
                if ref.get(column):
                    assert round(float(row[column]), digits) == round(float(ref[column]), digits), (name, column)


@pytest.mark.slow
def test_the_emulated_runs_say_what_they_train_as(runs):
    folders, _ = runs
    name = list(folders)[1]
    processes, gpus = int(name[0]), int(name[-1])
    log = (folders[name] / "log.txt").read_text()
    assert (f"{gpus // processes} micro-batches of 8 per process and step: trains as {gpus} GPUs x 8 images "
            f"({8 * gpus} per optimizer step)") in log


# --- the parts -------------------------------------------------------------------------------------


def test_the_sampler_hands_process_r_the_batches_of_virtual_ranks_r_k_to_r_k_plus_k():
    def batches(rank: int, world: int, accum: int) -> list:
        sampler = SeededBatchSampler(200, 4, rank, world, seed=3, epoch_iterations=5, accum_steps=accum)
        sampler.set_epoch(2, 1)
        return list(sampler)

    real = [batches(r, 4, 1) for r in range(4)]  # 4 processes: 4 steps each
    for world, accum in ((2, 2), (1, 4)):
        for r in range(world):
            emulated = batches(r, world, accum)
            assert len(emulated) == 4 * accum
            for step in range(4):
                for k in range(accum):
                    assert emulated[step * accum + k] == real[r * accum + k][step]


def test_micro_batches_after_the_first_leave_the_running_statistics_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    reference = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    reference.load_state_dict(model.state_dict())
    batches = [torch.randn(2, 3, 6, 6) for _ in range(3)]
    micro = MicroSteps(model, 3)
    for k, batch in enumerate(batches):
        with micro.context(k):
            model(batch)
    reference(batches[0])
    for key, value in reference.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key


def args_for(**kwargs) -> argparse.Namespace:
    base = {"grad_accum_steps": None, "emulate_gpus": None, "teacher_store": None, "config": None, "batch_size": 32}
    return argparse.Namespace(**{**base, **kwargs})


def accumulation(args: argparse.Namespace, world_size: int) -> int:
    return resolve_accumulation(args.grad_accum_steps, args.emulate_gpus, world_size, bool(args.teacher_store))


def gpus_warning(args: argparse.Namespace, world_size: int) -> str | None:
    return fewer_gpus_warning(args.config, args.emulate_gpus, args.grad_accum_steps, args.batch_size, world_size)


def test_accumulation_steps_from_the_options_and_the_process_count():
    assert accumulation(args_for(), 4) == 1
    assert accumulation(args_for(grad_accum_steps=3), 2) == 3
    assert accumulation(args_for(emulate_gpus=8), 2) == 4
    assert accumulation(args_for(emulate_gpus=8, grad_accum_steps=8), 1) == 8
    with pytest.raises(UserError, match=r"^--emulate-gpus 8 needs a number of processes that divides it "
                                        r"\(1, 2, 4, 8\); this run has 3$"):
        accumulation(args_for(emulate_gpus=8), 3)
    with pytest.raises(UserError, match="this run has 16"):
        accumulation(args_for(emulate_gpus=8), 16)


def test_a_paper_config_on_fewer_gpus_warns_naming_the_flag():
    config = str(ROOT / "configs/strategies/distill/resnet_dist.yaml")
    args = args_for(config=config, grad_accum_steps=1)
    line = gpus_warning(args, 2)
    assert "paper's 8-GPU recipe (8 x 32 images per step)" in line and "add --emulate-gpus 8" in line
    assert "\n" not in line
    assert gpus_warning(args, 8) is None
    assert gpus_warning(args_for(config=config, grad_accum_steps=4), 2) is None  # 2 x 4 = 8 GPUs
    assert gpus_warning(args_for(config=config, grad_accum_steps=2, emulate_gpus=4), 2) is None
    assert gpus_warning(args_for(config=CONFIG, grad_accum_steps=1), 1) is None  # not a paper recipe
    cifar = str(ROOT / "configs/strategies/distill/dist_cifar.yaml")
    assert gpus_warning(args_for(config=cifar, grad_accum_steps=1), 1) is None  # the paper's 1 GPU


def test_a_paper_config_on_one_process_prints_the_warning_once(tmp_path, capsys):
    base = ["-c", str(ROOT / "configs/strategies/baseline/resnet.yaml"), "--dataset", "digits", "--device", "cpu",
            "--model", "cifar_resnet8", "--image-size", "16", "-b", "4", "-j", "0", "--epochs", "1",
            "--max-iters-per-epoch", "1", "--output", str(tmp_path)]
    main([*base, "--experiment", "one"])
    printed = capsys.readouterr()
    lines = [line for line in (printed.out + printed.err).splitlines() if "--emulate-gpus" in line]
    assert len(lines) == 1 and "WARNING" in lines[0] and "add --emulate-gpus 8" in lines[0], lines
    main([*base, "--experiment", "emulated", "--emulate-gpus", "8"])
    printed = capsys.readouterr()
    assert "--emulate-gpus" not in printed.out + printed.err


def test_grad_accum_steps_on_one_process_is_emulate_gpus(tmp_path):
    """--grad-accum-steps 4 on 1 process trains exactly as --emulate-gpus 4; K = 1 is another run."""
    base = ["-c", CONFIG, "--device", "cpu", "--image-size", "16", "--model", "cifar_resnet8", "-b", "8", "--epochs",
            "1", "--max-iters-per-epoch", "2", "--output", str(tmp_path), "--mixup", "0.2"]
    for name, extra in (("accum", ["--grad-accum-steps", "4"]), ("emulate", ["--emulate-gpus", "4"]), ("plain", [])):
        main([*base, "--experiment", name, *extra])
    a, b, c = (torch.load(tmp_path / n / "last.pth", weights_only=True)["model"] for n in ("accum", "emulate", "plain"))
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    assert not all(torch.equal(v, c[k]) for k, v in a.items())
    assert "trains as 4 GPUs x 8 images (32 per optimizer step)" in (tmp_path / "accum" / "log.txt").read_text()
