"""``--download`` for CIFAR: torchvision's archive served from 127.0.0.1, MD5 checked, unpacked."""
import hashlib
import tarfile

import pytest

from classification.data import build_dataset
from classification.data import download as cifar_download
from distkd.errors import UserError
from distkd_cli.download import MIRROR_ENV
from tests.conftest import write_cifar
from tests.loopback import online, refused_url, serve


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    online(monkeypatch)


@pytest.fixture
def served_cifar100(tmp_path):
    write_cifar(tmp_path / "raw", "cifar100")
    (tmp_path / "srv").mkdir()
    archive = tmp_path / "srv" / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "raw" / "cifar-100-python", arcname="cifar-100-python")
    return tmp_path / "srv", hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_then_load(tmp_path, served_cifar100, monkeypatch):
    folder, md5 = served_cifar100
    url, _, base = cifar_download.CIFAR_ARCHIVES["cifar100"]
    monkeypatch.setitem(cifar_download.CIFAR_ARCHIVES, "cifar100", (url, md5, base))
    with serve(folder) as mirror:
        monkeypatch.setenv(MIRROR_ENV, mirror)
        train = build_dataset("cifar100", str(tmp_path / "data"), "train", download=True)
    assert len(train) == 12 and train.num_classes == 100
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cifar-100-python", "cifar-100-python.tar.gz"]
    monkeypatch.setenv(MIRROR_ENV, refused_url())  # already there: nothing fetched
    assert len(build_dataset("cifar100", str(tmp_path / "data"), "val", download=True)) == 6


def test_md5_mismatch_leaves_nothing(tmp_path, served_cifar100, monkeypatch):
    folder, _ = served_cifar100  # torchvision's real MD5 does not match the test archive
    with serve(folder) as mirror:
        monkeypatch.setenv(MIRROR_ENV, mirror)
        with pytest.raises(UserError, match="checksum mismatch.*cifar-100-python.tar.gz by hand"):
            build_dataset("cifar100", str(tmp_path / "data"), "train", download=True)
    assert list((tmp_path / "data").iterdir()) == []


def test_refused_and_offline(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, refused_url())
    with pytest.raises(UserError, match="could not download"):
        build_dataset("cifar10", str(tmp_path / "data"), "train", download=True)
    with pytest.raises(UserError, match="downloads are off"):
        build_dataset("cifar10", str(tmp_path / "data"), "train", download=True, offline=True)
    with pytest.raises(UserError, match="add --download"):
        build_dataset("cifar10", str(tmp_path / "data"), "train")
