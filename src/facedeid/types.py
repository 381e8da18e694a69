"""The one currency of the pipeline: :class:`Face`.

Conventions used everywhere in facedeid:

* Images are numpy arrays ``H x W`` (grayscale) or ``H x W x C`` with C in
  {1, 3, 4}, channel order **RGB(A)**, dtype ``uint8`` or ``uint16``.
  Detectors and recognizers receive an RGB ``uint8`` view (see
  :func:`facedeid.imageops.to_rgb8`); methods keep the input's dtype and channels.
* Coordinates are floating-point pixels of the image as displayed (after EXIF
  orientation); boxes are ``(x1, y1, x2, y2)`` with x2/y2 exclusive.
* 5-point landmarks are ordered as the common detectors give them:
  eye with smaller x, eye with larger x, nose tip, mouth corner with smaller x,
  mouth corner with larger x (for a frontal face: the subject's right eye first).
* 68-point landmarks follow the iBUG 300-W / dlib layout (see
  :mod:`facedeid.landmarks.regions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


def _as_points(value: Any, n: int | None) -> np.ndarray | None:
    if value is None:
        return None
    pts = np.asarray(value, dtype=np.float64).reshape(-1, 2)
    if n is not None and len(pts) != n:
        raise ValueError(f"expected {n} landmark points, got {len(pts)}")
    pts.setflags(write=False)
    return pts


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in image pixels.
        score: detector confidence in [0, 1] (backend-specific scale).
        landmarks5: ``(5, 2)`` array or ``None``.
        landmarks68: ``(68, 2)`` array or ``None``.
        detector: name of the backend that found the face.
        face_id: index of the face in its image (or track id in video).
        extra: free-form, JSON-serializable backend details.

    >>> f = Face(box=(10, 20, 110, 140), score=0.9)
    >>> f.width, f.height, f.center
    (100.0, 120.0, (60.0, 80.0))
    """

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks5: np.ndarray | None = None
    landmarks68: np.ndarray | None = None
    detector: str = ""
    face_id: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        if not (x2 >= x1 and y2 >= y1):
            raise ValueError(f"invalid face box {self.box}")
        object.__setattr__(self, "box", (x1, y1, x2, y2))
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "landmarks5", _as_points(self.landmarks5, 5))
        object.__setattr__(self, "landmarks68", _as_points(self.landmarks68, 68))

    # geometry -------------------------------------------------------------
    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def replace(self, **changes: Any) -> "Face":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)

    def transformed(self, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> "Face":
        """Map every coordinate by ``p * scale + (dx, dy)``."""
        off = np.array([dx, dy])
        x1, y1, x2, y2 = self.box
        return self.replace(
            box=(x1 * scale + dx, y1 * scale + dy, x2 * scale + dx, y2 * scale + dy),
            landmarks5=None if self.landmarks5 is None else self.landmarks5 * scale + off,
            landmarks68=None if self.landmarks68 is None else self.landmarks68 * scale + off,
        )

    def clipped(self, width: int, height: int) -> "Face":
        """The same face with its box clipped to the image."""
        x1, y1, x2, y2 = self.box
        return self.replace(
            box=(min(max(x1, 0), width), min(max(y1, 0), height),
                 min(max(x2, 0), width), min(max(y2, 0), height))
        )

    def iou(self, other: "Face") -> float:
        return box_iou(self.box, other.box)

    def to_dict(self) -> dict:
        """JSON-ready dict (rounded to 0.01 px)."""
        d: dict[str, Any] = {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 4),
        }
        if self.landmarks5 is not None:
            d["landmarks5"] = np.round(self.landmarks5, 2).tolist()
        if self.landmarks68 is not None:
            d["landmarks68"] = np.round(self.landmarks68, 2).tolist()
        if self.detector:
            d["detector"] = self.detector
        if self.face_id is not None:
            d["id"] = self.face_id
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Face":
        return cls(
            box=tuple(d["box"]),
            score=d.get("score", 1.0),
            landmarks5=d.get("landmarks5"),
            landmarks68=d.get("landmarks68"),
            detector=d.get("detector", ""),
            face_id=d.get("id"),
        )


def box_iou(a, b) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
