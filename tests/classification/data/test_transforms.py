"""Train transforms as the original built them: colour jitter, normalization, Cutout, RandAugment."""
import numpy as np
import torch
from PIL import Image

from classification.config import load_config
from classification.data.augment_ops import PaperAugmentOp
from classification.data.transforms import CIFAR_MEAN, Cutout, build_transform
from tests.conftest import ROOT

RESNET_DIST = str(ROOT / "configs/strategies/distill/resnet_dist.yaml")
GREY = Image.new("RGB", (300, 260), (120, 120, 120))


def train_transform(*argv: str):
    config = load_config(list(argv))
    return build_transform(config.data, config.augment, train=True)


def test_resnet_dist_imagenet_train_transform_has_no_colour_jitter():
    t = train_transform("-c", RESNET_DIST)
    outs = [t(GREY) for _ in range(6)]
    for out in outs:
        assert out.shape == (3, 224, 224)
        for c in range(3):
            assert torch.allclose(out[c], out[c, 0, 0].expand_as(out[c]), atol=1e-6)  # constant per channel
        assert torch.allclose(out, outs[0], atol=1e-6)  # the same on every call
    assert "ColorJitter" not in [type(s).__name__ for s in t.transforms]


def test_color_jitter_04_changes_the_colour_from_call_to_call():
    t = train_transform("-c", RESNET_DIST, "--color-jitter", "0.4")
    colours = {tuple(t(GREY)[:, 100, 100].round(decimals=3).tolist()) for _ in range(6)}
    assert len(colours) > 1


def test_aa_replaces_colour_jitter_and_uses_the_19_operations():
    t = train_transform("-c", str(ROOT / "configs/strategies/distill/dist_b2.yaml"), "--color-jitter", "0.4")
    names = [type(s).__name__ for s in t.transforms]
    assert "ColorJitter" not in names and "RandAugment" in names
    ra = next(s for s in t.transforms if type(s).__name__ == "RandAugment")
    assert len(ra.ops) == 19 and all(isinstance(op, PaperAugmentOp) for op in ra.ops)
    timm_ra = next(s for s in train_transform("--aa", "rand-m9-mstd0.5", "--timm-rand-augment").transforms
                   if type(s).__name__ == "RandAugment")
    assert len(timm_ra.ops) == 15  # the extension: timm's own list


def test_image_mean_and_std_and_the_original_cifar_defaults():
    image = Image.new("RGB", (32, 32), (255, 0, 128))
    t = build_transform(load_config(["--dataset", "cifar100", "--image-mean", "0", "0", "0", "--image-std", "1", "1",
                                    "1"]).data, train=False)
    assert torch.allclose(t(image)[:, 0, 0], torch.tensor([1.0, 0.0, 128 / 255]))
    t = build_transform(load_config(["--dataset", "cifar100"]).data, train=False)  # the original: CIFAR-10 statistics
    expected = (torch.tensor([1.0, 0.0, 128 / 255]) - torch.tensor(CIFAR_MEAN)) / torch.tensor(
        (0.24703233, 0.24348505, 0.26158768))
    assert torch.allclose(t(image)[:, 0, 0], expected, atol=1e-5)


def test_cutout_on_cifar_zeroes_one_clipped_square():
    np.random.seed(0)
    out = Cutout(16)(torch.ones(3, 32, 32))
    zeros = (out == 0).all(0)
    rows, cols = zeros.any(1).nonzero(), zeros.any(0).nonzero()
    assert 0 < zeros.sum() <= 256 and zeros.sum() == len(rows) * len(cols)  # one axis-aligned box
    t = train_transform("--dataset", "cifar100", "--cutout-length", "16")
    assert isinstance(t.transforms[-1], Cutout)
    assert not any(isinstance(s, Cutout) for s in train_transform("--dataset", "cifar100").transforms)
