"""OpenCV's Haar cascade (Viola-Jones) frontal-face detector.

Model: ``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades``
(ships with ``opencv-python(-headless)`` < 5; Intel licence, redistributable).
No landmarks. Kept as the seed projects' detector and as a cheap, weak baseline.

Score: ``detectMultiScale3(..., outputRejectLevels=True)`` reports, per grouped
window, the last stage reached and that stage's summed weak-classifier response
(``levelWeights``). Windows that passed every stage get
``sigmoid((levelWeight - 2) / 2)`` (a margin of 2 maps to 0.5); windows that
stopped earlier are scaled down by the fraction of stages passed.

Thread safety: ``cv2.CascadeClassifier`` is not documented as thread-safe;
calls are serialised per instance with a lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelNotFoundError
from ..types import Face
from .base import Detector


class HaarDetector(Detector):
    """Haar cascade on the grayscale image.

    Args:
        threshold: minimum score (default 0.5).
        scale_factor: pyramid step (1.1, OpenCV's default).
        min_neighbors: grouping support (3, OpenCV's default).
        min_size: smallest face side in pixels (default 12).
        cascade: XML file name inside ``cv2.data.haarcascades`` (or a path).
    """

    name = "haar"
    default_threshold = 0.5

    def __init__(self, threshold: float | None = None, scale_factor: float = 1.1,
                 min_neighbors: int = 3, min_size: int = 12,
                 cascade: str = "haarcascade_frontalface_default.xml"):
        super().__init__(threshold)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.cascade = cascade
        self._clf = None
        self._stages = 1
        self._lock = threading.Lock()

    def _load(self):
        if self._clf is None:
            path = Path(self.cascade)
            if not path.is_file():
                base = getattr(getattr(cv2, "data", None), "haarcascades", None)
                if base is None:
                    raise ModelNotFoundError("this OpenCV build ships no Haar cascades (OpenCV >= 5?)")
                path = Path(base) / self.cascade
            clf = cv2.CascadeClassifier(str(path))
            if clf.empty():
                raise ModelNotFoundError(f"cannot load Haar cascade {path}")
            # number of stages, for the score of windows rejected before the last stage
            text = path.read_text(errors="ignore")
            start = text.find("<stageNum>")
            if start >= 0:
                self._stages = int(text[start + 10:text.find("</stageNum>")].strip())
            self._clf = clf
        return self._clf

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if h < self.min_size or w < self.min_size:
            return []
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        with self._lock:
            clf = self._load()
            rects, levels, weights = clf.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        faces = []
        for (x, y, bw, bh), lvl, wt in zip(np.reshape(rects, (-1, 4)), np.ravel(levels), np.ravel(weights)):
            score = 1.0 / (1.0 + np.exp(-(float(wt) - 2.0) / 2.0))
            passed = min(1.0, (int(lvl) + 1) / max(self._stages, 1))
            faces.append(Face(box=(x, y, x + bw, y + bh), score=score * passed, detector=self.name))
        return faces
