"""Draw 68-point landmarks the way the seeds do (seed 000/001 ``visualize_facial_landmarks``).

Each region but the jaw is filled with its convex hull in its own colour on
an overlay; the jaw, an open curve, is drawn as a polyline; the overlay is
blended with the image as ``alpha * overlay + (1 - alpha) * image``
(``cv2.addWeighted(overlay, alpha, output, 1 - alpha, 0)``, seed default
``alpha = 0.75``).  Differences from the seeds:

* the seeds' colour tuples are OpenCV BGR; ours are the same colours in RGB;
* the seeds' jaw loop draws every segment to point 1 (``ptB = tuple(pts[1])``,
  a typo for ``pts[l]``); we draw the intended chin polyline;
* the line width grows with the face (the seeds' 2 px at ~150 px faces);
* pixels that no drawing touches are returned unchanged, bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..imageops import to_rgb8
from ..types import Face
from .regions import REGIONS, convex_hull

# seed 000's colours (imutils order: mouth, right_eyebrow, left_eyebrow,
# right_eye, left_eye, nose, jaw), converted from BGR to RGB
SEED_COLORS: dict[str, tuple[int, int, int]] = {
    "mouth": (109, 199, 19),
    "right_eyebrow": (240, 76, 79),
    "left_eyebrow": (23, 159, 230),
    "right_eye": (168, 100, 168),
    "left_eye": (32, 163, 158),
    "nose": (32, 38, 163),
    "jaw": (220, 42, 180),
}
POINT_COLOR = (255, 255, 255)
_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    # OpenCV puts pixel centres at integer coordinates; ours are at +0.5
    return np.round((np.asarray(points, float) - 0.5) * _ONE).astype(np.int32)


def draw_landmarks(
    rgb: np.ndarray,
    faces: list[Face],
    alpha: float = 0.75,
    points: bool = True,
    colors: dict[str, tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """A copy of ``rgb`` with every face's 68 landmarks visualised.

    Args:
        rgb: the image (RGB ``uint8``; other layouts go through
            :func:`facedeid.imageops.to_rgb8`).
        faces: faces with ``landmarks68``; faces without them are skipped.
        alpha: weight of the coloured overlay (seeds: 0.75).
        points: also mark the 68 points (small dots, not blended).
        colors: region name -> RGB colour, overriding :data:`SEED_COLORS`.

    Returns:
        a new RGB ``uint8`` array.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    base = to_rgb8(rgb)
    out = base.copy()
    palette = dict(SEED_COLORS)
    if colors:
        unknown = set(colors) - set(REGIONS)
        if unknown:
            raise ValueError(f"unknown region(s) {sorted(unknown)}; regions: {', '.join(REGIONS)}")
        palette.update(colors)
    overlay = base.copy()
    touched = np.zeros(base.shape[:2], np.uint8)
    drawn = [f for f in faces if f.landmarks68 is not None]
    for face in drawn:
        pts = np.asarray(face.landmarks68, float)
        size = max(face.width, face.height, float(np.ptp(pts[:, 0])))
        thick = max(1, int(round(size / 80)))
        for name, (a, b) in REGIONS.items():
            color = tuple(int(c) for c in palette[name])
            if name == "jaw":
                poly = _fixed(pts[a:b])
                cv2.polylines(overlay, [poly], False, color, thick, cv2.LINE_AA, _SHIFT)
                cv2.polylines(touched, [poly], False, 1, thick + 2, cv2.LINE_8, _SHIFT)
            else:
                hull = _fixed(convex_hull(pts[a:b]))
                cv2.fillConvexPoly(overlay, hull, color, cv2.LINE_AA, _SHIFT)
                cv2.fillConvexPoly(touched, hull, 1, cv2.LINE_8, _SHIFT)
                cv2.polylines(touched, [hull], True, 1, 2, cv2.LINE_8, _SHIFT)
    if drawn:
        sel = touched.astype(bool)
        blend = cv2.addWeighted(overlay, alpha, base, 1.0 - alpha, 0.0)
        out[sel] = blend[sel]
    if points:
        for face in drawn:
            pts = np.asarray(face.landmarks68, float)
            size = max(face.width, face.height, float(np.ptp(pts[:, 0])))
            radius = max(1, int(round(size / 120)))
            for p in _fixed(pts):
                cv2.circle(out, (int(p[0]), int(p[1])), radius * _ONE, POINT_COLOR, -1, cv2.LINE_AA, _SHIFT)
    return out


__all__ = ["draw_landmarks", "SEED_COLORS"]
