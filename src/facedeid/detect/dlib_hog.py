"""dlib's HOG + linear SVM frontal face detector (``dlib.get_frontal_face_detector``).

Built into ``dlib-bin`` (Boost licence). No landmarks here (facedeid's landmark
stage adds them). Slow on large images when upsampling; frontal faces >= ~40 px
at upsample 0, >= ~20 px at upsample 1.

Score: the SVM margin ``m`` from ``detector.run(img, upsample, adjust_threshold)``
mapped to ``sigmoid(m)`` (dlib's own decision threshold, m = 0, is 0.5). The run
asks dlib only for windows above ``logit(threshold)``.

Thread safety: calls are serialised per instance with a lock.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ..types import Face
from .base import Detector


class DlibHogDetector(Detector):
    """dlib HOG detector.

    Args:
        threshold: minimum score (default 0.4, i.e. margin >= -0.4: recall first).
        upsample: image doublings before detection (default 1, as dlib's examples).
    """

    name = "dlib-hog"
    default_threshold = 0.4

    def __init__(self, threshold: float | None = None, upsample: int = 1):
        super().__init__(threshold)
        self.upsample = int(upsample)
        self._det = None
        self._lock = threading.Lock()

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        import dlib

        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        t = min(max(self.threshold, 1e-6), 1 - 1e-6)
        adjust = math.log(t / (1 - t))
        with self._lock:
            if self._det is None:
                self._det = dlib.get_frontal_face_detector()
            rects, scores, _ = self._det.run(np.ascontiguousarray(rgb), self.upsample, adjust)
        faces = []
        for r, s in zip(rects, scores):
            x1, y1 = min(max(r.left(), 0), w), min(max(r.top(), 0), h)
            x2, y2 = min(max(r.right() + 1, 0), w), min(max(r.bottom() + 1, 0), h)
            if x2 > x1 and y2 > y1:
                faces.append(Face(box=(x1, y1, x2, y2), score=1.0 / (1.0 + math.exp(-s)),
                                  detector=self.name))
        return faces
