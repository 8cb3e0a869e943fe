"""``--pretrained``: a torchvision / timm model started from its pretrained weights, with a new
classifier for the data's number of classes (fine-tuning, e.g. a teacher on your own data)."""
from __future__ import annotations

from typing import Any

from torch import nn

from classification.models.factory import STUDENT_INSTEAD, build_model, tv_weights
from distkd.errors import UserError


def build_pretrained_model(name: str, num_classes: int, offline: bool = False, **kwargs: Any) -> nn.Module:
    """Every pretrained tensor whose shape fits is loaded; only the classifier starts fresh."""
    if name.startswith("timm_"):  # timm re-initialises the head itself when num_classes differs
        return build_model(name, num_classes, pretrained=True, offline=offline, instead=STUDENT_INSTEAD, **kwargs)
    if not name.startswith("tv_"):
        raise UserError(f"--pretrained needs a tv_* or timm_* model ('{name}' has no published weights); "
                        "drop --pretrained to train it from scratch")
    weights = tv_weights(name)  # the paper's V1 weights, or the version the name gives (tv_resnet50.IMAGENET1K_V2)
    source_classes = len(weights.meta.get("categories") or []) or 1000
    source = build_model(name, source_classes, pretrained=True, offline=offline, instead=STUDENT_INSTEAD, **kwargs)
    model = build_model(name, num_classes, **kwargs)
    target = model.state_dict()
    fitting = {k: v for k, v in source.state_dict().items() if k in target and target[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    fresh = sorted(set(target) - set(fitting))
    if len(fresh) > 2:  # more than the classifier's weight and bias: not the same architecture
        raise UserError(f"pretrained weights of '{name}' do not fit beyond the classifier: {', '.join(fresh[:5])}")
    return model
