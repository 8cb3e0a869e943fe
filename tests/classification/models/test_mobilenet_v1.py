"""MobileNet V1 (ImageNet, width 1.0): size of Howard et al. 2017, stride 32, layer names."""
from __future__ import annotations

import torch

from classification.models import build_model
from distkd.features import FeatureRecorder


def test_size_matches_the_mobilenet_paper():
    with torch.device("meta"):
        model = build_model("mobilenet_v1", num_classes=1000)
    count = sum(p.numel() for p in model.parameters())
    assert count == 4_231_976
    assert f"{count / 1e6:.1f}" == "4.2"  # Howard et al., Table 8: 1.0 MobileNet-224, 4.2M parameters


def test_layer_names_and_shapes():
    with torch.device("meta"):
        state = build_model("mobilenet_v1", num_classes=1000).state_dict()
    expected = {
        "model.0.0.weight": (32, 3, 3, 3),
        "model.1.0.weight": (32, 1, 3, 3),
        "model.1.3.weight": (64, 32, 1, 1),
        "model.13.3.weight": (1024, 1024, 1, 1),
        "model.13.4.running_var": (1024,),
        "fc.weight": (1000, 1024),
    }
    assert {k: tuple(state[k].shape) for k in expected if k in state} == expected


def test_total_stride_is_32():
    with torch.device("meta"):  # shapes only, no compute
        model = build_model("mobilenet_v1", num_classes=1000).eval()
        recorder = FeatureRecorder(model, model.last_stage)
        logits = model(torch.empty(1, 3, 224, 224))
    assert recorder.pop().shape == (1, 1024, 7, 7) and logits.shape == (1, 1000)
