"""The model factory turns user mistakes into one-line ``UserError`` messages that say the fix."""
from __future__ import annotations

import pytest
import torch

from classification.models import build_model
from distkd.errors import UserError


def test_unknown_name_suggests_close_names():
    with pytest.raises(UserError, match="Did you mean: .*cifar_resnet8x4"):
        build_model("cifar_resnet8x3", num_classes=100)


def test_unknown_torchvision_name_suggests_close_names():
    with pytest.raises(UserError, match="tv_resnet18"):
        build_model("tv_resnet81", num_classes=10)


def test_pretrained_torchvision_without_cache_points_to_teacher_ckpt(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))  # what torch.hub.set_dir sets
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    with pytest.raises(UserError, match="--teacher-ckpt") as err:
        build_model("tv_resnet18", num_classes=1000, pretrained=True, offline=True)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_pretrained_registered_model_points_to_teacher_ckpt():
    with pytest.raises(UserError, match="--teacher-ckpt"):
        build_model("cifar_wrn_40_2", num_classes=100, pretrained=True)


def test_torchvision_weights_load_from_the_local_cache_only(tmp_path, monkeypatch):
    import torch
    import torchvision

    from classification.models import build_model

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    reference = torchvision.models.resnet18(num_classes=1000)
    (tmp_path / "checkpoints").mkdir()
    filename = torchvision.models.ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[-1]
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / filename)
    model = build_model("tv_resnet18", 1000, pretrained=True, offline=True)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reference.state_dict().items())
