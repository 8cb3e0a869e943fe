"""Verified downloads: temp file, checksum, atomic rename; a failure leaves nothing behind.

torchvision and timm weights download through their own mechanisms (see
``classification/models/factory.py``); this module fetches what they do not cover: the paper's
released CIFAR teachers and training logs, and the CIFAR archives (with torchvision's MD5s).

- ``DISTKD_MIRROR=http://host:port/path`` fetches every file from ``$DISTKD_MIRROR/<file name>``
  instead of its public address (a local mirror; the tests serve files from 127.0.0.1 this way).
- Offline: ``--offline``, ``DISTKD_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: nothing is downloaded, a
  missing file is an error naming the address to fetch it from by hand and where to put it.
- Files without a published checksum are checked trust-on-first-use: the SHA-256 of the first
  download is recorded in ``sha256.json`` next to the files, and every later download or use of
  them must match it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from distkd.errors import UserError

MIRROR_ENV = "DISTKD_MIRROR"
RECORD_NAME = "sha256.json"
_CHUNK = 1 << 20


def is_offline(flag: bool = False) -> bool:
    """``--offline`` or ``DISTKD_OFFLINE`` / ``HF_HUB_OFFLINE`` set to a true value."""
    truthy = {"1", "true", "yes", "on"}
    return flag or any(os.environ.get(k, "").strip().lower() in truthy for k in ("DISTKD_OFFLINE", "HF_HUB_OFFLINE"))


def resolve_url(url: str) -> str:
    """The address actually fetched: ``url``, or ``$DISTKD_MIRROR/<file name>`` when the mirror is set."""
    mirror = os.environ.get(MIRROR_ENV)
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _hand_fetch_hint(url: str, dest: Path) -> str:
    return f"fetch {url} by hand and place it at '{dest}'"


def download(url: str, dest: str | os.PathLike, *, md5: str | None = None, sha256: str | None = None,
             offline: bool = False, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (a file path) and return it; an existing ``dest`` is kept.

    The bytes go to a temp file in ``dest``'s folder, are checked against ``md5`` / ``sha256``
    when given, and only then renamed to ``dest``; any failure removes the temp file and raises a
    one-line :class:`UserError` saying what to do.
    """
    dest = Path(dest)
    expected = {"md5": md5, "sha256": sha256}
    if dest.is_file():
        for name, digest in expected.items():
            if digest and file_digest(dest, name) != digest.lower():
                raise UserError(f"'{dest}' does not have the expected {name} {digest}: delete it and try again")
        return dest
    if is_offline(offline):
        raise UserError(f"'{dest}' is missing and downloads are off (--offline / HF_HUB_OFFLINE / DISTKD_OFFLINE); "
                        f"{_hand_fetch_hint(url, dest)}, or run online")
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]  # deepest first
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = resolve_url(url)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    kept = False
    try:
        hashes = _fetch(source, os.fdopen(fd, "wb"), tmp, dest.name, progress, timeout, _hand_fetch_hint(url, dest))
        for name, digest in expected.items():
            if digest and hashes[name].hexdigest() != digest.lower():
                raise UserError(f"checksum mismatch for {source}: {name} {hashes[name].hexdigest()}, expected "
                                f"{digest}; the file was removed: try again, or {_hand_fetch_hint(url, dest)}")
        os.replace(tmp, dest)
        kept = True
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise UserError(f"could not download {source} ({_reason(err)}); nothing was kept: check the connection and "
                        f"try again, or {_hand_fetch_hint(url, dest)}") from None
    finally:
        tmp.unlink(missing_ok=True)
        if not kept:  # a failed download leaves nothing behind: not even the folders it made
            _remove_empty(created)
    return dest


def _fetch(source: str, out, tmp: Path, name: str, progress: bool, timeout: float, hint: str) -> dict:
    """Stream ``source`` into the open file ``out`` (the temp file ``tmp``), synced to disk; returns
    its MD5 and SHA-256. A transfer shorter than the announced Content-Length is an error."""
    hashes = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    with out, urllib.request.urlopen(source, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = _progress_bar(total, name, progress)
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            for h in hashes.values():
                h.update(chunk)
            bar.update(len(chunk))
        bar.close()
        out.flush()
        os.fsync(out.fileno())
    if total is not None and tmp.stat().st_size != total:
        raise UserError(f"download of {source} stopped after {tmp.stat().st_size} of {total} bytes; "
                        f"try again, or {hint}")
    return hashes


def _reason(err: BaseException) -> object:
    """Why a transfer failed, in a few words (an HTTP status, the OS's message)."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    return getattr(err, "reason", None) or getattr(err, "strerror", None) or err


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created (deepest first), stopping at one not empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def _progress_bar(total: int | None, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not enabled, file=sys.stderr)


def read_record(folder: str | os.PathLike) -> dict[str, str]:
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise UserError(f"'{path}' is not a SHA-256 record ({err}); delete it to record the files again") from None


def write_record(folder: str | os.PathLike, record: dict[str, str]) -> None:
    """Write ``sha256.json`` atomically."""
    path = Path(folder) / RECORD_NAME
    fd, tmp = tempfile.mkstemp(prefix=f".{RECORD_NAME}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(sorted(record.items())), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def check_recorded(path: str | os.PathLike) -> None:
    """If ``sha256.json`` beside ``path`` records it, its SHA-256 must match (trust-on-first-use)."""
    path = Path(path)
    expected = read_record(path.parent).get(path.name)
    if expected and file_digest(path) != expected:
        raise UserError(f"'{path}' does not match the SHA-256 recorded when it was first downloaded "
                        f"({path.parent / RECORD_NAME}); the file changed: delete it and download it again")


def check_or_record(path: str | os.PathLike, key: str | None = None) -> str:
    """Trust-on-first-use: record ``path``'s SHA-256 under ``key`` (default: its name) in the folder's
    ``sha256.json``, or, if one is recorded, require the same digest. Returns the digest."""
    path = Path(path)
    key = key or path.name
    record = read_record(path.parent)
    digest = file_digest(path)
    if key in record and record[key] != digest:
        raise UserError(f"'{path}' has SHA-256 {digest}, but {record[key]} was recorded at the first download "
                        f"({path.parent / RECORD_NAME}); the published file changed or was corrupted: check the "
                        "source, then delete the record to accept the new file")
    if key not in record:
        record[key] = digest
        write_record(path.parent, record)
    return digest
