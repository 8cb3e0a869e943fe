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


def test_deep_stem_file_with_paper_code_names_loads_by_position(tmp_path):
    """Stem keys conv1/bn1/conv2/bn2/conv3/bn3 (the paper code's v1s files) for timm's conv1.0 ... bn1."""
    source = build_backbone("resnet18_v1s").body.state_dict()
    renames = {"conv1.0": "conv1", "conv1.1": "bn1", "conv1.3": "conv2", "conv1.4": "bn2", "conv1.6": "conv3",
               "bn1": "bn3"}  # fmt: skip
    paper = {}
    for key, value in source.items():
        old = next((o for o in renames if key.startswith(o + ".")), None)
        paper[renames[old] + key[len(old):] if old else key] = value
    paper["fc.weight"], paper["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(paper, tmp_path / "resnet18-imagenet.pth")
    backbone = build_backbone("resnet18_v1s")
    assert load_backbone_weights(backbone, tmp_path / "resnet18-imagenet.pth") == "by position"
    assert torch.equal(backbone.body.conv1[6].weight, paper["conv3.weight"])
    assert torch.equal(backbone.body.bn1.running_var, paper["bn3.running_var"])


def test_whole_network_with_other_key_names_loads_by_position(tmp_path):
    from segmentation.models import load_segmentor_weights

    trained = build_segmentor("deeplabv3", "resnet18")
    renamed = {k.replace("backbone.body.", "pretrained.").replace("aux_head.", "auxlayer."): v
               for k, v in trained.state_dict().items()}  # fmt: skip
    torch.save(renamed, tmp_path / "paper_teacher.pth")
    model = build_segmentor("deeplabv3", "resnet18")
    assert load_segmentor_weights(model, tmp_path / "paper_teacher.pth") == "by position"
    for (k, a), b in zip(model.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(UserError, match="missing keys"):
        load_segmentor_weights(build_segmentor("psp", "resnet18"), tmp_path / "paper_teacher.pth")
