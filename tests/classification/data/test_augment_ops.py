"""The original's RandAugment: 19 operations, unclipped magnitudes, and the four extra operations."""
import random

import numpy as np
import pytest
from PIL import Image

from classification.data.augment_ops import OPS, PaperAugmentOp, blur, distort, paper_rand_augment, skew, zoom
from distkd.errors import UserError

NINETEEN = ["Distort", "Zoom", "Blur", "Skew", "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeTpu",
            "Solarize", "SolarizeAdd", "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY",
            "TranslateXRel", "TranslateYRel"]
HPARAMS = {"translate_const": 100, "img_mean": (124, 116, 104), "interpolation": Image.BILINEAR}


def rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.repeat(array.astype(np.uint8)[..., None], 3, axis=2))


def ramp(size: int = 64) -> Image.Image:
    """Horizontal ramp: pixel value 3 * x."""
    return rgb(np.tile(np.arange(size) * 3, (size, 1)))


def test_rand_m9_mstd05_draws_from_the_19_operations_and_applies_each():
    t = paper_rand_augment("rand-m9-mstd0.5", HPARAMS)
    assert [op.name for op in t.ops] == NINETEEN and t.num_layers == 2 and t.choice_weights is None
    applied = set()
    for op in t.ops:
        fn, name = op.aug_fn, op.name
        op.aug_fn = lambda img, *a, _fn=fn, _name=name, **k: (applied.add(_name), _fn(img, *a, **k))[1]
    random.seed(0)
    np.random.seed(0)
    image = Image.fromarray(np.random.randint(0, 255, (24, 24, 3), dtype=np.uint8))
    for _ in range(600):
        out = t(image)
        assert out.size == image.size and out.mode == "RGB"
    assert applied == set(NINETEEN)


def test_magnitudes_are_not_clipped_to_10():
    seen = []
    op = PaperAugmentOp("Rotate", magnitude=15, hparams=HPARAMS, prob=1.0)
    op.aug_fn = lambda img, degrees, **_: seen.append(abs(degrees)) or img
    op(ramp())
    assert seen == [pytest.approx(45.0)]  # timm clips magnitude 15 to 10 (30 degrees)


def test_magnitude_noise_follows_mstd():
    op = PaperAugmentOp("Zoom", magnitude=9, hparams={**HPARAMS, "magnitude_std": 0.5}, prob=1.0)
    seen = []
    op.aug_fn = lambda img, factor, **_: seen.append(factor) or img
    random.seed(1)
    for _ in range(400):
        op(ramp(8))
    levels = np.array(seen) / 0.04
    assert levels.mean() == pytest.approx(9, abs=0.1) and levels.std() == pytest.approx(0.5, abs=0.1)
    assert levels.max() > 10  # unclipped


def test_zoom_keeps_the_centre_pixel_and_zooms_out_with_a_black_border():
    a = np.full((65, 65), 200)
    a[25:40, 25:40] = 40  # a dark centre square, 15 px
    out = np.asarray(zoom(rgb(a), 0.36), float)[..., 0]
    assert out[32, 32] == pytest.approx(40, abs=10)
    assert out[0, 0] == 0 and out[-1, -1] == 0 and out[32, 2] == 0  # border outside the shrunk image
    assert out[32, 32 + 7] == pytest.approx(200, abs=10)  # the bright ring now sits close to the centre


def test_blur_lowers_the_variance_of_a_checkerboard_for_either_sign():
    board = rgb((np.indices((16, 16)).sum(0) % 2) * 255)
    before = np.asarray(board, float).var()
    for radius in (0.45, -0.45):
        assert np.asarray(blur(board, radius), float).var() < 0.5 * before
    assert np.asarray(blur(board, 0.0), float).var() == pytest.approx(before)


def test_skew_keeps_the_centre_and_moves_the_corners():
    image = ramp(64)
    out = np.asarray(skew(image, 0.27), float)[..., 0]
    src = np.asarray(image, float)[..., 0]
    assert out[32, 32] == pytest.approx(src[32, 32], abs=4)
    assert np.abs(out - src).mean() > 5
    inward = np.asarray(skew(image, -0.27), float)[..., 0]  # negative: the image shrinks, black outside
    assert inward[0, 0] == 0 and inward[32, 32] == pytest.approx(src[32, 32], abs=4)


def test_distort_is_the_identity_below_20_pixels_and_warps_the_inner_grid_point_at_20():
    image = ramp(64)
    src = np.asarray(image, float)[..., 0]
    assert np.array_equal(np.asarray(distort(image, 19))[..., 0], src)  # one tile: nothing moves
    out = np.asarray(distort(image, 20), float)[..., 0]
    for y, x in ((0, 0), (0, 63), (63, 0), (63, 63)):
        assert out[y, x] == pytest.approx(src[y, x], abs=3)  # the border does not move
    assert out[31, 31] == pytest.approx(3 * (31 + 20), abs=6)  # the centre samples 20 px to the right


def test_level_rules_of_the_extra_operations():
    random.seed(0)
    assert OPS["Distort"][1](9.5, {}) == (19,) and OPS["Distort"][1](10, {}) == (20,)
    assert OPS["Zoom"][1](9, {}) == (pytest.approx(0.36),)
    assert abs(OPS["Blur"][1](9, {})[0]) == pytest.approx(0.45)
    assert abs(OPS["Skew"][1](9, {})[0]) == pytest.approx(0.27)
    assert OPS["PosterizeTpu"][1](9, {}) == (3,) and OPS["Solarize"][1](9, {}) == (230,)


def test_weighted_choice_and_bad_policy():
    t = paper_rand_augment("rand-m9-n3-w0", HPARAMS)
    weights = dict(zip(NINETEEN, t.choice_weights))
    assert t.num_layers == 3 and sum(t.choice_weights) == pytest.approx(1)
    assert weights["Distort"] == 0 and weights["Rotate"] == pytest.approx(0.3 / 1.0)
    with pytest.raises(UserError, match="unknown RandAugment section 'inc1'"):
        paper_rand_augment("rand-m9-inc1", HPARAMS)
    with pytest.raises(UserError, match="only RandAugment"):
        paper_rand_augment("v0", HPARAMS)
