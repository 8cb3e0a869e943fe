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


def _cache(tmp_path, monkeypatch, weights) -> torch.nn.Module:
    """``weights``' file in a local torch hub cache (random values), returned as the reference model."""
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    reference = torchvision.models.resnet18(num_classes=1000)
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / weights.url.rsplit("/", 1)[-1])
    return reference


def test_torchvision_weight_versions_by_name(tmp_path, monkeypatch):
    """``tv_NAME`` loads the paper's IMAGENET1K_V1; ``tv_NAME.VERSION`` the version it names."""
    import torchvision

    from classification.models.factory import tv_weights

    assert tv_weights("tv_resnet50") == torchvision.models.ResNet50_Weights.IMAGENET1K_V1  # not DEFAULT (V2)
    assert tv_weights("tv_resnet50.IMAGENET1K_V2") == torchvision.models.ResNet50_Weights.IMAGENET1K_V2
    assert tv_weights("tv_resnet50.DEFAULT") == torchvision.models.ResNet50_Weights.IMAGENET1K_V2
    with pytest.raises(UserError, match=r"unknown weight version 'IMAGENET1K_V3' of tv_resnet50 \(did you mean: "
                                        r"IMAGENET1K_V2\?\); choose from IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"):
        build_model("tv_resnet50.IMAGENET1K_V3", 1000)
    reference = _cache(tmp_path, monkeypatch, torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    model = build_model("tv_resnet18.IMAGENET1K_V1", 1000, pretrained=True, offline=True)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reference.state_dict().items())


def test_student_pretrained_offline_says_drop_pretrained_not_teacher_ckpt(tmp_path, monkeypatch):
    from classification.models.finetune import build_pretrained_model

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(UserError, match=r"drop --pretrained \(or start from a weight file: --initial-checkpoint") as e:
        build_pretrained_model("tv_resnet18", 10, offline=True)
    assert "--teacher-ckpt" not in str(e.value)
