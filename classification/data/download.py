"""``--download`` for CIFAR-10/100: torchvision's archive address and MD5, fetched with the verified
downloader (temp file, checksum, atomic rename) and unpacked into place only when complete.

torchvision's own ``CIFAR100(download=True)`` writes straight to the final file and leaves a partial
or corrupt archive behind on failure; we reuse its address and checksum, not its writer.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import extract_archive

from distkd.errors import UserError
from distkd_cli.download import download

# dataset -> (archive URL, archive MD5, folder the archive unpacks to); from torchvision's classes
CIFAR_ARCHIVES = {
    "cifar100": (CIFAR100.url, CIFAR100.tgz_md5, CIFAR100.base_folder),
    "cifar10": (CIFAR10.url, CIFAR10.tgz_md5, CIFAR10.base_folder),
}


def download_cifar(root: str | os.PathLike, name: str, offline: bool = False) -> Path:
    """Make ``<root>/<cifar-100-python | cifar-10-batches-py>`` exist; returns that folder."""
    url, md5, folder_name = CIFAR_ARCHIVES[name]
    root = Path(root)
    folder = root / folder_name
    if folder.is_dir():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    archive = download(url, root / url.rsplit("/", 1)[-1], md5=md5, offline=offline)
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=root) as tmp:
        try:
            extract_archive(str(archive), tmp)
        except Exception as err:  # tarfile / gzip errors: a damaged archive
            raise UserError(f"could not unpack '{archive}' ({err}); delete it and run with --download again") from None
        if not (Path(tmp) / folder_name).is_dir():
            raise UserError(f"'{archive}' does not hold '{folder_name}/'; delete it and run with --download again")
        os.replace(Path(tmp) / folder_name, folder)
    return folder
