"""Pretrained teachers download through torchvision's / timm's own mechanisms when online; offline
(``offline=True`` or ``HF_HUB_OFFLINE=1``) never opens a socket. Only 127.0.0.1 is contacted."""
from __future__ import annotations

import socket

import pytest
import torch
import torchvision

from classification.models import build_model, factory
from distkd.errors import UserError
from tests.loopback import online, serve


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    online(monkeypatch)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.fixture
def no_socket(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("offline mode opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _loopback_hub_download(monkeypatch, base: str, keep_hash: bool, calls: list) -> None:
    """torch.hub's real download, pointed at the loopback server (the file name kept)."""
    real = torch.hub.download_url_to_file

    def redirected(url, dst, hash_prefix=None, progress=True):
        calls.append({"url": url, "progress": progress})
        real(f"{base}/{url.rsplit('/', 1)[-1]}", dst, hash_prefix if keep_hash else None, progress=False)

    monkeypatch.setattr(torch.hub, "download_url_to_file", redirected)


def test_torchvision_downloads_with_progress_when_not_cached(tmp_path, hub, monkeypatch):
    reference = torchvision.models.resnet18(num_classes=1000)
    filename = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    (tmp_path / "srv").mkdir()
    torch.save(reference.state_dict(), tmp_path / "srv" / filename)
    calls: list = []
    with serve(tmp_path / "srv") as base:
        _loopback_hub_download(monkeypatch, base, keep_hash=False, calls=calls)
        model = build_model("tv_resnet18", 1000, pretrained=True)
    assert calls == [{"url": torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url, "progress": True}]
    assert (hub / "checkpoints" / filename).is_file()  # cached for next time
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reference.state_dict().items())
    build_model("tv_resnet18", 1000, pretrained=True, offline=True)  # now served from the cache


def test_torchvision_hash_mismatch_leaves_nothing(tmp_path, hub, monkeypatch):
    filename = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    (tmp_path / "srv").mkdir()
    torch.save({"not": torch.zeros(1)}, tmp_path / "srv" / filename)  # sha256 does not start with the prefix
    with serve(tmp_path / "srv") as base:
        _loopback_hub_download(monkeypatch, base, keep_hash=True, calls=[])
        with pytest.raises(UserError, match=f"could not download .*place it at '{hub}/checkpoints/{filename}'"):
            build_model("tv_resnet18", 1000, pretrained=True)
    assert not (hub / "checkpoints").exists() or not any((hub / "checkpoints").iterdir())


@pytest.mark.parametrize("how", ["flag", "env"])
def test_torchvision_offline_never_downloads(hub, no_socket, monkeypatch, how):
    def forbidden(*args, **kwargs):
        raise AssertionError("offline mode called a download function")

    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="not in the local cache .*downloads are off"):
        build_model("tv_resnet34", 1000, pretrained=True, offline=how == "flag")


def test_timm_online_uses_timm_pretrained(monkeypatch):
    import timm

    seen = {}

    def fake_create(arch, pretrained=False, **kwargs):
        seen.update(arch=arch, pretrained=pretrained, **kwargs)
        return torch.nn.Linear(1, 1)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(timm, "create_model", fake_create)
    build_model("timm_resnet18", 10, pretrained=True)
    assert seen == {"arch": "resnet18", "pretrained": True, "num_classes": 10}


def test_timm_offline_loads_the_cached_file_without_network(tmp_path, no_socket, monkeypatch):
    import timm

    reference = timm.create_model("resnet18", pretrained=False)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    monkeypatch.setattr(factory, "_timm_cached_file", lambda arch: str(tmp_path / "resnet18.pth"))
    model = build_model("timm_resnet18", 1000, pretrained=True, offline=True)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reference.state_dict().items())


def test_timm_offline_uncached_is_one_clear_line(tmp_path, no_socket, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="not in the local timm/Hugging Face cache") as err:
        build_model("timm_resnet18", 1000, pretrained=True)
    assert "\n" not in str(err.value)
