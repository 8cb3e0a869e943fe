"""The CIFAR-100 benchmark models: exact sizes, the benchmark's parameter names, checkpoints, stages."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from classification.models import build_model, model_names
from distkd.errors import UserError
from distkd.utils.checkpoint import atomic_save, load_weights

# Exact parameter counts at 100 classes (measured; identical to the CRD / RepDistiller definitions).
PARAMS = {
    "cifar_resnet8": 83_892,
    "cifar_resnet14": 181_108,
    "cifar_resnet20": 278_324,
    "cifar_resnet32": 472_756,
    "cifar_resnet44": 667_188,
    "cifar_resnet56": 861_620,
    "cifar_resnet110": 1_736_564,
    "cifar_resnet8x4": 1_233_540,
    "cifar_resnet32x4": 7_433_860,
    "cifar_wrn_16_1": 180_916,
    "cifar_wrn_16_2": 703_284,
    "cifar_wrn_40_1": 569_780,
    "cifar_wrn_40_2": 2_255_156,
    "cifar_vgg8": 3_965_028,
    "cifar_vgg11": 9_277_284,
    "cifar_vgg13": 9_462_180,
    "cifar_vgg16": 14_774_436,
    "cifar_vgg19": 20_086_692,
    "cifar_mobile_half": 812_836,
    "cifar_MobileNetV2": 812_836,
    "cifar_ShuffleV1": 949_258,
    "cifar_ShuffleV2": 1_355_528,
    "cifar_ResNet18": 11_220_132,
    "cifar_ResNet34": 21_328_292,
    "cifar_ResNet50": 23_705_252,
}

# Sizes in millions as KD papers on this benchmark print them.
PUBLISHED_M = {
    "cifar_resnet8x4": "1.23",
    "cifar_resnet32x4": "7.43",
    "cifar_resnet20": "0.28",
    "cifar_resnet32": "0.47",
    "cifar_resnet56": "0.86",
    "cifar_wrn_16_2": "0.70",
    "cifar_wrn_40_1": "0.57",
    "cifar_wrn_40_2": "2.26",
    "cifar_vgg13": "9.46",
    "cifar_mobile_half": "0.81",
    "cifar_ShuffleV1": "0.95",
    "cifar_ResNet50": "23.71",
}

# A few state_dict entries (name -> shape) of the benchmark's own definitions (100 classes).
BENCHMARK_KEYS = {
    "cifar_resnet8x4": (62, {
        "conv1.weight": (32, 3, 3, 3),
        "bn1.num_batches_tracked": (),
        "layer1.0.downsample.0.weight": (64, 32, 1, 1),
        "layer1.0.downsample.1.running_mean": (64,),
        "layer3.0.conv2.weight": (256, 256, 3, 3),
        "fc.weight": (100, 256),
    }),
    "cifar_resnet56": (344, {
        "layer1.8.bn2.running_var": (16,),
        "layer2.0.downsample.0.weight": (32, 16, 1, 1),
        "fc.bias": (100,),
    }),
    "cifar_wrn_40_2": (227, {
        "conv1.weight": (16, 3, 3, 3),
        "block1.layer.0.bn1.weight": (16,),
        "block1.layer.0.convShortcut.weight": (32, 16, 1, 1),
        "block3.layer.5.conv2.weight": (128, 128, 3, 3),
        "bn1.running_var": (128,),
        "fc.weight": (100, 128),
    }),
    "cifar_vgg13": (72, {
        "block0.0.weight": (64, 3, 3, 3),
        "block0.0.bias": (64,),
        "block0.4.running_mean": (64,),
        "block4.3.weight": (512, 512, 3, 3),
        "classifier.weight": (100, 512),
    }),
    "cifar_mobile_half": (320, {
        "conv1.0.weight": (16, 3, 3, 3),
        "blocks.0.0.conv.0.weight": (16, 16, 1, 1),
        "blocks.6.0.conv.7.running_var": (160,),
        "conv2.0.weight": (1280, 160, 1, 1),
        "classifier.0.weight": (100, 1280),
    }),
    "cifar_ShuffleV1": (296, {
        "layer1.0.conv1.weight": (54, 24, 1, 1),
        "layer1.0.conv3.weight": (216, 18, 1, 1),
        "layer3.3.bn3.running_mean": (960,),
        "linear.weight": (100, 960),
    }),
    "cifar_ShuffleV2": (338, {
        "layer1.0.conv5.weight": (58, 58, 1, 1),
        "layer2.7.conv2.weight": (116, 1, 3, 3),
        "conv2.weight": (1024, 464, 1, 1),
        "linear.weight": (100, 1024),
    }),
    "cifar_ResNet50": (320, {
        "layer1.0.shortcut.0.weight": (256, 64, 1, 1),
        "layer4.2.bn3.weight": (2048,),
        "linear.weight": (100, 2048),
    }),
}
ABSENT_KEYS = {  # the benchmark has no shortcut conv where the shape is kept
    "cifar_wrn_40_2": ["block1.layer.1.convShortcut.weight"],
    "cifar_wrn_40_1": ["block1.layer.0.convShortcut.weight"],
    "cifar_resnet20": ["layer1.0.downsample.0.weight"],
}

CIFAR_MODELS = [name for name in model_names() if name.startswith("cifar_")]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_on_meta(name: str, num_classes: int = 100) -> nn.Module:
    """Shapes and names only: no memory, no weight initialisation (fast)."""
    with torch.device("meta"):
        return build_model(name, num_classes=num_classes)


def test_every_cifar_model_has_a_pinned_size():
    assert sorted(PARAMS) == sorted(CIFAR_MODELS)


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_parameter_count(name: str):
    assert n_params(build_on_meta(name)) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_parameter_count_rounds_to_published_figure(name: str):
    published = PUBLISHED_M[name]
    decimals = len(published.split(".")[1])
    assert f"{PARAMS[name] / 1e6:.{decimals}f}" == published


@pytest.mark.parametrize("name", sorted(BENCHMARK_KEYS))
def test_state_dict_names_match_benchmark(name: str):
    count, expected = BENCHMARK_KEYS[name]
    state = build_on_meta(name).state_dict()
    assert len(state) == count
    assert {k: tuple(state[k].shape) for k in expected if k in state} == expected


@pytest.mark.parametrize("name", sorted(ABSENT_KEYS))
def test_no_shortcut_conv_where_shape_is_kept(name: str):
    state = build_on_meta(name).state_dict()
    assert not set(ABSENT_KEYS[name]) & set(state)


@pytest.mark.parametrize("name", ["cifar_wrn_40_2", "cifar_resnet8x4", "cifar_ShuffleV2"])
def test_benchmark_style_checkpoint_loads_strictly(name: str, tmp_path):
    # The benchmark saves {'epoch', 'model' (state_dict), 'accuracy', 'optimizer'}.
    torch.manual_seed(0)
    teacher = build_model(name, num_classes=100)
    with torch.no_grad():
        for buffer in teacher.buffers():
            if buffer.is_floating_point():
                buffer.uniform_(0.5, 1.5)
    path = tmp_path / "ckpt_epoch_240.pth"
    optimizer = torch.optim.SGD(teacher.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    checkpoint = {"epoch": 240, "model": teacher.state_dict(), "accuracy": torch.tensor(76.3),
                  "optimizer": optimizer.state_dict()}
    atomic_save(checkpoint, path)
    torch.manual_seed(1)
    loaded = build_model(name, num_classes=100)
    load_weights(loaded, path, "teacher checkpoint")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(teacher.eval()(x), loaded.eval()(x))


def test_checkpoint_of_other_class_count_is_refused(tmp_path):
    path = tmp_path / "ckpt.pth"
    atomic_save({"model": build_model("cifar_resnet20", num_classes=10).state_dict()}, path)
    with pytest.raises(UserError, match="fc.weight"):
        load_weights(build_model("cifar_resnet20", num_classes=100), path)
