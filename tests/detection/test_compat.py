"""The torch-2.14 shims of detection/compat.py: each must still be needed and must still work.

"Still needed" runs a fresh interpreter without the shims and expects the upstream failure; when
an upstream release fixes it, that test fails and says which shim to delete.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
pytest.importorskip("mmrazor")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

from tests.conftest import ROOT  # noqa: E402


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def _runner_checkpoint(tmp_path) -> str:
    """A checkpoint written by mmengine's own Runner (meta with numpy values, message_hub buffers)."""
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode="tensor"):
            out = self.linear(inputs).squeeze(1)  # default_collate batches inputs (B, 2), labels (B,)
            return {"loss": (out - labels).pow(2).mean()} if mode == "loss" else out

    data = [dict(inputs=torch.randn(2), labels=torch.randn(())) for _ in range(4)]
    runner = Runner(
        model=Toy(), work_dir=str(tmp_path), train_dataloader=dict(
            dataset=data, sampler=dict(type="DefaultSampler", shuffle=False), batch_size=2,
            collate_fn=dict(type="default_collate")),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)), train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)), randomness=dict(seed=0),
        default_scope="mmengine")
    runner.train()
    return str(tmp_path / "epoch_1.pth")


def test_each_shim_is_still_needed(tmp_path):
    """Without the shims, in a fresh interpreter, both upstream problems are still there."""
    path = _runner_checkpoint(tmp_path)
    result = run_python(f"""
        import json
        out = {{}}
        try:
            import mmrazor.models
            out["mmrazor"] = "imports"
        except Exception as err:
            out["mmrazor"] = repr(err)
        from mmengine.runner.checkpoint import _load_checkpoint
        try:
            _load_checkpoint({path!r}, map_location="cpu")
            out["checkpoint"] = "loads"
        except Exception as err:
            out["checkpoint"] = repr(err)
        print(json.dumps(out))
    """)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mmrazor"] != "imports", "mmrazor imports without the shim: delete _shim_mmrazor_quantization"
    # mmrazor swallows the ImportError and fails later through its placeholder for "torch>=1.13"
    assert any(name in out["mmrazor"] for name in ("reverse", "_set_", "utils", "torch>=1.13")), out["mmrazor"]
    assert out["checkpoint"] != "loads", "checkpoints load without the shim: delete _shim_weights_only_checkpoints"
    assert "Weights only load failed" in out["checkpoint"], out["checkpoint"]


def test_the_shims_work(tmp_path):
    """With the shims: mmrazor (and its quantization configs) import, mmengine checkpoints load."""
    path = _runner_checkpoint(tmp_path)
    result = run_python(f"""
        from detection import compat
        assert compat.mmrazor_needs_quantization_shim()
        compat.apply()
        import mmrazor.models
        from mmrazor.models import ConfigurableDistiller, SingleTeacherDistill
        from mmrazor.structures.quantization.backend_config import get_native_backend_config
        from torch.ao.quantization.backend_config import BackendPatternConfig
        from torch.ao.quantization.fuser_method_mappings import _reverse2, reverse2
        assert reverse2 is _reverse2
        cfg = BackendPatternConfig("x")
        assert cfg._set_overwrite_output_fake_quantize(None)._set_overwrite_output_observer(None) is cfg
        assert cfg._set_input_output_observed(False) is cfg
        assert get_native_backend_config().name == "native"

        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint({path!r}, map_location="cpu")
        assert set(ckpt["state_dict"]) == {{"linear.weight", "linear.bias"}}
        buffer = ckpt["message_hub"]["log_scalars"]["train/loss"]
        assert buffer.mean() == buffer.mean() and ckpt["meta"]["epoch"] == 1
        print("ok")
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_weights_only_shim_still_refuses_other_globals():
    import torch

    from detection import compat

    compat.apply()

    class Payload:
        def __reduce__(self):
            return (getattr, (subprocess.Popen, "__init__"))

    buffer = io.BytesIO()
    torch.save({"x": Payload()}, buffer)
    buffer.seek(0)
    with pytest.raises(Exception, match="refused|Unsupported global"):
        torch.load(buffer)
