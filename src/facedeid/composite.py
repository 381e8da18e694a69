"""Region masks and compositing: which pixels a method may change, and how much.

A de-identification step for one face is::

    mask, bbox = region_mask(h, w, face, shape="ellipse", mask_scale=1.3, feather=0.1)
    crop, face_c = crop_for(image, face, bbox)
    painted = method(crop, face_c, params)        # may change every pixel of the crop
    image = paste(image, painted, mask, bbox)     # only the region's pixels change

(:func:`paint_face` does exactly that.)

Region shapes (the *nominal region* ``R``):

``box``
    the face box scaled about its centre by ``mask_scale``.
``ellipse``
    the ellipse inscribed in that scaled box.
``hull``
    seed 004's face mask (:mod:`facedeid.landmarks.regions` ``face_hull``:
    eyebrows, lower lip outline and 8 interpolated cheek points) scaled about
    the polygon's centroid by ``mask_scale``.  Needs ``face.landmarks68``.

A pixel belongs to ``R`` when its centre (``(j + 0.5, i + 0.5)`` for column
``j``, row ``i``) does.

Feather (soft edge).  ``feather`` is the width of the soft edge as a fraction
of the face size ``sqrt(face.width * face.height)``; ``f = feather * size``
pixels.  The soft edge lies **outside** ``R``: with ``d`` the Euclidean
distance of a pixel centre from ``R`` (0 inside)::

    mask = 1                          d == 0   (all of R: fully painted core)
    mask = smoothstep(1 - d / f)      0 < d < f
    mask = 0                          d >= f   (pixel kept bit-identical)

so feathering never weakens the de-identification of the nominal region: it
only blends a band of width ``f`` around it.  ``feather = 0`` gives a hard
edge (mask is exactly 0 or 1).  The mask is non-increasing with distance from
``R``.  (The ellipse's ``d`` is the first-order distance ``(g - 1) / |grad g|``
of its normalised radius ``g``; exact on the axes; box and hull use exact
Euclidean distance.)

:func:`paste` guarantees: where ``mask == 1`` the painted pixel exactly, where
``mask == 0`` (and everywhere outside ``bbox``) the original pixel exactly,
``original + (painted - original) * mask`` rounded in between; alpha channels
are never changed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import UnknownNameError
from .imageops import color_channels
from .types import Face

SHAPES = ("ellipse", "box", "hull")
"""Region shapes accepted by :func:`region_mask`."""

BBox = tuple[int, int, int, int]


def face_size(face: Face) -> float:
    """The face's size in pixels: ``sqrt(width * height)`` of its box."""
    return math.sqrt(max(face.width, 0.0) * max(face.height, 0.0))


#: Small faces are painted with a larger region: their detection boxes are loose
#: and often off-centre (measured on WIDER FACE, docs/DETECTION.md). A face of
#: size <= ``SMALL_FACE_SIZES[0]`` px gets ``SMALL_FACE_SCALE``; from there the
#: scale falls linearly to the requested ``mask_scale`` at ``SMALL_FACE_SIZES[1]`` px.
SMALL_FACE_SCALE = 3.0
SMALL_FACE_SIZES = (20.0, 40.0)


def grown_mask_scale(size, mask_scale: float = 1.3, small_scale: float | None = SMALL_FACE_SCALE,
                     sizes: tuple[float, float] = SMALL_FACE_SIZES):
    """The mask scale painted for a face of ``size`` px (:func:`face_size`).

    ``mask_scale + (small_scale - mask_scale) * t`` with ``t = 1`` for
    ``size <= sizes[0]``, ``0`` for ``size >= sizes[1]``, linear in between: faces
    of ``sizes[1]`` px and more get exactly ``mask_scale``. ``small_scale`` None (or
    not above ``mask_scale``) turns the growth off. ``size`` may be an array.

    >>> float(grown_mask_scale(100.0)), float(grown_mask_scale(30.0)), float(grown_mask_scale(10.0))
    (1.3, 2.15, 3.0)
    """
    size = np.asarray(size, dtype=np.float64)
    lo, hi = (float(v) for v in sizes)
    if not 0 <= lo < hi:
        raise ValueError(f"need 0 <= sizes[0] < sizes[1], got {sizes}")
    if small_scale is None or not small_scale > mask_scale:
        out = np.full(size.shape, float(mask_scale))
    else:
        t = np.clip((hi - size) / (hi - lo), 0.0, 1.0)
        out = float(mask_scale) + (float(small_scale) - float(mask_scale)) * t
    return out if out.ndim else out[()]


def _polygon_centroid(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2.0
    if abs(area) < 1e-9:
        return poly.mean(axis=0)
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6.0 * area)


def region_polygon_for(face: Face, mask_scale: float = 1.3, region: str = "face_hull") -> np.ndarray:
    """The ``hull`` shape's polygon in image coordinates (scaled about its centroid).

    Raises:
        ValueError: the face has no 68-point landmarks.
    """
    if face.landmarks68 is None:
        raise ValueError(
            "mask shape 'hull' needs 68-point landmarks on the face "
            "(run facedeid.landmarks.Dlib68Predictor first, or use shape 'ellipse'/'box')"
        )
    from .landmarks.regions import region_polygon

    poly = region_polygon(face.landmarks68, region)
    c = _polygon_centroid(poly)
    return c + (poly - c) * float(mask_scale)


def _ccw(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    area = (x * np.roll(y, -1) - np.roll(x, -1) * y).sum()
    return poly if area >= 0 else poly[::-1]


def _polygon_distance(poly: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                      inside_only: bool = False) -> np.ndarray:
    """Euclidean distance of grid points from a convex polygon (0 inside).

    With ``inside_only`` the result is only meaningful as ``<= 0`` (inside) / ``> 0``.
    """
    X = xs[None, :]
    Y = ys[:, None]
    shape = (len(ys), len(xs))
    if len(poly) < 3:  # degenerate: distance to the points / segment
        d = np.full(shape, np.inf)
        for p in poly:
            d = np.minimum(d, np.hypot(X - p[0], Y - p[1]))
        if len(poly) == 2:
            d = np.minimum(d, _segment_distance(poly[0], poly[1], X, Y))
        return d
    poly = _ccw(poly)
    inside = np.ones(shape, bool)
    dist = np.full(shape, np.inf)
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        ex, ey = b - a
        # positive shoelace area: the interior is on the side where cross >= 0
        cross = ex * (Y - a[1]) - ey * (X - a[0])
        inside &= cross >= 0
        if not inside_only:
            dist = np.minimum(dist, _segment_distance(a, b, X, Y))
    return np.where(inside, 0.0, dist)


def _segment_distance(a, b, X, Y) -> np.ndarray:
    ex, ey = b[0] - a[0], b[1] - a[1]
    ll = ex * ex + ey * ey
    dx, dy = X - a[0], Y - a[1]
    if ll <= 0:
        return np.hypot(dx, dy)
    t = np.clip((dx * ex + dy * ey) / ll, 0.0, 1.0)
    return np.hypot(dx - t * ex, dy - t * ey)


def polygon_mask(height: int, width: int, poly) -> np.ndarray:
    """Boolean ``height x width`` mask of the pixels whose centres lie in a convex polygon."""
    out = np.zeros((int(height), int(width)), bool)
    poly = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if len(poly) < 3 or out.size == 0:
        return out
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    x0, y0 = max(math.floor(lo[0]), 0), max(math.floor(lo[1]), 0)
    x1, y1 = min(math.ceil(hi[0]) + 1, out.shape[1]), min(math.ceil(hi[1]) + 1, out.shape[0])
    if x1 <= x0 or y1 <= y0:
        return out
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5
    ys = np.arange(y0, y1, dtype=np.float64) + 0.5
    out[y0:y1, x0:x1] = _polygon_distance(poly, xs, ys, inside_only=True) <= 0
    return out


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def region_mask(
    height: int,
    width: int,
    face: Face,
    shape: str = "ellipse",
    mask_scale: float = 1.3,
    feather: float = 0.0,
    region: str = "face_hull",
) -> tuple[np.ndarray, BBox]:
    """The paint mask of one face, cropped to where it is non-zero.

    Args:
        height, width: image size.
        face: the face (image coordinates).
        shape: ``"ellipse"``, ``"box"`` or ``"hull"`` (see the module docstring).
        mask_scale: scale of the nominal region (box/ellipse: about the box
            centre; hull: about the polygon's centroid).
        feather: soft-edge width as a fraction of :func:`face_size`, outside
            the nominal region (0 = hard edge).
        region: the landmark region used by ``hull`` (default seed 004's
            ``face_hull``; ``face_outline`` also covers the chin).

    Returns:
        ``(mask, bbox)``: ``mask`` is ``float32`` in [0, 1] of shape
        ``(y1 - y0, x1 - x0)``; ``bbox = (x0, y0, x1, y1)`` are ints clipped to
        the image (x1/y1 exclusive; empty when the region is off the image).

    Raises:
        UnknownNameError: unknown shape.
        ValueError: ``hull`` without landmarks68, or bad scale/feather.
    """
    if shape not in SHAPES:
        raise UnknownNameError(f"unknown mask shape '{shape}'; choose one of: {', '.join(SHAPES)}")
    if not (mask_scale > 0 and math.isfinite(mask_scale)):
        raise ValueError(f"mask_scale must be a positive number, got {mask_scale}")
    if not (feather >= 0 and math.isfinite(feather)):
        raise ValueError(f"feather must be >= 0, got {feather}")
    height, width = int(height), int(width)
    f = float(feather) * face_size(face)

    if shape == "hull":
        poly = region_polygon_for(face, mask_scale, region)
        lo, hi = poly.min(axis=0), poly.max(axis=0)
    else:
        cx, cy = face.center
        hw, hh = face.width * mask_scale / 2.0, face.height * mask_scale / 2.0
        lo, hi = np.array([cx - hw, cy - hh]), np.array([cx + hw, cy + hh])

    x0 = min(max(math.floor(lo[0] - f), 0), width)
    y0 = min(max(math.floor(lo[1] - f), 0), height)
    x1 = max(min(math.ceil(hi[0] + f), width), x0)
    y1 = max(min(math.ceil(hi[1] + f), height), y0)
    bbox = (x0, y0, x1, y1)
    if x1 == x0 or y1 == y0:
        return np.zeros((y1 - y0, x1 - x0), np.float32), bbox

    xs = np.arange(x0, x1, dtype=np.float64) + 0.5
    ys = np.arange(y0, y1, dtype=np.float64) + 0.5

    if shape == "box":
        dx = np.maximum(np.abs(xs - cx) - hw, 0.0)
        dy = np.maximum(np.abs(ys - cy) - hh, 0.0)
        if f <= 0:
            return ((dy[:, None] == 0) & (dx[None, :] == 0)).astype(np.float32), bbox
        d = np.hypot(dy[:, None], dx[None, :])
    elif shape == "ellipse":
        a, b = max(hw, 1e-9), max(hh, 1e-9)
        X = ((xs - cx) / a)[None, :]
        Y = ((ys - cy) / b)[:, None]
        g2 = X * X + Y * Y
        if f <= 0:
            return (g2 <= 1.0).astype(np.float32), bbox
        g = np.sqrt(g2)
        grad = np.sqrt((X / a) ** 2 + (Y / b) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(g2 <= 1.0, 0.0, (g - 1.0) * g / np.maximum(grad, 1e-300))
    else:
        if f <= 0:
            return (_polygon_distance(poly, xs, ys, inside_only=True) <= 0).astype(np.float32), bbox
        d = _polygon_distance(poly, xs, ys)

    t = np.clip(1.0 - d / f, 0.0, 1.0)
    return _smoothstep(t).astype(np.float32), bbox


def crop_for(image: np.ndarray, face: Face, bbox: BBox) -> tuple[np.ndarray, Face]:
    """A copy of ``image[y0:y1, x0:x1]`` and ``face`` in the crop's coordinates."""
    x0, y0, x1, y1 = bbox
    return image[y0:y1, x0:x1].copy(), face.transformed(dx=-x0, dy=-y0)


def paste(image: np.ndarray, painted_crop: np.ndarray, mask: np.ndarray, bbox: BBox, *,
          out: np.ndarray | None = None) -> np.ndarray:
    """A new image: ``image`` with ``painted_crop`` blended in through ``mask`` at ``bbox``.

    Exactly the painted pixel where ``mask == 1``, exactly the original where
    ``mask == 0`` or outside ``bbox``, ``rint(orig + (painted - orig) * mask)``
    in between.  Works for ``H x W`` and ``H x W x C`` (C = 1, 3, 4), any
    integer or float dtype; the alpha channel of RGBA images is left unchanged.

    ``out``: write into this array instead of a new copy (it may be ``image``
    itself, to paint in place; it must hold the same pixels as ``image``). Saves a
    whole-image copy per face (video paints several faces per 1080p frame).
    """
    img = np.asarray(image)
    if out is None:
        out = img.copy()
    elif out.shape != img.shape or out.dtype != img.dtype:
        raise ValueError(f"out has shape {out.shape} {out.dtype}, expected {img.shape} {img.dtype}")
    x0, y0, x1, y1 = (int(v) for v in bbox)
    region = img[y0:y1, x0:x1]
    if region.size == 0:
        return out
    painted = np.asarray(painted_crop)
    if painted.shape != region.shape:
        raise ValueError(f"painted crop has shape {painted.shape}, expected {region.shape}")
    if painted.dtype != img.dtype:
        raise ValueError(f"painted crop has dtype {painted.dtype}, expected {img.dtype}")
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != region.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape}, expected {region.shape[:2]}")

    nc = color_channels(img)
    dst = out[y0:y1, x0:x1]
    if img.ndim == 3:
        dst, region, painted = dst[..., :nc], region[..., :nc], painted[..., :nc]
        m = mask[..., None]
    else:
        m = mask
    where = np.broadcast_to(m > 0, dst.shape)
    if not where.any():
        return out
    if np.all((mask == 0) | (mask == 1)):
        np.copyto(dst, painted, where=where)
        return out
    orig = region.astype(np.float32)
    blend = orig + (painted.astype(np.float32) - orig) * np.clip(m, 0.0, 1.0)
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        blend = np.clip(np.rint(blend), info.min, info.max)
    np.copyto(dst, blend.astype(img.dtype), where=where)
    return out


def paint_face(
    image: np.ndarray,
    face: Face,
    method: Any,
    params: dict[str, Any] | None = None,
    *,
    shape: str = "ellipse",
    mask_scale: float = 1.3,
    feather: float = 0.0,
) -> np.ndarray:
    """Apply ``method`` (a :class:`~facedeid.methods.base.Method` or any
    ``(crop, face, params) -> crop`` callable) to one face's region; a new image."""
    h, w = image.shape[:2]
    mask, bbox = region_mask(h, w, face, shape, mask_scale, feather)
    if mask.size == 0 or not mask.any():
        return np.asarray(image).copy()
    crop, face_c = crop_for(image, face, bbox)
    if params is None:
        params = dict(getattr(method, "defaults", {}))
    painted = method(crop, face_c, params)
    return paste(image, painted, mask, bbox)


__all__ = ["SHAPES", "SMALL_FACE_SCALE", "SMALL_FACE_SIZES", "grown_mask_scale", "face_size", "polygon_mask", "region_mask", "region_polygon_for", "crop_for", "paste", "paint_face"]
