"""'+mimic' as the paper ran it: a learnable 1x1 conv (256 -> 256) per FPN level on the student side,
trained with the student, kept in the distillation checkpoints and dropped from the exported student
(student_final.pth, tools/test_mmdet.py), which loads into plain mmdet."""
from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
pytest.importorskip("mmdet")
pytest.importorskip("mmrazor")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

from mmengine.hooks import Hook  # noqa: E402

import detection.plugin  # noqa: E402,F401
import detection.test as test_mmdet  # noqa: E402
from detection.tiny import tiny_detection_config  # noqa: E402

RETINA_MIMIC = "retinanet_r50_dist-mimic_retinanet_x101_2x_coco.py"
FRCNN_MIMIC = "faster-rcnn_r50_dist-mimic_cascade-mask-rcnn_x101_2x_coco.py"
ALIGNERS = [f"distiller.connectors.fpn{i}_aligner.func.{p}" for i in range(5) for p in ("weight", "bias")]


def aligner_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if ".connectors." in k}


@pytest.mark.parametrize("name", [RETINA_MIMIC, FRCNN_MIMIC])
def test_aligners_are_the_papers(name, tiny_coco):
    from mmengine.registry import MODELS, init_default_scope

    cfg = tiny_detection_config(name, tiny_coco)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()  # as the runner does: the aligners keep PyTorch's Conv2d init
    assert sorted(aligner_state(model)) == sorted(ALIGNERS)
    for i in range(5):
        conv = model.distiller.connectors[f"fpn{i}_aligner"].func
        assert type(conv) is torch.nn.Conv2d and conv.kernel_size == (1, 1) and conv.bias is not None
        assert (conv.in_channels, conv.out_channels) == (256, 256)
        assert conv.weight.requires_grad and conv.weight.abs().max() <= 1 / 16  # U(-1/sqrt(256), 1/sqrt(256))
    # the MSE of level i compares aligner_i(student FPN_i) with the teacher's FPN_i
    mappings = cfg.model.distiller.loss_forward_mappings
    for i in range(5):
        assert mappings[f"loss_mimic_fpn{i}"]["pred"]["connector"] == f"fpn{i}_aligner"
        assert "connector" not in mappings[f"loss_mimic_fpn{i}"]["target"]


class AlignerSnapshot(Hook):
    """Keeps the aligners as they are when training starts (after the runner's init_weights)."""

    def before_train(self, runner) -> None:
        self.before = aligner_state(runner.model)


@pytest.fixture(scope="module")
def trained_mimic(tiny_coco, tmp_path_factory):
    """One epoch (2 iterations) of the RetinaNet +mimic config through mmengine's Runner."""
    from mmengine.runner import Runner

    cfg = tiny_detection_config(RETINA_MIMIC, tiny_coco)
    cfg.work_dir = str(tmp_path_factory.mktemp("retina_mimic"))
    for key in ("val_dataloader", "val_cfg", "val_evaluator"):
        cfg[key] = None
    cfg.optim_wrapper.optimizer.weight_decay = 0.0  # any change of the aligners then comes from their gradient
    runner = Runner.from_cfg(cfg)
    snapshot = AlignerSnapshot()
    runner.register_hook(snapshot)
    runner.train()
    return cfg.work_dir, runner, snapshot.before


def test_a_mimic_step_trains_the_aligners(trained_mimic):
    work_dir, runner, before = trained_mimic
    after = aligner_state(runner.model)
    assert sorted(before) == sorted(after) == sorted(ALIGNERS)
    for key in ALIGNERS:
        assert (after[key] - before[key]).abs().max() > 1e-6, f"{key} did not change"
    # the distillation checkpoint holds them as trained
    state = torch.load(os.path.join(work_dir, "epoch_1.pth"), map_location="cpu")["state_dict"]
    for key in ALIGNERS:
        torch.testing.assert_close(state[key], after[key])


def test_exported_student_has_no_aligners_and_loads_into_plain_mmdet(trained_mimic):
    from mmdet.apis import init_detector
    from mmengine.hub import get_config

    work_dir, runner, _ = trained_mimic
    plain = init_detector(get_config("mmdet::retinanet/retinanet_r50_fpn_2x_coco.py"), None, device="cpu")
    student_keys = set(plain.state_dict())
    exported = [os.path.join(work_dir, "student_final.pth"),  # StudentCheckpointHook
                test_mmdet.student_checkpoint(os.path.join(work_dir, "epoch_1.pth"), work_dir)]  # test tool
    for path in exported:
        state = torch.load(path, map_location="cpu")["state_dict"]
        assert not any("connector" in k or "aligner" in k or k.startswith("distiller.") for k in state), path
        assert set(state) == student_keys
        missing, unexpected = plain.load_state_dict(state, strict=True)
        assert not missing and not unexpected
        for key, value in runner.model.student.state_dict().items():
            torch.testing.assert_close(state[key], value)
