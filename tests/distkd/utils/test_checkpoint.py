import collections
import os
import pickle

import pytest
import torch
from torch import nn

from distkd.errors import UserError
from distkd.utils.checkpoint import (
    atomic_save,
    extract_state_dict,
    load_state_dict_strict,
    load_weights,
    safe_load,
)


class Payload:  # pickled code: refused by weights_only loading
    def __reduce__(self):
        return (os.getcwd, ())


def test_atomic_save_keeps_the_previous_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    atomic_save({"v": torch.tensor(1)}, path)

    def broken_replace(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_save({"v": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert safe_load(path)["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # no temp file left behind


def test_safe_load_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "hook": Payload()}, path)
    with pytest.raises(UserError, match=r"pickled Python objects \(\S+\) and was refused") as err:
        safe_load(path)
    assert "weights_only=False" not in str(err.value)


@pytest.mark.parametrize("content, kind", [
    (b"", "an empty file"), (b"not a checkpoint at all", "a text file"),
    (pickle.dumps({"w": [1.0]}), "a plain Python pickle"), (b"PK\x03\x04junk", "a zip archive"),
    (bytes(range(256)), "binary data"),
])
def test_safe_load_on_non_checkpoints(tmp_path, content, kind):
    path = tmp_path / "x.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match=f"not a PyTorch checkpoint: it is {kind}") as err:
        safe_load(path)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="not found: expected a file at"):
        safe_load(tmp_path / "missing.pth")


def test_extract_state_dict_forms():
    sd = {"w": torch.zeros(1)}
    assert extract_state_dict(sd) == sd
    assert extract_state_dict({"model": sd, "epoch": 3}) == sd
    assert extract_state_dict({"state_dict": {"module.w": torch.zeros(1)}}).keys() == {"w"}
    with pytest.raises(UserError, match="holds no state_dict"):
        extract_state_dict({"epoch": 3})


def test_strict_load_lists_what_differs(tmp_path):
    model = nn.Sequential(collections.OrderedDict(a=nn.Linear(2, 3), b=nn.Linear(3, 4)))
    state = model.state_dict()
    state["b.weight"] = torch.zeros(5, 3)
    state["c.weight"] = torch.zeros(1)
    del state["a.bias"]
    with pytest.raises(UserError) as err:
        load_state_dict_strict(model, state, "teacher checkpoint")
    msg = str(err.value)
    assert "1 missing keys: a.bias" in msg and "1 unexpected keys: c.weight" in msg
    assert "b.weight (5, 3) vs model (4, 3)" in msg and "\n" not in msg
    torch.save({"model": model.state_dict()}, tmp_path / "ok.pth")
    load_weights(model, tmp_path / "ok.pth")
