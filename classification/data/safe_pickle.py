"""Read the official CIFAR python pickles as data only.

``pickle.load`` runs whatever a file asks for (a ``__reduce__`` payload is arbitrary code). The
CIFAR batches need only dicts, lists, strings, numbers and numpy arrays, so this unpickler builds
those and refuses every other global with one line naming it (the standard library's documented
``Unpickler.find_class`` restriction; nothing of the kind exists in torchvision or numpy).
"""
from __future__ import annotations

import codecs
import io
import pickle
from typing import Any

import numpy as np

_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array rebuilder, wherever numpy keeps it
# (module, name) pairs a CIFAR pickle (written by Python 2 or 3, numpy 1 or 2) may reference.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): np.frombuffer(b"\0", np.uint8).__reduce_ex__(5)[0],
    ("numpy._core.numeric", "_frombuffer"): np.frombuffer(b"\0", np.uint8).__reduce_ex__(5)[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # protocol-2 pickles of bytes
}


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asked for a global outside the CIFAR format."""


class DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"it asks for '{module}.{name}', which a CIFAR pickle never holds") from None


def load_data_pickle(file: io.BufferedIOBase, encoding: str = "latin1") -> Any:
    """``pickle.load`` restricted to the objects of the CIFAR format."""
    return DataOnlyUnpickler(file, encoding=encoding).load()
