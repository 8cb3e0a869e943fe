"""The paper's CIFAR-100 teachers: fetched from a loopback server, unpacked, recorded, verified."""
import json
import zipfile

import pytest
import torch

from classification.models import build_model
from classification.teachers import find_member, get_cifar100_teachers, missing_teacher_hint
from distkd.errors import UserError
from distkd_cli.download import MIRROR_ENV
from tests.loopback import online, refused_url, serve


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    online(monkeypatch)


def write_release(folder, models=("wrn_40_2", "resnet56"), seed=0):
    """A ``cifar_ckpts.zip`` as the benchmark lays out teachers (weights under ``model``)."""
    torch.manual_seed(seed)
    names = {"wrn_40_2": "cifar_wrn_40_2", "resnet56": "cifar_resnet56"}
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(folder / "cifar_ckpts.zip", "w") as zf:
        for bench in models:
            with zf.open(f"cifar_ckpts/{bench}_vanilla/ckpt_epoch_240.pth", "w") as f:
                torch.save({"model": build_model(names[bench], 100).state_dict(), "epoch": 240}, f)
        zf.writestr("cifar_ckpts/README.txt", "teachers")


def test_fetch_unpack_record_and_reuse(tmp_path, monkeypatch):
    write_release(tmp_path / "srv")
    with serve(tmp_path / "srv") as base:
        monkeypatch.setenv(MIRROR_ENV, base)
        paths = get_cifar100_teachers(tmp_path / "ckpt", models=["cifar_wrn_40_2", "cifar_resnet56"])
    assert paths["cifar_wrn_40_2"] == tmp_path / "ckpt" / "cifar100" / "cifar_wrn_40_2.pth"
    record = json.loads((tmp_path / "ckpt" / "cifar100" / "sha256.json").read_text())
    assert set(record) == {"cifar_ckpts.zip", "cifar_wrn_40_2.pth", "cifar_resnet56.pth"}
    assert not [p for p in (tmp_path / "ckpt" / "cifar100").iterdir() if p.name.startswith(".")]
    # second call: no server needed, files verified against the record
    monkeypatch.setenv(MIRROR_ENV, refused_url())
    assert get_cifar100_teachers(tmp_path / "ckpt", models=["cifar_wrn_40_2"])["cifar_wrn_40_2"].is_file()
    # a tampered teacher is refused by the trainer's check and by the next fetch
    paths["cifar_resnet56"].write_bytes(b"tampered")
    with pytest.raises(UserError, match="recorded"):
        get_cifar100_teachers(tmp_path / "ckpt", models=["cifar_resnet56"])


def test_changed_release_is_refused_and_nothing_kept(tmp_path, monkeypatch):
    write_release(tmp_path / "srv", seed=0)
    with serve(tmp_path / "srv") as base:
        monkeypatch.setenv(MIRROR_ENV, base)
        get_cifar100_teachers(tmp_path / "ckpt", models=["cifar_wrn_40_2"])
    folder = tmp_path / "ckpt" / "cifar100"
    (folder / "cifar_ckpts.zip").unlink()
    (folder / "cifar_wrn_40_2.pth").unlink()
    write_release(tmp_path / "srv", seed=1)  # the published archive changed
    with serve(tmp_path / "srv") as base:
        monkeypatch.setenv(MIRROR_ENV, base)
        with pytest.raises(UserError, match="recorded at the first download"):
            get_cifar100_teachers(tmp_path / "ckpt", models=["cifar_wrn_40_2"])
    assert not (folder / "cifar_wrn_40_2.pth").exists()


def test_connection_refused_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, refused_url())
    with pytest.raises(UserError, match="fetch https://github.com/hunto/DIST_KD/releases/download/v0.0.2/"
                                        "cifar_ckpts.zip by hand"):
        get_cifar100_teachers(tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()  # nothing left behind, not even an empty folder


def test_archive_without_a_teacher_lists_its_files(tmp_path, monkeypatch):
    write_release(tmp_path / "srv", models=("wrn_40_2",))
    with serve(tmp_path / "srv") as base:
        monkeypatch.setenv(MIRROR_ENV, base)
        with pytest.raises(UserError, match="no checkpoint for cifar_resnet32x4 .*ckpt_epoch_240"):
            get_cifar100_teachers(tmp_path / "ckpt", models=["cifar_resnet32x4"])


def test_find_member_layouts():
    members = ["x/resnet8x4_vanilla/ckpt_epoch_240.pth", "x/resnet32x4_vanilla/ckpt_epoch_240.pth",
               "y/ResNet50.pth", "z/resnet56/last.pth", "z/resnet56/best.pth"]
    assert find_member(members, "resnet32x4") == "x/resnet32x4_vanilla/ckpt_epoch_240.pth"
    assert find_member(members, "ResNet50") == "y/ResNet50.pth"
    assert find_member(members, "resnet56") == "z/resnet56/best.pth"
    assert find_member(members, "wrn_40_2") is None


def test_trainer_names_the_fetch_command_for_a_missing_teacher(tmp_path):
    hint = missing_teacher_hint(tmp_path / "checkpoints" / "cifar100" / "cifar_resnet32x4.pth")
    assert "python tools/get_teachers.py cifar100" in hint
    assert missing_teacher_hint(tmp_path / "elsewhere.pth") is None
