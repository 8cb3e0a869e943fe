"""Shims that let the OpenMMLab stack (mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmseg 1.2.2,
mmrazor 1.0.0) run on torch 2.14. Call :func:`apply` before importing mmrazor / mmdet / mmseg.

Each shim names the upstream problem; ``tests/detection/test_compat.py`` fails when a shim stops
working, and also when it stops being needed (the upstream problem is gone), so it can be deleted.
"""
from __future__ import annotations

import importlib

import torch

_APPLIED = False

# BackendPatternConfig setters that mmrazor 1.0.0 calls and torch 2.x removed.
_REMOVED_SETTERS = (
    "_set_overwrite_output_fake_quantize",
    "_set_overwrite_output_observer",
    "_set_input_output_observed",
)

# torch names that mmrazor 1.0.0 imports from their pre-2.0 places (used by its quantization code,
# imported by `import mmrazor.models` even when no quantization is used).
_MOVED_FUSER_NAMES = {
    "reverse2": "_reverse2",
    "reverse3": "_reverse3",
    "reverse_sequential_wrapper2": "_sequential_wrapper2",
}


def mmrazor_needs_quantization_shim() -> bool:
    """True when torch lacks the public names mmrazor 1.0.0's quantization configs import."""
    fuser = importlib.import_module("torch.ao.quantization.fuser_method_mappings")
    from torch.ao.quantization.backend_config import BackendPatternConfig

    return not all(hasattr(fuser, name) for name in _MOVED_FUSER_NAMES) or not all(
        hasattr(BackendPatternConfig, name) for name in _REMOVED_SETTERS
    )


def _shim_mmrazor_quantization() -> None:
    """mmrazor 1.0.0 (open-mmlab/mmrazor, `structures/quantization/backend_config/
    common_operator_config_utils.py`) imports ``reverse2``, ``reverse3`` and
    ``reverse_sequential_wrapper2`` from ``torch.ao.quantization.fuser_method_mappings`` (made
    private as ``_reverse2``, ``_reverse3``, ``_sequential_wrapper2`` in torch 2.0), reads
    ``torch.ao.quantization.backend_config.utils`` as an attribute without importing it, and calls
    ``BackendPatternConfig._set_overwrite_output_fake_quantize``, ``_set_overwrite_output_observer``
    and ``_set_input_output_observed`` (removed in torch 2.x). Without this, ``import mmrazor.models``
    fails on torch 2.x."""
    fuser = importlib.import_module("torch.ao.quantization.fuser_method_mappings")
    for public, private in _MOVED_FUSER_NAMES.items():
        if not hasattr(fuser, public) and hasattr(fuser, private):
            setattr(fuser, public, getattr(fuser, private))
    importlib.import_module("torch.ao.quantization.backend_config.utils")
    from torch.ao.quantization.backend_config import BackendPatternConfig

    for name in _REMOVED_SETTERS:
        if not hasattr(BackendPatternConfig, name):
            # The removed setters only stored an override that torch no longer reads: keep the
            # builder chain working and drop the value.
            setattr(BackendPatternConfig, name, lambda self, _value: self)


def mmengine_checkpoint_globals() -> list:
    """Non-tensor types that mmengine 0.10 writes into checkpoints (numpy scalars and arrays in
    ``meta``, ``HistoryBuffer`` objects in ``message_hub``)."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    dtype_classes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [HistoryBuffer, np.ndarray, np.dtype, multiarray.scalar, multiarray._reconstruct, *dtype_classes]


def _history_buffer_getattr(obj: object, name: str):
    """Stands in for ``builtins.getattr`` while unpickling: ``HistoryBuffer.__getstate__`` stores
    its statistics methods, which pickle writes as ``getattr(HistoryBuffer, 'mean')``. Only that
    form is accepted; any other ``getattr`` in a checkpoint is refused."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if obj is HistoryBuffer and name in ("min", "max", "current", "mean", *HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise RuntimeError(f"checkpoint asks for getattr({obj!r}, {name!r}); refused by weights_only loading")


def _shim_weights_only_checkpoints() -> None:
    """mmengine 0.10.7 (`mmengine/runner/checkpoint.py`) calls ``torch.load`` without
    ``weights_only``; since torch 2.6 that means ``weights_only=True``, which refuses the numpy
    and ``HistoryBuffer`` objects mmengine itself stores in ``meta`` / ``message_hub`` (resuming
    and ``load_from`` fail with ``UnpicklingError: Weights only load failed``). We allowlist
    exactly those types instead of turning ``weights_only`` off, so loading stays safe."""
    torch.serialization.add_safe_globals(
        [*mmengine_checkpoint_globals(), (_history_buffer_getattr, "builtins.getattr")]
    )


def apply() -> None:
    """Apply every shim (idempotent). Must run before mmrazor / mmdet / mmseg are imported."""
    global _APPLIED
    if _APPLIED:
        return
    try:
        import mmengine  # noqa: F401
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"{err.msg}: the OpenMMLab stack is not installed; run "
                                  "`sh tools/install_openmmlab.sh` (see detection/README.md)") from err
    _shim_mmrazor_quantization()
    _shim_weights_only_checkpoints()
    _APPLIED = True
