"""The paper code's checkpoints (``pretrained.* / head.* / auxlayer.*``) load by name and compute its function.

The files are written here with the original's key names (``paper_nets.network_shapes``) and
distinct random values; the loaded networks are compared with an independent functional forward
that reads the tensors by those names, and with the same weights placed by name into our modules.
"""
import pytest
import torch

from distkd.errors import UserError
from segmentation.models import build_segmentor, load_backbone_weights, load_segmentor_weights
from segmentation.models.backbones import build_backbone
from tests.segmentation.paper_nets import (
    backbone_forward,
    backbone_shapes,
    network_forward,
    network_shapes,
    random_state,
)

# paper code name prefix -> our module path (written here independently of segmentation.models.weights)
OUR_PREFIX = {"pretrained": "backbone.body", "head": "head", "auxlayer": "aux_head"}


def place_by_name(model: torch.nn.Module, paper_state: dict) -> None:
    """Copy every tensor of ``paper_state`` into the parameter/buffer of our module with that name."""
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    with torch.no_grad():
        for key, value in paper_state.items():
            first, rest = key.split(".", 1)
            tensors[f"{OUR_PREFIX[first]}.{rest}"].copy_(value)


@pytest.mark.parametrize(
    "model,backbone,counters",
    [("deeplabv3", "resnet101_v1s", False), ("deeplabv3", "resnet18_v1s", True), ("psp", "resnet18_v1s", True)],
)
def test_paper_checkpoint_loads_by_name_and_computes_the_paper_function(tmp_path, model, backbone, counters):
    shapes = network_shapes(model, backbone, counters=counters)  # R101 file: saved without BN counters
    paper = random_state(shapes, seed=1)
    torch.save(paper, tmp_path / "paper.pth")
    loaded = build_segmentor(model, backbone)
    assert load_segmentor_weights(loaded, tmp_path / "paper.pth") == "the paper code's names"
    placed = build_segmentor(model, backbone)
    place_by_name(placed, {k: v for k, v in paper.items() if not k.endswith("num_batches_tracked")})
    own_keys = {k for k in loaded.state_dict() if not k.endswith("num_batches_tracked")}
    assert len(own_keys) == len([k for k in shapes if not k.endswith("num_batches_tracked")])

    x = torch.randn(1, 3, 32, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    reference = network_forward(x, {k: v.double() for k, v in paper.items()}, model, backbone)
    with torch.no_grad():
        ours = loaded.double().eval().forward_with_aux(x)
        by_name = placed.double().eval().forward_with_aux(x)
    for got, want, other in zip(ours, reference, by_name):
        assert got.shape == want.shape == (1, 19, 4, 5)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9 * want.abs().max().item())
        torch.testing.assert_close(got, other, rtol=0, atol=0)


@pytest.mark.parametrize("backbone", ["resnet18_v1s", "resnet101_v1s"])
def test_paper_imagenet_backbone_file_loads_by_name(tmp_path, backbone):
    shapes = backbone_shapes(backbone)
    state = random_state(shapes, seed=3)
    width = 512 if backbone == "resnet18_v1s" else 2048
    state |= {"fc.weight": torch.randn(1000, width), "fc.bias": torch.randn(1000)}  # ignored
    torch.save(state, tmp_path / f"{backbone}-imagenet.pth")
    net = build_backbone(backbone)
    assert load_backbone_weights(net, tmp_path / f"{backbone}-imagenet.pth") == "by name"
    x = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    want = backbone_forward(x, {k: v.double() for k, v in state.items()}, backbone)
    with torch.no_grad():
        got = net.double().eval()(x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * b.abs().max().item())


def test_paper_files_on_a_torchvision_stem_backbone_name_the_v1s_backbone(tmp_path):
    torch.save(random_state(network_shapes("deeplabv3", "resnet18_v1s")), tmp_path / "paper.pth")
    with pytest.raises(UserError, match="resnet18_v1s/resnet101_v1s here"):
        load_segmentor_weights(build_segmentor("deeplabv3", "resnet18"), tmp_path / "paper.pth")
    torch.save(random_state(backbone_shapes("resnet18_v1s")), tmp_path / "resnet18-imagenet.pth")
    with pytest.raises(UserError, match="resnet18_v1s/resnet101_v1s here"):
        load_backbone_weights(build_backbone("resnet18"), tmp_path / "resnet18-imagenet.pth")


def test_missing_released_file_is_one_line_naming_path_and_source(tmp_path):
    path = tmp_path / "ckpts" / "deeplabv3_resnet101_citys_best_model.pth"
    with pytest.raises(UserError) as err:
        load_segmentor_weights(build_segmentor("deeplabv3", "resnet18_v1s"), path, "teacher checkpoint")
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "Released files" in message
