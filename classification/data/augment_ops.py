"""RandAugment as the paper's classification code ran it: 19 operations, unclipped magnitudes.

``rand-m9-mstd0.5`` of the original draws ``n`` (2) operations uniformly, with replacement, from
19: the four geometric ones below (Distort, Zoom, Blur, Skew), then timm's AutoContrast, Equalize,
Invert, Rotate, Posterize (TPU rule: keep ``int(4 m / 10)`` bits), Solarize, SolarizeAdd, Color,
Contrast, Brightness, Sharpness, ShearX, ShearY, TranslateXRel, TranslateYRel. Each applies with
probability 0.5 at magnitude ``m ~ N(m, mstd)``, **not clipped** to [0, 10] (timm clips). Rotate
is always bicubic; the four extra operations are bicubic and fill with black.

timm provides the 15 common image operations and the sampler (:class:`timm.data.auto_augment.RandAugment`);
it lacks the four extra operations and the unclipped magnitude rule, written here.
"""
from __future__ import annotations

import math
import random
import re
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter
from timm.data.auto_augment import NAME_TO_OP, AugmentOp, RandAugment

from distkd.errors import UserError

MAX_LEVEL = 10.0


# ---- the four operations timm lacks -------------------------------------------------------------
def distort(img: Image.Image, pixels: int, **_) -> Image.Image:
    """Mesh warp: ``int(pixels / 10)`` tiles per side; every inner grid point is sampled from
    ``(+pixels, +pixels)`` away (so the content there moves up-left). One tile: the identity."""
    tiles = int(0.1 * pixels)
    if tiles < 2:
        return img.copy()
    w, h = img.size
    xs = [c * (w // tiles) for c in range(tiles)] + [w]
    ys = [r * (h // tiles) for r in range(tiles)] + [h]

    def source(ix: int, iy: int) -> tuple[int, int]:
        inner = 0 < ix < tiles and 0 < iy < tiles
        return xs[ix] + pixels * inner, ys[iy] + pixels * inner

    mesh = []
    for r in range(tiles):
        for c in range(tiles):
            box = (xs[c], ys[r], xs[c + 1], ys[r + 1])
            quad = (*source(c, r), *source(c, r + 1), *source(c + 1, r + 1), *source(c + 1, r))
            mesh.append((box, quad))
    return img.transform(img.size, Image.MESH, mesh, resample=Image.BICUBIC)


def zoom(img: Image.Image, factor: float, **_) -> Image.Image:
    """Resize by ``factor`` about the centre, keeping the size (m9: factor 0.36, i.e. zoom out
    with a black border; the centre pixel stays where it is)."""
    w, h = img.size
    zw, zh = int(round(w * factor)), int(round(h * factor))
    zoomed = img.resize((max(1, zw), max(1, zh)), resample=Image.BICUBIC)
    left, top = math.floor(zw / 2 - w / 2), math.floor(zh / 2 - h / 2)
    return zoomed.crop((left, top, left + w, top + h))


def blur(img: Image.Image, radius: float, **_) -> Image.Image:
    """Gaussian blur of the given radius (its sign is irrelevant)."""
    return img.filter(ImageFilter.GaussianBlur(radius))


def skew(img: Image.Image, amount: float, **_) -> Image.Image:
    """Perspective twist: the output's corner points ``(-s, 0), (w, -s), (w + s, h), (0, h + s)``
    show the input's corners, ``s = ceil(max(w, h) * amount)``; the centre stays in place."""
    w, h = img.size
    s = int(math.ceil(max(w, h) * amount))
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(-s, 0), (w, -s), (w + s, h), (0, h + s)]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):  # (x, y) in the output -> (u, v) in the input
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coeffs = np.linalg.lstsq(np.asarray(rows, float), np.asarray(rhs, float), rcond=None)[0]
    return img.transform(img.size, Image.PERSPECTIVE, tuple(coeffs), resample=Image.BICUBIC)


# ---- magnitude (level) -> operation arguments, as the original ------------------------------------
def _negate_half(v: float) -> float:
    return -v if random.random() > 0.5 else v


def _scaled(top: float, signed: bool = False, as_int: bool = False, offset: float = 0.0) -> Callable:
    def level_to_arg(level: float, _hparams: dict) -> tuple:
        v = level / MAX_LEVEL * top + offset
        v = int(v) if as_int else v
        return (_negate_half(v) if signed else v,)

    return level_to_arg


OPS: dict[str, tuple[Callable, Callable | None]] = {  # name -> (image op, level -> args); the original's order
    "Distort": (distort, _scaled(10, as_int=True, offset=10)),
    "Zoom": (zoom, _scaled(0.4)),
    "Blur": (blur, _scaled(0.5, signed=True)),
    "Skew": (skew, _scaled(0.3, signed=True)),
    "AutoContrast": (NAME_TO_OP["AutoContrast"], None),
    "Equalize": (NAME_TO_OP["Equalize"], None),
    "Invert": (NAME_TO_OP["Invert"], None),
    "Rotate": (NAME_TO_OP["Rotate"], _scaled(30, signed=True)),
    "PosterizeTpu": (NAME_TO_OP["Posterize"], _scaled(4, as_int=True)),
    "Solarize": (NAME_TO_OP["Solarize"], _scaled(256, as_int=True)),
    "SolarizeAdd": (NAME_TO_OP["SolarizeAdd"], _scaled(110, as_int=True)),
    "Color": (NAME_TO_OP["Color"], _scaled(1.8, offset=0.1)),
    "Contrast": (NAME_TO_OP["Contrast"], _scaled(1.8, offset=0.1)),
    "Brightness": (NAME_TO_OP["Brightness"], _scaled(1.8, offset=0.1)),
    "Sharpness": (NAME_TO_OP["Sharpness"], _scaled(1.8, offset=0.1)),
    "ShearX": (NAME_TO_OP["ShearX"], _scaled(0.3, signed=True)),
    "ShearY": (NAME_TO_OP["ShearY"], _scaled(0.3, signed=True)),
    "TranslateXRel": (NAME_TO_OP["TranslateXRel"], _scaled(0.45, signed=True)),
    "TranslateYRel": (NAME_TO_OP["TranslateYRel"], _scaled(0.45, signed=True)),
}
# The original's 'w0' choice weights (the four extra operations and Invert, PosterizeTpu never drawn).
WEIGHTS_0 = {"Rotate": 0.3, "ShearX": 0.2, "ShearY": 0.2, "TranslateXRel": 0.1, "TranslateYRel": 0.1, "Color": 0.025,
             "Sharpness": 0.025, "AutoContrast": 0.025, "Solarize": 0.005, "SolarizeAdd": 0.005, "Contrast": 0.005,
             "Brightness": 0.005, "Equalize": 0.005}


class PaperAugmentOp(AugmentOp):
    """timm's op with the original's table and magnitude rule: ``N(m, mstd)``, never clipped."""

    def __init__(self, name: str, magnitude: float, hparams: dict, prob: float = 0.5) -> None:
        super().__init__("Invert", prob=prob, magnitude=magnitude, hparams=hparams)  # fills kwargs and hparams
        self.name = name
        self.aug_fn, self.level_fn = OPS[name]
        if name == "Rotate":
            self.kwargs["resample"] = Image.BICUBIC  # the original rotates bicubically whatever the hparams

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() > self.prob:
            return img
        magnitude = self.magnitude
        if self.magnitude_std > 0:
            magnitude = random.gauss(magnitude, self.magnitude_std)
        args = self.level_fn(magnitude, self.hparams) if self.level_fn is not None else ()
        return self.aug_fn(img, *args, **dict(self.kwargs))


def paper_rand_augment(config: str, hparams: dict) -> RandAugment:
    """``rand-m<M>-n<N>-mstd<S>-w0`` as the original parsed it (defaults m 10, n 2, mstd 0, uniform)."""
    sections = config.split("-")
    if sections[0] != "rand":
        raise UserError(f"--aa '{config}': only RandAugment policies 'rand-...' are supported (e.g. rand-m9-mstd0.5)")
    magnitude, layers, weights, hparams = MAX_LEVEL, 2, None, dict(hparams)
    for section in sections[1:]:
        parts = re.split(r"(\d.*)", section)
        if len(parts) < 2:
            continue
        key, value = parts[:2]
        if key == "mstd":
            hparams.setdefault("magnitude_std", float(value))
        elif key == "m":
            magnitude = int(value)
        elif key == "n":
            layers = int(value)
        elif key == "w" and int(value) == 0:
            total = sum(WEIGHTS_0.values())
            weights = [WEIGHTS_0.get(name, 0.0) / total for name in OPS]
        else:
            raise UserError(f"--aa '{config}': unknown RandAugment section '{section}' (known: m, n, mstd, w0)")
    ops = [PaperAugmentOp(name, magnitude, hparams) for name in OPS]
    return RandAugment(ops, layers, choice_weights=weights)
