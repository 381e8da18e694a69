"""The classic ("ad-hoc", seed 003) methods: blackout, mask, blur, pixelate.

Every function takes ``(crop, face, params)`` with ``face`` in the crop's
coordinates and returns a new array of the crop's shape and dtype (``uint8``
or ``uint16``; ``H x W``, ``H x W x 1``, ``H x W x 3`` RGB or ``H x W x 4``
RGBA, whose alpha is copied unchanged).  Colours and levels are given on the
8-bit scale and scaled by ``65535 / 255`` for ``uint16`` images.

See ``docs/METHODS.md`` for the parameters, strengths and their limits.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import cv2
import numpy as np

from ..composite import face_size, polygon_mask
from ..imageops import color_channels, dtype_max
from ..types import Face
from .base import Method

# --------------------------------------------------------------------------
# shared helpers (also used by methods.noise)

NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "orange": (255, 165, 0),
    "pink": (255, 192, 203),
    "skin": (224, 172, 105),
}


def parse_color(color: Any) -> tuple[int, int, int]:
    """An RGB triple (0-255) from a name, ``#rgb``/``#rrggbb`` hex, a gray level or an RGB sequence.

    >>> parse_color("#ff8000"), parse_color("white"), parse_color(7), parse_color([1, 2, 3])
    ((255, 128, 0), (255, 255, 255), (7, 7, 7), (1, 2, 3))
    """
    if isinstance(color, str):
        s = color.strip().lower()
        if s in NAMED_COLORS:
            return NAMED_COLORS[s]
        m = re.fullmatch(r"#?([0-9a-f]{3}|[0-9a-f]{6})", s)
        if m:
            h = m.group(1)
            if len(h) == 3:
                h = "".join(c * 2 for c in h)
            return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        parts = [p for p in re.split(r"[,\s]+", s) if p]
        if len(parts) in (1, 3) and all(re.fullmatch(r"\d+", p) for p in parts):
            return parse_color([int(p) for p in parts])
        raise ValueError(
            f"unknown colour '{color}': use a name ({', '.join(NAMED_COLORS)}), "
            "'#rrggbb', a gray level or 'r,g,b'"
        )
    if isinstance(color, (int, np.integer, float, np.floating)):
        color = [color] * 3
    vals = list(color)
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or not all(0 <= float(v) <= 255 for v in vals):
        raise ValueError(f"colour must be 3 values in 0..255, got {color!r}")
    return tuple(int(round(float(v))) for v in vals)  # type: ignore[return-value]


def color_values(color: Any, image: np.ndarray) -> np.ndarray:
    """The colour as one value per colour channel of ``image``, in its dtype's scale (float64).

    Gray images get the Rec. 601 luma of the colour.
    """
    rgb = np.asarray(parse_color(color), dtype=np.float64)
    scale = dtype_max(image.dtype) / 255.0 if np.issubdtype(image.dtype, np.integer) else 1.0 / 255.0
    if color_channels(image) == 1:
        rgb = np.array([0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]])
    return rgb * scale


def check_image(crop: np.ndarray) -> np.ndarray:
    img = np.asarray(crop)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f"unsupported image shape {img.shape}")
    return img


def on_color(crop: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A copy of ``crop`` with ``fn`` applied to its colour channels (alpha kept).

    ``fn`` receives ``H x W`` (gray) or ``H x W x C`` (C = 1 or 3) and returns
    values of that shape in any numeric dtype; results are rounded and clipped
    to the crop's dtype.
    """
    img = check_image(crop)
    out = img.copy()
    if img.size == 0:
        return out
    nc = color_channels(img)
    src = img if img.ndim == 2 else img[..., :nc]
    res = np.asarray(fn(src))
    if res.shape != src.shape:
        res = res.reshape(src.shape)
    if res.dtype != img.dtype:
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            res = np.clip(np.rint(res), info.min, info.max)
        res = res.astype(img.dtype)
    if img.ndim == 2:
        out[...] = res
    else:
        out[..., :nc] = res
    return out


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


# --------------------------------------------------------------------------
# blackout


def _blackout(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    img = check_image(crop)
    vals = color_values(params.get("color", "black"), img)
    return on_color(img, lambda src: np.broadcast_to(
        vals if src.ndim == 3 else vals[0], src.shape).astype(np.float64))


BLACKOUT = Method(
    name="blackout",
    fn=_blackout,
    defaults={"color": "black"},
    strength=None,
    strength_doc="no strength: the whole region is painted with `color` (name, '#rrggbb' or 'r,g,b')",
)

# --------------------------------------------------------------------------
# blur

AUTO_BLUR_RATIO = 0.75
"""``k="auto"``: the kernel size is this fraction of the face size ``sqrt(w*h)`` (see docs/METHODS.md)."""

FAST_BLUR_SIGMA = 12.0
"""Above this sigma (pixels) the Gaussian is computed on a downscaled copy (see :func:`gaussian_blur`)."""


def _odd(k: float) -> int:
    k = max(1, int(round(k)))
    return k if k % 2 else k + 1


def sigma_for_kernel(k: int) -> float:
    """OpenCV's sigma for a Gaussian kernel of odd size ``k`` (``cv2.getGaussianKernel`` rule)."""
    return 0.3 * ((k - 1) * 0.5 - 1) + 0.8


def blur_kernel_size(k: Any, face: Face) -> int:
    """The odd kernel size in pixels for the ``k`` parameter.

    ``k`` may be a number of pixels (even values are rounded up to odd),
    ``"auto"``/``None`` (``AUTO_BLUR_RATIO`` x face size) or a percentage of
    the face size such as ``"40%"``.
    """
    size = face_size(face)
    if k is None or (isinstance(k, str) and k.strip().lower() == "auto"):
        return _odd(AUTO_BLUR_RATIO * size)
    if isinstance(k, str) and k.strip().endswith("%"):
        pct = _number(k.strip()[:-1], "blur k percentage")
        if pct < 0:
            raise ValueError(f"blur k must be >= 0%, got {k}")
        return _odd(pct / 100.0 * size)
    val = _number(k, "blur k")
    if not val >= 1:
        raise ValueError(f"blur k must be >= 1 pixel (1 = no blur), 'auto' or 'NN%', got {k!r}")
    return _odd(val)


def _cv_blur(src: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    out = cv2.GaussianBlur(src, (ksize, ksize), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(src.shape)


def gaussian_blur(src: np.ndarray, k: int) -> np.ndarray:
    """Gaussian blur with OpenCV's kernel of odd size ``k`` (sigma by OpenCV's rule).

    Borders are mirrored (``BORDER_REFLECT_101``): only pixels of ``src``
    enter the result, none from outside and no constant colour.  For
    sigma above :data:`FAST_BLUR_SIGMA` the same Gaussian is computed on a
    copy downscaled (area averaging) by ``sigma / 6`` and upscaled back
    bilinearly, with the blur's sigma reduced by the variance those two
    resamplings add; it costs O(1) per pixel instead of O(k) and differs from
    the direct filter by about 1 gray level (see tests).
    """
    if k <= 1 or src.size == 0:
        return src.copy()
    sigma = sigma_for_kernel(k)
    h, w = src.shape[:2]
    if sigma <= FAST_BLUR_SIGMA or min(h, w) < 4:
        return _cv_blur(src, k, sigma)
    step = sigma / 6.0
    sw, sh = max(1, int(round(w / step))), max(1, int(round(h / step)))
    small = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA).reshape((sh, sw) + src.shape[2:])
    sx, sy = w / sw, h / sh
    # area downscale ~ box of width s (var s^2/12), bilinear upscale ~ triangle (var s^2/6)
    sig_x = math.sqrt(max(sigma ** 2 - sx ** 2 / 4.0, 0.25)) / sx
    sig_y = math.sqrt(max(sigma ** 2 - sy ** 2 / 4.0, 0.25)) / sy
    kx, ky = _odd(6.6 * sig_x), _odd(6.6 * sig_y)
    small = cv2.GaussianBlur(small, (kx, ky), sig_x, sigmaY=sig_y,
                             borderType=cv2.BORDER_REFLECT_101).reshape(small.shape)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(src.shape)


DEFAULT_GRAIN = 6.0
"""Default ``grain`` of ``blur``: std of the monochrome Gaussian grain added after blurring,
in 8-bit levels.

Why: a face that is already smooth (dark, defocused, low-contrast, e.g. an
audience in the dark) is left nearly unchanged by any Gaussian blur: on
``short_hamilton_clip.mp4`` even a kernel of 3x the face size leaves 6 % of
the judged faces with SSIM >= 0.9 to the original, and YuNet still finds most
of them in the output.  A fine grain of std 6 levels changes every such face
(SSIM well below 0.9 after H.264 encoding; measured in
``benchmarks/results/video.md``) and removes what deconvolution ("unblurring")
needs: a blur without noise is an invertible filter up to rounding.  ``grain=0``
is seed 003's pure Gaussian blur (used to reproduce its tables)."""


def _grain(params: dict[str, Any]) -> float:
    g = params.get("grain", DEFAULT_GRAIN)
    val = _number(DEFAULT_GRAIN if g is None else g, "blur grain")
    if not val >= 0:
        raise ValueError(f"blur grain must be a std >= 0 in 8-bit levels (0 = none), got {g!r}")
    return float(val)


def _add_grain(src: np.ndarray, blurred: np.ndarray, grain: float, rng: np.random.Generator) -> np.ndarray:
    """``blurred`` plus zero-mean monochrome Gaussian grain of std ``grain`` (8-bit levels).

    One value per pixel, the same in every colour channel (no colour speckle);
    scaled to the dtype's range (x 257 for ``uint16``).
    """
    top = dtype_max(src.dtype) if np.issubdtype(src.dtype, np.integer) else 1.0
    sigma = grain * top / 255.0
    noise = rng.normal(0.0, sigma, size=src.shape[:2]).astype(np.float32)
    out = blurred.astype(np.float32)
    return out + (noise if out.ndim == 2 else noise[..., None])


def _blur(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    k = blur_kernel_size(params.get("k", "auto"), face)
    grain = _grain(params)
    if grain == 0:
        return on_color(crop, lambda src: gaussian_blur(src, k))
    rng = params.get("rng")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return on_color(crop, lambda src: _add_grain(src, gaussian_blur(src, k), grain, rng))


BLUR = Method(
    name="blur",
    fn=_blur,
    defaults={"k": "auto", "grain": DEFAULT_GRAIN},
    strength="k",
    strength_doc=(
        "k = Gaussian kernel size in pixels (odd; even values round up; 1 = no blur; "
        "sigma = 0.3*((k-1)/2-1)+0.8), or 'auto' = 0.75 x face size sqrt(w*h), or 'NN%' of the face size; "
        "larger = stronger. grain = std of the monochrome Gaussian grain added after blurring, in "
        "8-bit levels (default 6; 0 = pure Gaussian blur, as in seed 003)"
    ),
)

# --------------------------------------------------------------------------
# pixelate

DEFAULT_PIXELATE_K = 8


def _block_starts(n: int, origin: float, step: float) -> np.ndarray:
    """Start index of each run of pixels (centres at i + 0.5) in the same block."""
    idx = np.floor((np.arange(n) + 0.5 - origin) / step).astype(np.int64)
    return np.concatenate([[0], np.flatnonzero(np.diff(idx)) + 1])


def pixelate_blocks(src: np.ndarray, face: Face, k: int) -> np.ndarray:
    """Replace each block of a ``k x k`` grid over the face box by its mean.

    The grid is anchored on the face box (its edges are block edges) and
    continues over the rest of the crop with the same block size
    (``width / k`` by ``height / k``); blocks cut by the crop edge average the
    pixels they have.  A pixel belongs to the block holding its centre.
    """
    h, w = src.shape[:2]
    bw = max(face.width, 1e-6) / k
    bh = max(face.height, 1e-6) / k
    rs = _block_starts(h, face.box[1], bh)
    cs = _block_starts(w, face.box[0], bw)
    data = src.astype(np.float64)
    if data.ndim == 2:
        data = data[..., None]
    sums = np.add.reduceat(np.add.reduceat(data, rs, axis=0), cs, axis=1)
    rlen = np.diff(np.append(rs, h))
    clen = np.diff(np.append(cs, w))
    means = sums / (rlen[:, None, None] * clen[None, :, None])
    out = np.repeat(np.repeat(means, rlen, axis=0), clen, axis=1)
    return out.reshape(src.shape)


def _pixelate(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    k = params.get("k", DEFAULT_PIXELATE_K)
    kv = _number(k, "pixelate k")
    if not (kv >= 1 and float(kv).is_integer()):
        raise ValueError(f"pixelate k must be a whole number of blocks >= 1, got {k!r}")
    return on_color(crop, lambda src: pixelate_blocks(src, face, int(kv)))


PIXELATE = Method(
    name="pixelate",
    fn=_pixelate,
    defaults={"k": DEFAULT_PIXELATE_K},
    strength="k",
    strength_doc=(
        "k = number of blocks across the face box in each direction (seed 003: the face "
        "'represented in k x k pixels'); SMALLER = stronger; k >= face width in pixels changes nothing"
    ),
)

# --------------------------------------------------------------------------
# mask (paint named landmark regions)

MASK_FILLS = ("solid", "blur")


def _mask(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    from ..landmarks.regions import region_polygons

    img = check_image(crop)
    if face.landmarks68 is None:
        raise ValueError("method 'mask' needs 68-point landmarks (run facedeid.landmarks.Dlib68Predictor)")
    regions = params.get("regions", ("eyes_band",))
    if isinstance(regions, str):
        regions = [r for r in re.split(r"[,\s]+", regions) if r]
    fill = params.get("fill", "solid")
    if fill not in MASK_FILLS:
        raise ValueError(f"mask fill must be one of {', '.join(MASK_FILLS)}, got {fill!r}")
    h, w = img.shape[:2]
    sel = np.zeros((h, w), bool)
    for name in regions:
        for poly in region_polygons(face.landmarks68, name):
            sel |= polygon_mask(h, w, poly)
    if fill == "solid":
        painted = _blackout(img, face, {"color": params.get("color", "black")})
    else:
        painted = _blur(img, face, {"k": params.get("k", "auto")})
    out = img.copy()
    out[sel] = painted[sel]
    return out


MASK = Method(
    name="mask",
    fn=_mask,
    defaults={"regions": ("eyes_band",), "color": "black", "fill": "solid", "k": "auto"},
    strength=None,
    strength_doc=(
        "no strength: paints the landmark regions `regions` (default seed 003's eyes band) "
        "with `color` (fill='solid') or blurs them (fill='blur', kernel `k` as for blur)"
    ),
    needs_landmarks68=True,
    paints_whole_region=False,
)

__all__ = [
    "BLACKOUT", "MASK", "BLUR", "PIXELATE", "AUTO_BLUR_RATIO", "DEFAULT_PIXELATE_K",
    "parse_color", "color_values", "on_color", "gaussian_blur", "blur_kernel_size",
    "sigma_for_kernel", "pixelate_blocks",
]
