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


def test_timm_deep_stem_file_loads_by_position(tmp_path):
    """A timm deep-stem ResNet file (stem keys conv1.0 ... bn1) for the paper-named resnet18_v1s."""
    import timm

    torch.manual_seed(0)
    source = timm.create_model("resnet18", stem_type="deep", stem_width=64).state_dict()
    torch.save(source, tmp_path / "timm_resnet18s.pth")
    backbone = build_backbone("resnet18_v1s")
    assert load_backbone_weights(backbone, tmp_path / "timm_resnet18s.pth") == "by position"
    assert torch.equal(backbone.body.conv3.weight, source["conv1.6.weight"])
    assert torch.equal(backbone.body.bn3.running_var, source["bn1.running_var"])
    assert torch.equal(backbone.body.layer4[1].conv2.weight, source["layer4.1.conv2.weight"])


def test_our_checkpoint_loads_by_name_and_the_wrong_head_is_a_clear_error(tmp_path):
    from segmentation.models import load_segmentor_weights

    trained = build_segmentor("deeplabv3", "resnet18_v1s")
    torch.save(trained.state_dict(), tmp_path / "best.pth")
    model = build_segmentor("deeplabv3", "resnet18_v1s")
    assert load_segmentor_weights(model, tmp_path / "best.pth") == "this code's names"
    for (k, a), b in zip(model.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(UserError, match="missing keys"):
        load_segmentor_weights(build_segmentor("psp", "resnet18_v1s"), tmp_path / "best.pth")


def test_paper_head_widths():
    """PSP is 512 wide on 2048 channels, DeepLabV3 256 (the paper code's widths); 128 on ResNet-18."""
    psp, dlv3 = build_segmentor("psp", "resnet101_v1s"), build_segmentor("deeplabv3", "resnet101_v1s")
    assert psp.head.classifier.in_channels == 512 and dlv3.head.block[4].in_channels == 256
    assert build_segmentor("psp", "resnet18_v1s").head.classifier.in_channels == 128
    assert psp.aux_head.block[0].out_channels == 256  # FCN head: 1024 // 4
