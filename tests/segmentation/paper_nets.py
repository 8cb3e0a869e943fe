"""An independent reference for the paper code's segmentation networks (hunto/DIST_KD, segmentation/models).

Written from the original's structure, not from ``segmentation.models``: the key names and shapes
of its state dicts (``pretrained.*``, ``head.*``, ``auxlayer.*``) and a functional forward that reads
tensors by those names. Tests compare our modules against it, so an equal-shaped tensor put in the
wrong place, a wrong dilation or a missing layer changes the logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DEPTHS = {"resnet18_v1s": ("basic", (2, 2, 2, 2)), "resnet101_v1s": ("bottleneck", (3, 4, 23, 3))}


def _bn(prefix: str, channels: int, counters: bool) -> dict[str, tuple]:
    keys = {f"{prefix}.{n}": (channels,) for n in ("weight", "bias", "running_mean", "running_var")}
    if counters:
        keys[f"{prefix}.num_batches_tracked"] = ()
    return keys


def _blocks(kind: str, layers: tuple[int, ...]):
    """(prefix, inplanes, planes, stride, dilation of conv1/conv2 as in ResNetV1b(dilated=True))."""
    inplanes, expansion = 128, 1 if kind == "basic" else 4
    for index, (planes, count, stride, dilation) in enumerate(zip((64, 128, 256, 512), layers, (1, 2, 1, 1),
                                                                   (1, 1, 2, 4))):  # fmt: skip
        for b in range(count):
            first = b == 0
            d_conv1 = (2 if dilation == 4 else 1) if first else dilation  # the "dilation" argument
            d_prev = dilation  # the "previous_dilation" argument
            yield f"layer{index + 1}.{b}", inplanes, planes, stride if first else 1, d_conv1, d_prev
            inplanes = planes * expansion


def backbone_shapes(backbone: str, counters: bool = True, prefix: str = "") -> dict[str, tuple]:
    kind, layers = DEPTHS[backbone]
    shapes = {f"{prefix}conv1.weight": (64, 3, 3, 3), **_bn(f"{prefix}bn1", 64, counters),
              f"{prefix}conv2.weight": (64, 64, 3, 3), **_bn(f"{prefix}bn2", 64, counters),
              f"{prefix}conv3.weight": (128, 64, 3, 3), **_bn(f"{prefix}bn3", 128, counters)}  # fmt: skip
    expansion = 1 if kind == "basic" else 4
    for name, cin, planes, stride, _, _ in _blocks(kind, layers):
        p = prefix + name
        if kind == "basic":
            shapes[f"{p}.conv1.weight"] = (planes, cin, 3, 3)
            shapes.update(_bn(f"{p}.bn1", planes, counters))
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes.update(_bn(f"{p}.bn2", planes, counters))
        else:
            shapes[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
            shapes.update(_bn(f"{p}.bn1", planes, counters))
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes.update(_bn(f"{p}.bn2", planes, counters))
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            shapes.update(_bn(f"{p}.bn3", planes * 4, counters))
        if stride != 1 or cin != planes * expansion:
            shapes[f"{p}.downsample.0.weight"] = (planes * expansion, cin, 1, 1)
            shapes.update(_bn(f"{p}.downsample.1", planes * expansion, counters))
    return shapes


def _cbr(prefix: str, cout: int, cin: int, k: int, counters: bool) -> dict[str, tuple]:
    return {f"{prefix}.0.weight": (cout, cin, k, k), **_bn(f"{prefix}.1", cout, counters)}


def network_shapes(model: str, backbone: str, classes: int = 19, counters: bool = True) -> dict[str, tuple]:
    """Keys and shapes of the paper code's DeepLabV3 / PSPNet (aux=True) state dict."""
    shapes = backbone_shapes(backbone, counters, "pretrained.")
    c4 = 512 if backbone == "resnet18_v1s" else 2048
    if model == "deeplabv3":
        w = 128 if c4 == 512 else 256
        shapes.update(_cbr("head.aspp.b0", w, c4, 1, counters))
        for b in (1, 2, 3):
            shapes.update(_cbr(f"head.aspp.b{b}.block", w, c4, 3, counters))
        shapes["head.aspp.b4.gap.1.weight"] = (w, c4, 1, 1)
        shapes.update(_bn("head.aspp.b4.gap.2", w, counters))
        shapes.update(_cbr("head.aspp.project", w, 5 * w, 1, counters))
        shapes.update(_cbr("head.block", w, w, 3, counters))
        shapes.update({"head.block.4.weight": (classes, w, 1, 1), "head.block.4.bias": (classes,)})
    else:
        w = 128 if c4 == 512 else 512
        for b in (1, 2, 3, 4):
            shapes.update(_cbr(f"head.psp.conv{b}", c4 // 4, c4, 1, counters))
        shapes.update(_cbr("head.block", w, 2 * c4, 3, counters))
        shapes.update({"head.classifier.weight": (classes, w, 1, 1), "head.classifier.bias": (classes,)})
    c3 = c4 // 2
    shapes.update(_cbr("auxlayer.block", c3 // 4, c3, 3, counters))
    shapes.update({"auxlayer.block.4.weight": (classes, c3 // 4, 1, 1), "auxlayer.block.4.bias": (classes,)})
    return shapes


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, Tensor]:
    """Distinct random values for every tensor (positive running variances), float32."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith("weight") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * (1.0 / fan_in) ** 0.5
        elif key.endswith("weight"):
            state[key] = 0.5 + 0.5 * torch.rand(shape, generator=g)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


# --- the forward pass, reading tensors by the paper's names ---

def _bn_f(x: Tensor, sd: dict, p: str) -> Tensor:
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        False, 0.0, 1e-5)  # fmt: skip


def _conv(x: Tensor, sd: dict, p: str, stride: int = 1, dilation: int = 1) -> Tensor:
    w = sd[f"{p}.weight"]
    return F.conv2d(x, w, sd.get(f"{p}.bias"), stride, dilation * (w.shape[-1] // 2), dilation)


def _cbr_f(x: Tensor, sd: dict, p: str, dilation: int = 1) -> Tensor:
    return F.relu(_bn_f(_conv(x, sd, f"{p}.0", 1, dilation), sd, f"{p}.1"))


def backbone_forward(x: Tensor, sd: dict, backbone: str, p: str = "") -> tuple[Tensor, Tensor]:
    kind, layers = DEPTHS[backbone]
    for i in (1, 2, 3):
        x = F.relu(_bn_f(_conv(x, sd, f"{p}conv{i}", 2 if i == 1 else 1), sd, f"{p}bn{i}"))
    x = F.max_pool2d(x, 3, 2, 1)
    c3 = None
    for name, _, _, stride, d1, d2 in _blocks(kind, layers):
        q = p + name
        if kind == "basic":
            out = F.relu(_bn_f(_conv(x, sd, f"{q}.conv1", stride, d1), sd, f"{q}.bn1"))
            out = _bn_f(_conv(out, sd, f"{q}.conv2", 1, d2), sd, f"{q}.bn2")
        else:
            out = F.relu(_bn_f(_conv(x, sd, f"{q}.conv1"), sd, f"{q}.bn1"))
            out = F.relu(_bn_f(_conv(out, sd, f"{q}.conv2", stride, d1), sd, f"{q}.bn2"))
            out = _bn_f(_conv(out, sd, f"{q}.conv3"), sd, f"{q}.bn3")
        if f"{q}.downsample.0.weight" in sd:
            x = _bn_f(_conv(x, sd, f"{q}.downsample.0", stride), sd, f"{q}.downsample.1")
        x = F.relu(out + x)
        if name == f"layer3.{layers[2] - 1}":
            c3 = x
    return c3, x


def _up(x: Tensor, size) -> Tensor:
    return F.interpolate(x, size, mode="bilinear", align_corners=True)


def network_forward(x: Tensor, sd: dict, model: str, backbone: str) -> tuple[Tensor, Tensor]:
    """Eval-mode ``(main, aux)`` logits of the paper's network with the weights ``sd``."""
    c3, c4 = backbone_forward(x, sd, backbone, "pretrained.")
    size = c4.shape[-2:]
    if model == "deeplabv3":
        feats = [_cbr_f(c4, sd, "head.aspp.b0")]
        feats += [_cbr_f(c4, sd, f"head.aspp.b{b}.block", r) for b, r in ((1, 12), (2, 24), (3, 36))]
        pooled = F.adaptive_avg_pool2d(c4, 1)
        pooled = F.relu(_bn_f(_conv(pooled, sd, "head.aspp.b4.gap.1"), sd, "head.aspp.b4.gap.2"))
        feats.append(_up(pooled, size))
        y = _cbr_f(torch.cat(feats, 1), sd, "head.aspp.project")
        main = _conv(_cbr_f(y, sd, "head.block"), sd, "head.block.4")
    else:
        feats = [c4] + [_up(_cbr_f(F.adaptive_avg_pool2d(c4, b), sd, f"head.psp.conv{i}"), size)
                        for i, b in ((1, 1), (2, 2), (3, 3), (4, 6))]  # fmt: skip
        main = _conv(_cbr_f(torch.cat(feats, 1), sd, "head.block"), sd, "head.classifier")
    aux = _conv(_cbr_f(c3, sd, "auxlayer.block"), sd, "auxlayer.block.4")
    return main, aux
