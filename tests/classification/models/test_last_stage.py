"""Each registered model honours ``num_classes`` and names in ``last_stage`` the map it pools and classifies."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from classification.models import build_model, model_names
from distkd.features import FeatureRecorder, last_stage_name


def classifier_of(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@pytest.mark.parametrize("name", model_names())
def test_last_stage_is_the_pooled_feature_map(name: str):
    torch.manual_seed(0)
    model = build_model(name, num_classes=10).eval()
    assert isinstance(type(model).last_stage, str)
    assert last_stage_name(model) == model.last_stage
    recorder = FeatureRecorder(model, model.last_stage)
    size = 32 if name.startswith("cifar_") else 64
    with torch.no_grad():
        logits = model(torch.randn(2, 3, size, size))
        feature = recorder.pop()
    assert logits.shape == (2, 10)
    assert feature.dim() == 4 and feature.shape[1] == classifier_of(model).in_features
    # Global average pooling of that map, then the classifier, gives the logits.
    with torch.no_grad():
        assert torch.allclose(classifier_of(model)(feature.mean((2, 3))), logits, atol=1e-5)


def test_vgg_pools_block3_only_for_64px_inputs():
    model = build_model("cifar_vgg8", num_classes=10).eval()
    recorder = FeatureRecorder(model, model.last_stage)
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
        assert recorder.pop().shape[-2:] == (4, 4)
        model(torch.randn(1, 3, 64, 64))
        assert recorder.pop().shape[-2:] == (4, 4)
