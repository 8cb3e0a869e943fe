"""Verified downloads against a server on 127.0.0.1: success, checksum mismatch, connection refused."""
import hashlib

import pytest

from distkd.errors import UserError
from distkd_cli import download as dl
from tests.loopback import online, refused_url, serve

URL = "https://example.invalid/releases/weights.bin"  # never contacted: the mirror redirects it


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    online(monkeypatch)


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "srv"
    folder.mkdir()
    payload = bytes(range(256)) * 100
    (folder / "weights.bin").write_bytes(payload)
    return folder, payload


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success_and_checksums(tmp_path, served, monkeypatch):
    folder, payload = served
    dest = tmp_path / "out" / "weights.bin"
    with serve(folder) as base:
        monkeypatch.setenv(dl.MIRROR_ENV, base)
        path = dl.download(URL, dest, sha256=hashlib.sha256(payload).hexdigest(),
                           md5=hashlib.md5(payload).hexdigest(), progress=False)
    assert path.read_bytes() == payload
    assert leftovers(dest.parent) == ["weights.bin"]


def test_checksum_mismatch_leaves_nothing(tmp_path, served, monkeypatch):
    folder, _ = served
    dest = tmp_path / "out" / "weights.bin"
    with serve(folder) as base:
        monkeypatch.setenv(dl.MIRROR_ENV, base)
        with pytest.raises(UserError, match="checksum mismatch.*by hand"):
            dl.download(URL, dest, sha256="0" * 64, progress=False)
    assert leftovers(dest.parent) == []


def test_connection_refused_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(dl.MIRROR_ENV, refused_url())
    dest = tmp_path / "out" / "weights.bin"
    with pytest.raises(UserError, match=r"could not download .*fetch https://example.invalid/releases/weights.bin"):
        dl.download(URL, dest, progress=False)
    assert not dest.parent.exists()  # not even the folder it made


def test_missing_file_on_server(tmp_path, served, monkeypatch):
    folder, _ = served
    with serve(folder) as base:
        monkeypatch.setenv(dl.MIRROR_ENV, base)
        with pytest.raises(UserError, match="HTTP 404"):
            dl.download("https://example.invalid/nothere.bin", tmp_path / "x.bin", progress=False)
    assert leftovers(tmp_path) == ["srv"]


def test_offline_never_opens_a_socket(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("offline mode opened a connection")

    monkeypatch.setattr(dl.urllib.request, "urlopen", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="downloads are off.*by hand"):
        dl.download(URL, tmp_path / "w.bin")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(UserError, match="downloads are off"):
        dl.download(URL, tmp_path / "w.bin", offline=True)


def test_trust_on_first_use_record(tmp_path):
    f = tmp_path / "a.pth"
    f.write_bytes(b"first")
    digest = dl.check_or_record(f)
    assert dl.read_record(tmp_path) == {"a.pth": digest}
    dl.check_recorded(f)  # unchanged: fine
    assert dl.check_or_record(f) == digest
    f.write_bytes(b"changed")
    with pytest.raises(UserError, match="recorded"):
        dl.check_recorded(f)
    with pytest.raises(UserError, match="recorded at the first download"):
        dl.check_or_record(f)
