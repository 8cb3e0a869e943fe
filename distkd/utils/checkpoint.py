"""Checkpoints: atomic writes, ``weights_only`` loading, strict loads that say what differs."""
from __future__ import annotations

import io
import os
import pickle
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distkd.errors import UserError

STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")


def atomic_write(data: bytes | memoryview, path: str | os.PathLike) -> None:
    """Write ``data`` to a temp file in the same folder, fsync, then rename over ``path``.

    A crash (even SIGKILL) during the write leaves any previous file at ``path`` intact.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_write`: a crash leaves any previous file at ``path`` intact."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getbuffer(), path)


EXPECTED = "expected a checkpoint written by torch.save (a state_dict, or a dict holding one)"


def describe_file(path: Path) -> str:
    """What a file that is not a PyTorch checkpoint looks like, from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive without a PyTorch checkpoint inside (unpack it first?)"
    if head[:1] == b"\x80":
        return "a plain Python pickle, not written by torch.save"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "a text file"
        except UnicodeDecodeError:
            pass
    return "binary data of an unknown format"


def check_checkpoint_file(path: str | os.PathLike, what: str = "checkpoint") -> Path:
    """Fail early, with what the file is, unless ``path`` looks like a file of ``torch.save`` (a zip
    archive, or a legacy pickle). Reads the first bytes only."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} '{path}' is a folder: pass the checkpoint file in it (e.g. {path / 'last.pth'})")
    if not path.is_file():
        raise UserError(f"{what} not found: expected a file at '{path}'")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return path
    kind = describe_file(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        kind += " (a YAML config? configs go to -c CONFIG)"
    raise UserError(f"{what} '{path}' is not a PyTorch checkpoint: it is {kind}; {EXPECTED}")


def safe_load(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` with one-line errors for missing, foreign or unsafe files.

    The errors say what the file is and what was expected; they never pass on torch's advice to
    load with ``weights_only=False`` (wrong for a foreign file, dangerous for a hostile one).
    """
    path = check_checkpoint_file(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip/pickle readers raise many kinds on foreign files
        found = re.search(r"GLOBAL (\S+)", str(err)) if isinstance(err, pickle.UnpicklingError) else None
    if found:
        raise UserError(
            f"{what} '{path}' holds pickled Python objects ({found.group(1)}) and was refused: only tensors "
            "and plain containers are loaded; re-save it as a plain state_dict where it was made"
        )
    raise UserError(f"{what} '{path}' is not a PyTorch checkpoint: it is {describe_file(path)}; {EXPECTED}")


def extract_state_dict(obj: Any, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A raw state_dict, or the one under ``state_dict`` / ``model``; strips a DDP ``module.`` prefix."""
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{what} holds no state_dict (looked for a raw one and under {STATE_DICT_KEYS})")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def _preview(keys: list[str], limit: int = 5) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], what: str = "checkpoint") -> None:
    """Load with every key and shape matched; otherwise one error listing what differs."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_preview(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {_preview(shapes, 3)}")
    if problems:
        raise UserError(
            f"{what} does not match the model {type(model).__name__} ({'; '.join(problems)}); "
            "is it a checkpoint of this architecture and number of classes?"
        )
    model.load_state_dict(state, strict=True)


def load_weights(model: nn.Module, path: str | os.PathLike, what: str = "checkpoint") -> None:
    """Safe-load ``path`` and strictly load its state_dict into ``model``."""
    state = extract_state_dict(safe_load(path, what), f"{what} '{path}'")
    load_state_dict_strict(model, state, f"{what} '{path}'")
