"""The paper's released CIFAR-100 teachers: download, verify, unpack where the commands expect them.

    python tools/get_teachers.py cifar100                      # the paper's release (hunto/DIST_KD v0.0.2)
    python tools/get_teachers.py cifar100 --source mdistiller  # the same benchmark's teachers, mdistiller

The paper's repository publishes the four CIFAR-100 teachers of its table as one release asset
(``hunto/DIST_KD`` release ``v0.0.2``, ``cifar_ckpts.zip``); mdistiller publishes the same
benchmark's teachers (``--source mdistiller``). No checksum is published, so the archive and every
unpacked file are checked trust-on-first-use: their SHA-256 is recorded in
``checkpoints/cifar100/sha256.json`` at the first download, and later downloads and every training
run that reads them (``--teacher-ckpt``) must match it. Every teacher is checked to load into its
model; ``DISTKD_MIRROR=URL`` fetches from a mirror.
"""
from __future__ import annotations

import argparse
import os
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from distkd.errors import UserError
from distkd.utils.checkpoint import load_weights
from distkd_cli.args import ArgumentParser
from distkd_cli.download import check_or_record, download

DEFAULT_ROOT = Path("checkpoints")


@dataclass(frozen=True)
class TeacherSource:
    url: str
    layout: str  # how the archive names the teachers, for messages


SOURCES = {
    "dist_kd": TeacherSource("https://github.com/hunto/DIST_KD/releases/download/v0.0.2/cifar_ckpts.zip",
                             "the paper's release"),
    "mdistiller": TeacherSource("https://github.com/megvii-research/mdistiller/releases/download/checkpoints/"
                                "cifar_teachers.tar", "<name>_vanilla/ckpt_epoch_240.pth"),
}
# distkd model name -> the name the CRD / RepDistiller benchmark (and its checkpoints) use
CIFAR100_TEACHERS = {
    "cifar_wrn_40_2": "wrn_40_2",
    "cifar_resnet56": "resnet56",
    "cifar_resnet32x4": "resnet32x4",
    "cifar_ResNet50": "ResNet50",
}
_WEIGHT_SUFFIXES = (".pth", ".pt", ".pth.tar", ".ckpt")


def teacher_path(model: str, root: str | os.PathLike = DEFAULT_ROOT) -> Path:
    return Path(root) / "cifar100" / f"{model}.pth"


def _members(archive: Path) -> list[str]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return [n for n in zf.namelist() if not n.endswith("/")]
    with tarfile.open(archive) as tf:
        return [m.name for m in tf.getmembers() if m.isfile()]


def _read_member(archive: Path, name: str, out) -> None:
    """Stream one archive member into ``out`` (nothing is extracted by path: no traversal)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf, zf.open(name) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        return
    with tarfile.open(archive) as tf:
        src = tf.extractfile(name)
        while chunk := src.read(1 << 20):
            out.write(chunk)


def find_member(members: list[str], bench_name: str) -> str | None:
    """The archive member holding ``bench_name``'s weights: a weight file whose folder or file name
    is the benchmark's name (``resnet32x4_vanilla/ckpt_epoch_240.pth``, ``resnet32x4.pth``, ...)."""
    key = bench_name.lower()
    found = []
    for name in members:
        path = PurePosixPath(name)
        if not name.lower().endswith(_WEIGHT_SUFFIXES) or path.name.startswith("."):
            continue
        stem = path.name.lower().split(".")[0]
        parts = [p.lower() for p in path.parts[:-1]]
        if stem in (key, f"{key}_vanilla", f"{key}_best") or any(p in (key, f"{key}_vanilla") for p in parts):
            found.append(name)
    # several files for one model (e.g. last and best): prefer 'best', then the 240th epoch
    found.sort(key=lambda n: (0 if "best" in n.lower() else 1 if "240" in n else 2, n))
    return found[0] if found else None


def get_cifar100_teachers(root: str | os.PathLike = DEFAULT_ROOT, source: str = "dist_kd", offline: bool = False,
                          models: list[str] | None = None) -> dict[str, Path]:
    """Download (once) and unpack the CIFAR-100 teachers; returns ``{model: checkpoint path}``."""
    from classification.models import build_model

    if source not in SOURCES:
        raise UserError(f"unknown teacher source '{source}': choose from {', '.join(SOURCES)}")
    wanted = models or list(CIFAR100_TEACHERS)
    unknown = [m for m in wanted if m not in CIFAR100_TEACHERS]
    if unknown:
        raise UserError(f"no released CIFAR-100 teacher for {', '.join(unknown)}: choose from "
                        f"{', '.join(CIFAR100_TEACHERS)}")
    folder = Path(root) / "cifar100"
    out = {m: teacher_path(m, root) for m in wanted}
    if all(p.is_file() for p in out.values()):
        for path in out.values():
            check_or_record(path)
        return out
    url = SOURCES[source].url
    archive = download(url, folder / url.rsplit("/", 1)[-1], offline=offline)
    check_or_record(archive)
    members = _members(archive)
    for model, path in out.items():
        if path.is_file():
            check_or_record(path)
            continue
        member = find_member(members, CIFAR100_TEACHERS[model])
        if member is None:
            raise UserError(f"'{archive}' holds no checkpoint for {model} ({CIFAR100_TEACHERS[model]}); its files: "
                            f"{', '.join(members[:12])}; pass that teacher's file with --teacher-ckpt PATH")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                _read_member(archive, member, f)
            # the weights must load strictly into our model of that name before they are kept
            load_weights(build_model(model, 100), tmp, f"{member} of '{archive}'")
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        check_or_record(path)
        print(f"{model}: {path} (from {member})")
    return out


def missing_teacher_hint(path: str | os.PathLike) -> str | None:
    """For a missing ``checkpoints/cifar100/<model>.pth``: the command that fetches it."""
    path = Path(path)
    if path.parent.name == "cifar100" and path.stem in CIFAR100_TEACHERS and not path.exists():
        return (f"teacher checkpoint '{path}' not found: fetch the paper's CIFAR-100 teachers with "
                f"`python tools/get_teachers.py cifar100 --root {path.parent.parent}`, or train one "
                "(README: CIFAR-100)")
    return None


def main(argv: list[str] | None = None) -> None:
    """``tools/get_teachers.py``: fetch the teachers, print the trainer options that use them."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=["cifar100"], help="which teachers")
    p.add_argument("--root", default=str(DEFAULT_ROOT), help="checkpoint folder (teachers go to ROOT/cifar100/)")
    p.add_argument("--source", default="dist_kd", choices=sorted(SOURCES))
    p.add_argument("--models", nargs="*", default=None, choices=list(CIFAR100_TEACHERS), help="default: all four")
    p.add_argument("--offline", action="store_true", help="never download (the archive must already be there)")
    args = p.parse_args(argv)
    paths = get_cifar100_teachers(args.root, args.source, args.offline, args.models)
    for model, path in paths.items():
        print(f"--teacher-model {model} --teacher-ckpt {path}")
