"""Segmentation networks: output stride 8, output shapes, aux head in training only, weight loading."""
import pytest
import torch
import torchvision

from distkd.errors import UserError
from segmentation.models import build_segmentor, load_backbone_weights
from segmentation.models.backbones import build_backbone


@pytest.mark.parametrize(
    "model,backbone,aux",
    [("deeplabv3", "resnet18", True), ("psp", "resnet18", True), ("deeplab_mobile", None, False),
     ("psp_mobile", None, False)],
)  # fmt: skip
def test_models_build_with_output_stride_8(model, backbone, aux):
    net = build_segmentor(model, backbone, num_classes=19)
    assert net.output_stride == 8 and (net.aux_head is not None) == aux
    x = torch.randn(2, 3, 32, 64)
    net.eval()
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 19, 4, 8)
    net.train()
    out = net(x)
    if aux:
        main, aux_logits = out
        assert main.shape == aux_logits.shape == (2, 19, 4, 8)
    else:
        assert out.shape == (2, 19, 4, 8)


@pytest.mark.parametrize("name", ["resnet18", "resnet18_v1s", "resnet50", "resnet101", "mobilenetv2"])
def test_backbones_are_dilated_to_stride_8(name):
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        c3, c4 = backbone(torch.randn(1, 3, 32, 64))
    assert c3.shape[-2:] == c4.shape[-2:] == (4, 8)
    assert (c3.shape[1], c4.shape[1]) == (backbone.aux_channels, backbone.out_channels)


def test_basic_block_resnet_is_dilated_not_strided():
    body = build_backbone("resnet18").body
    convs = [m for m in body.layer4.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert all(c.stride == (1, 1) for c in convs)
    assert [c.dilation[0] for c in convs] == [2, 4, 4, 4]


def test_torchvision_resnet_weights_load_by_name(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    backbone = build_backbone("resnet18")
    assert load_backbone_weights(backbone, tmp_path / "r18.pth") == "by name"
    assert torch.equal(backbone.body.layer3[0].conv1.weight, tv.layer3[0].conv1.weight)


def test_torchvision_mobilenet_weights_load_by_position(tmp_path):
    tv = torchvision.models.mobilenet_v2()
    torch.save(tv.state_dict(), tmp_path / "mv2.pth")
    backbone = build_backbone("mobilenetv2")
    assert load_backbone_weights(backbone, tmp_path / "mv2.pth") == "by position"
    assert torch.equal(backbone.body.conv_stem.weight, tv.features[0][0].weight)


def test_wrong_backbone_weights_are_a_clear_error(tmp_path):
    torch.save(torchvision.models.mobilenet_v2().state_dict(), tmp_path / "mv2.pth")
    with pytest.raises(UserError, match="do not fit this backbone"):
        load_backbone_weights(build_backbone("resnet18"), tmp_path / "mv2.pth")
    with pytest.raises(UserError, match="not found"):
        load_backbone_weights(build_backbone("resnet18"), tmp_path / "missing.pth")


def test_unknown_names_are_clear_errors():
    with pytest.raises(UserError, match="Did you mean: deeplabv3"):
        build_segmentor("deeplabv", "resnet18")
    with pytest.raises(UserError, match="mobilenetv2"):
        build_segmentor("psp_mobile", "resnet18")
