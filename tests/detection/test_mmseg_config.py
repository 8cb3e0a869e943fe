"""The mmseg config (DeepLabV3-R18-D8 <- DeepLabV3-R101-D8, per-pixel DIST on decode-head logits)
builds and runs one training iteration with the same plugin (teacher shrunk, BN for SyncBN, 64 px)."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("mmcv._ext", reason="OpenMMLab stack not installed: sh tools/install_openmmlab.sh")
pytest.importorskip("mmseg")
pytest.importorskip("mmrazor")
pytestmark = [pytest.mark.openmmlab, pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")]

import detection.plugin  # noqa: E402,F401
from detection.tiny import SEG_CONFIGS  # noqa: E402

CONFIG = SEG_CONFIGS / "deeplabv3_r18-d8_dist_deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py"
SIZE = 64


def _cpu_segmentor(model_cfg) -> None:
    bn = dict(type="BN", requires_grad=True)
    for part in ("backbone", "decode_head", "auxiliary_head"):
        model_cfg[part].norm_cfg = bn
    model_cfg.data_preprocessor.size = (SIZE, SIZE)
    model_cfg.backbone.init_cfg = None


def test_one_training_iteration():
    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(str(CONFIG))
    student = cfg.model.architecture
    _cpu_segmentor(student)
    teacher = get_config(cfg.model.teacher.cfg_path).model
    _cpu_segmentor(teacher)
    teacher.pretrained = None
    teacher.backbone.depth = 18  # same wiring (decode_head.conv_seg, 19 classes), smaller for CPU
    teacher.decode_head.in_channels, teacher.auxiliary_head.in_channels = 512, 256
    teacher._scope_ = "mmseg"
    cfg.model.teacher, cfg.model.teacher_ckpt = teacher, None

    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.train()
    g = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, SIZE, SIZE), generator=g))
        samples.append(sample)
    batch = dict(inputs=[torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=g) for _ in samples],
                 data_samples=samples)
    losses = model(**model.data_preprocessor(batch, True), mode="loss")

    assert "distill.loss_dist_seg" in losses and "student.decode.loss_ce" in losses
    s_logits = model.distiller.get_record("logits", from_student=True)
    assert s_logits.shape == (2, 19, SIZE // 8, SIZE // 8)
    loss = losses["distill.loss_dist_seg"]
    assert torch.isfinite(loss) and loss > 0
    total, _ = model.parse_losses(losses)
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.student.decode_head.conv_seg.weight.grad.abs().sum() > 0
