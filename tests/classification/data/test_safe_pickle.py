"""CIFAR pickles are read as data only: the official format loads, anything else is refused unrun."""
import io
import pickle

import numpy as np
import pytest

from classification.data.datasets import CIFARPickle
from classification.data.safe_pickle import RefusedPickle, load_data_pickle
from distkd.errors import UserError
from tests.conftest import write_cifar

MARKER = []


class Payload:
    """What a hostile file would carry: code that runs on ``pickle.load``."""

    def __reduce__(self):
        return (MARKER.append, ("payload ran",))


@pytest.mark.parametrize("protocol", [2, 5])
def test_official_format_loads_under_both_protocols(protocol):
    batch = {b"data": np.arange(12, dtype=np.uint8).reshape(2, 6), b"fine_labels": [3, 7], b"batch_label": "x"}
    loaded = load_data_pickle(io.BytesIO(pickle.dumps(batch, protocol=protocol)))
    assert np.array_equal(loaded[b"data"], batch[b"data"]) and loaded[b"fine_labels"] == [3, 7]


def test_reduce_payload_is_refused_and_never_runs(tmp_path):
    with pytest.raises(RefusedPickle, match="builtins"):
        load_data_pickle(io.BytesIO(pickle.dumps({"data": Payload()})))
    assert MARKER == []
    root = write_cifar(tmp_path, "cifar100")
    with open(root / "cifar-100-python" / "train", "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "fine_labels": [0], "x": Payload()}, f)
    with pytest.raises(UserError, match="refused") as err:
        CIFARPickle(root, "cifar100", "train")
    assert "\n" not in str(err.value) and MARKER == []


def test_a_pickle_that_is_not_a_dict_is_one_clear_error(tmp_path):
    root = write_cifar(tmp_path, "cifar10")
    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(UserError, match="expected a dict"):
        CIFARPickle(root, "cifar10", "val")
