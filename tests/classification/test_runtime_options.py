"""--amp, --channels-last, --compile: they really change the computation; CUDA variants skip on CPU."""
import pytest
import torch
from torch import nn

from classification.builders import amp_dtype
from classification.config import load_config
from classification.engine import StepConfig, train_one_epoch
from classification.models import build_model
from classification.scheduler import LRSchedule
from classification.train import main
from distkd.distiller import Distiller
from distkd.losses import build_kd_loss
from distkd.utils.logging import setup_logger
from tests.conftest import ROOT

CONFIG = str(ROOT / "configs" / "digits.yaml")


def distiller(channels_last: bool = False) -> Distiller:
    d = Distiller(build_model("cifar_resnet8", 10), nn.CrossEntropyLoss(), build_model("cifar_resnet14", 10),
                  build_kd_loss("dist"))
    return d.to(memory_format=torch.channels_last) if channels_last else d


def record_dtypes(d: Distiller) -> dict[str, torch.dtype]:
    seen = {}
    d.student.fc.register_forward_hook(lambda m, i, o: seen.__setitem__("student", o.dtype))
    d.teacher.model.fc.register_forward_hook(lambda m, i, o: seen.__setitem__("teacher", o.dtype))
    return seen


def one_step(d: Distiller, cfg: StepConfig) -> dict[str, float]:
    data = [(torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,)))]
    opt = torch.optim.SGD(d.trainable_modules().parameters(), lr=0.01)
    return train_one_epoch(d, data, opt, LRSchedule(0.01, 1), 0, cfg, setup_logger("test"))


def test_amp_autocasts_student_and_teacher_alike_on_cpu():
    d = distiller()
    seen = record_dtypes(d)
    stats = one_step(d, StepConfig(torch.device("cpu"), amp_dtype=torch.bfloat16))
    assert seen == {"student": torch.bfloat16, "teacher": torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in d.student.parameters())  # weights stay fp32
    assert torch.isfinite(torch.tensor(stats["loss"]))


def test_amp_dtype_choice():
    args = load_config(["--amp"]).runtime
    assert amp_dtype(args, torch.device("cpu")) == torch.bfloat16
    assert amp_dtype(load_config(["--amp", "--amp-dtype", "float16"]).runtime, torch.device("cpu")) == torch.float16
    assert amp_dtype(load_config([]).runtime, torch.device("cpu")) is None


def test_channels_last_reaches_teacher_and_inputs():
    d = distiller(channels_last=True)
    assert d.teacher.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert d.student.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    seen = {}
    d.teacher.model.conv1.register_forward_pre_hook(
        lambda m, i: seen.__setitem__("cl", i[0].is_contiguous(memory_format=torch.channels_last)))
    one_step(d, StepConfig(torch.device("cpu"), channels_last=True))
    assert seen["cl"]


def test_trainer_runs_with_amp_and_channels_last(tmp_path):
    stats = main(["-c", CONFIG, "--model", "cifar_resnet8", "--device", "cpu", "--amp", "--channels-last",
                  "--max-iters-per-epoch", "2", "--image-size", "16", "-b", "8", "--epochs", "1",
                  "--output", str(tmp_path)])
    assert 0 <= stats["top1"] <= 100


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("extra", [["--amp"], ["--amp", "--amp-dtype", "float16"], ["--channels-last"],
                                   ["--amp", "--channels-last", "--compile"]])
def test_trainer_on_cuda(tmp_path, extra):
    stats = main(["-c", CONFIG, "--model", "cifar_resnet8", "--device", "cuda", "--max-iters-per-epoch", "3",
                  "-b", "32", "--epochs", "1", "--output", str(tmp_path), "--kd", "dist", "--teacher-model",
                  "cifar_resnet14", "--teacher-no-pretrained", *extra])
    assert 0 <= stats["top1"] <= 100


@pytest.mark.cuda
@cuda
def test_fp16_uses_a_grad_scaler_on_cuda():
    d = distiller().cuda()
    scaler = torch.amp.GradScaler("cuda", init_scale=1024.0, growth_interval=1)
    cfg = StepConfig(torch.device("cuda"), amp_dtype=torch.float16, scaler=scaler)
    data = [(torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,)))]
    opt = torch.optim.SGD(d.trainable_modules().parameters(), lr=0.01)
    before = [p.detach().clone() for p in d.student.parameters()]
    train_one_epoch(d, data, opt, LRSchedule(0.01, 1), 0, cfg, setup_logger("test"))
    # the step went through the scaler: finite gradients, so it stepped and grew the scale once
    assert scaler.get_scale() == 2048.0
    assert any(not torch.equal(a, b) for a, b in zip(before, d.student.parameters()))
