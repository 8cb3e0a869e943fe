"""A teacher whose weights expect another normalisation than the data's gets the batch converted."""
import logging

import pytest
import timm
import torch

import classification.builders as train_mod
from classification.config import load_config
from classification.data.transforms import CIFAR_MEAN, CIFAR_STD, DIGITS_MEAN, DIGITS_STD, IMAGENET_MEAN, IMAGENET_STD
from distkd.distiller import Distiller
from distkd.losses import build_kd_loss
from distkd.utils.checkpoint import atomic_save

TIMM_MEAN, TIMM_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)  # unlike the CIFAR data's


def args_for(*extra: str):
    return load_config(["--model", "cifar_resnet8", "--kd", "dist", "--dataset", "cifar100", *extra])


def view(values):
    return torch.tensor(values).view(1, 3, 1, 1)


def capture_input(model: torch.nn.Module) -> list:
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    return seen


def test_timm_teacher_receives_its_pretrained_cfg_normalisation(monkeypatch, caplog):
    net = timm.create_model("resnet10t", pretrained=False, num_classes=10,
                            pretrained_cfg_overlay={"mean": TIMM_MEAN, "std": TIMM_STD})
    # stands in for the download of pretrained weights: the model carries timm's pretrained_cfg as a loaded one does
    monkeypatch.setattr(train_mod, "build_model", lambda name, classes, pretrained, offline: net)
    logger = logging.getLogger("teacher_normalization_test")  # not under a logger another test set up
    logger.addHandler(caplog.handler)  # captured whatever propagation other tests configured
    try:
        args = args_for("--teacher-model", "timm_resnet10t")
        teacher = train_mod.build_teacher(args.distill, args.data, 10, logger)
    finally:
        logger.removeHandler(caplog.handler)
    assert "converted on the device" in caplog.text and "0.2" in caplog.text
    seen = capture_input(net)
    student = timm.create_model("resnet10t", num_classes=10)
    distiller = Distiller(student, torch.nn.CrossEntropyLoss(), teacher, build_kd_loss("dist"))
    x = torch.randn(2, 3, 32, 32)
    distiller(x, torch.tensor([1, 2]))
    want = (x * view(CIFAR_STD) + view(CIFAR_MEAN) - view(TIMM_MEAN)) / view(TIMM_STD)
    torch.testing.assert_close(seen[0], want)
    assert not any(p.requires_grad for p in teacher.parameters())


def test_torchvision_weights_expect_imagenet_statistics():
    net = torch.nn.Linear(1, 1)
    assert train_mod.pretrained_normalization("tv_resnet18", net) == (IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("dataset, converted", [("digits", True), ("cifar100", False)])
def test_a_checkpoint_of_this_trainer_records_its_normalisation(tmp_path, dataset, converted):
    net = train_mod.build_model("cifar_resnet8", 10)
    path = tmp_path / "teacher.pth"
    atomic_save({"model": net.state_dict(), "args": {"dataset": dataset, "image_mean": None, "image_std": None}},
                path)
    args = args_for("--teacher-model", "cifar_resnet8", "--teacher-ckpt", str(path))
    teacher = train_mod.build_teacher(args.distill, args.data, 10, logging.getLogger("test.teacher"))
    seen = capture_input(teacher.model)
    x = torch.randn(2, 3, 32, 32)
    teacher(x)
    want = (x * view(CIFAR_STD) + view(CIFAR_MEAN) - view(DIGITS_MEAN)) / view(DIGITS_STD) if converted else x
    torch.testing.assert_close(seen[0], want)


def test_a_bare_state_dict_is_assumed_to_match_the_data():
    assert train_mod.recorded_normalization({"conv.weight": torch.zeros(1)}) is None
