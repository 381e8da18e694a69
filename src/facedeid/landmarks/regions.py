"""Named face regions of the 68-point iBUG 300-W / dlib layout.

Basic regions (half-open index ranges, the seeds' "python indexing")::

    jaw            0-17    chin contour, from the subject's right ear to the left ear
    right_eyebrow 17-22    the subject's right = the image's left for a frontal face
    left_eyebrow  22-27
    nose          27-36    bridge 27-30, nostril base 31-35
    right_eye     36-42
    left_eye      42-48
    mouth         48-68    outer lip 48-59, inner lip 60-67

The seeds list the nose as ``[27, 35]``, which (read as a half-open range like
every other entry) would drop point 35, the last nostril point; imutils, which
the seeds copy, uses ``(27, 36)``.  We use 27-36.

Composite regions (built from the points above):

``eyes``
    both eyes (two parts).
``eyebrows``
    both eyebrows (two parts).
``eyes_band``
    seed 003's "mask": a black rectangle over the eyes.  Defined here as the
    rectangle aligned with the line through the two eye centres that just
    contains both eyes and both eyebrows, grown by 10 % of the inter-ocular
    distance on each side (so it follows head roll).
``face_hull``
    seed 004's face mask, implemented literally: the convex hull of the
    eyebrow points (17-26), the bottom outline of the outer lip
    (54, 55, 56, 57, 58, 59, 48) and 4 interpolated points on each side of the
    face.  On each side the interpolation runs from the eyebrow's outer tip
    ``(x0, y0)`` (point 17, resp. 26) to the mouth corner ``(x5, y5)``
    (point 48, resp. 54) with the seed's formula::

        x_i = x_{i-1} + i/15 * (x5 - x0),   y_i = y0 + i/5 * (y5 - y0),   i = 1..4

    i.e. ``x_i = x0 + i(i+1)/30 * (x5 - x0)`` (quadratic) against a linear
    ``y``: the points bow outwards, towards the cheeks.  (With a linear ``x``
    they would lie on the hull edge and change nothing, which is why we keep
    the formula as printed.)  Where the seed is vague: "leftmost tip" is read
    as the landmark index (17/48 on the image-left side of a frontal face,
    26/54 on the other), not the smallest x, so the mask stays stable under
    head roll; and "bottom outline of mouth" is read as the outer lower lip.
    This mask covers eyebrows to lower lip: the chin, the jaw line, the
    forehead and the hair are **not** in it (the seed says so: it "only
    replaces the center area of the face").
``face_outline``
    not from the seeds: the convex hull of the jaw (0-16) and eyebrows
    (17-26), the whole face from brows to chin.

>>> import numpy as np
>>> pts = np.zeros((68, 2))
>>> region_points(pts, "mouth").shape
(20, 2)
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UnknownNameError

REGIONS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17),
    "right_eyebrow": (17, 22),
    "left_eyebrow": (22, 27),
    "nose": (27, 36),
    "right_eye": (36, 42),
    "left_eye": (42, 48),
    "mouth": (48, 68),
}
"""Basic regions: name -> half-open index range into the 68 points."""

COMPOSITES: tuple[str, ...] = ("eyes", "eyebrows", "eyes_band", "face_hull", "face_outline")
"""Regions built from several basic ones (see the module docstring)."""

_PARTS: dict[str, tuple[str, ...]] = {
    "eyes": ("right_eye", "left_eye"),
    "eyebrows": ("right_eyebrow", "left_eyebrow"),
}

# seed 004: lower outline of the outer lip, from the image-right corner to the image-left one
_MOUTH_BOTTOM = (54, 55, 56, 57, 58, 59, 48)
EYES_BAND_MARGIN = 0.10
"""Margin of ``eyes_band`` around eyes and eyebrows, as a fraction of the inter-ocular distance."""


def region_names() -> list[str]:
    """Every region name: the basic ones in index order, then the composites."""
    return list(REGIONS) + list(COMPOSITES)


def _check(landmarks68) -> np.ndarray:
    pts = np.asarray(landmarks68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got shape {pts.shape}")
    return pts


def _unknown(name: str) -> UnknownNameError:
    return UnknownNameError(f"unknown region '{name}'; choose one of: {', '.join(region_names())}")


def seed004_side_points(p0, p5) -> np.ndarray:
    """The 4 points seed 004 interpolates between ``p0`` (eyebrow tip) and ``p5`` (mouth corner)."""
    (x0, y0), (x5, y5) = np.asarray(p0, float), np.asarray(p5, float)
    out = np.empty((4, 2))
    x = x0
    for i in range(1, 5):
        x = x + i / 15.0 * (x5 - x0)
        out[i - 1] = (x, y0 + i / 5.0 * (y5 - y0))
    return out


def eyes_band_corners(landmarks68) -> np.ndarray:
    """The 4 corners (clockwise in image coordinates) of the ``eyes_band`` rectangle."""
    pts = _check(landmarks68)
    c_r = pts[36:42].mean(axis=0)
    c_l = pts[42:48].mean(axis=0)
    axis = c_l - c_r
    iod = float(np.hypot(*axis))
    if iod < 1e-9:
        axis, iod = np.array([1.0, 0.0]), 1e-9
    u = axis / np.hypot(*axis)
    n = np.array([-u[1], u[0]])  # u rotated by +90 deg: "down" for an upright face
    cover = pts[17:27].tolist() + pts[36:48].tolist()
    cover = np.asarray(cover)
    pu, pn = cover @ u, cover @ n
    m = EYES_BAND_MARGIN * iod
    u0, u1 = pu.min() - m, pu.max() + m
    n0, n1 = pn.min() - m, pn.max() + m
    return np.array([u0 * u + n0 * n, u1 * u + n0 * n, u1 * u + n1 * n, u0 * u + n1 * n])


def region_points(landmarks68, name: str) -> np.ndarray:
    """The ``(N, 2)`` points that define region ``name``.

    Basic regions: the landmark slice.  ``eyes``/``eyebrows``: both slices
    concatenated.  ``eyes_band``: the rectangle's 4 corners.  ``face_hull``:
    the 25 points of seed 004 (10 eyebrow points, 7 lower-lip points, 8
    interpolated).  ``face_outline``: jaw + eyebrows (27 points).

    Raises:
        UnknownNameError: ``name`` is not a region (the message lists them).
    """
    if name not in REGIONS and name not in COMPOSITES:
        raise _unknown(name)
    pts = _check(landmarks68)
    if name in REGIONS:
        a, b = REGIONS[name]
        return pts[a:b].copy()
    if name in _PARTS:
        return np.concatenate([region_points(pts, p) for p in _PARTS[name]])
    if name == "eyes_band":
        return eyes_band_corners(pts)
    if name == "face_hull":
        return np.concatenate([
            pts[17:27],
            pts[list(_MOUTH_BOTTOM)],
            seed004_side_points(pts[17], pts[48]),
            seed004_side_points(pts[26], pts[54]),
        ])
    # face_outline
    return pts[0:27].copy()


def convex_hull(points) -> np.ndarray:
    """Convex hull of 2-D points as an ordered ``(M, 2)`` float64 polygon (not repeated-closed)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return pts.copy()
    hull = cv2.convexHull(pts.astype(np.float32), returnPoints=False).ravel()
    return pts[hull]


def region_polygons(landmarks68, name: str) -> list[np.ndarray]:
    """One closed polygon per connected part of the region.

    ``eyes`` and ``eyebrows`` have two parts (one per side); every other
    region is one convex polygon (``jaw``: the hull of the open chin curve,
    i.e. the area between the curve and the line joining the ears).
    """
    if name in _PARTS:
        return [region_polygon(landmarks68, p) for p in _PARTS[name]]
    return [region_polygon(landmarks68, name)]


def region_polygon(landmarks68, name: str) -> np.ndarray:
    """The region as one closed polygon: the convex hull of :func:`region_points`.

    Returned as ``(M, 2)`` float64 vertices in order (the closing edge from the
    last to the first vertex is implied).  For two-part regions (``eyes``,
    ``eyebrows``) this is the hull of both parts together, bridge included;
    use :func:`region_polygons` for the parts.
    """
    return convex_hull(region_points(landmarks68, name))


__all__ = [
    "REGIONS", "COMPOSITES", "EYES_BAND_MARGIN", "region_names", "region_points",
    "region_polygon", "region_polygons", "convex_hull", "eyes_band_corners", "seed004_side_points",
]
