"""Face detectors: one interface (:class:`Detector`), backends chosen by name.

>>> from facedeid.detect import get_detector
>>> det = get_detector("yunet", threshold=0.5)   # doctest: +SKIP
>>> faces = det.detect(rgb_image)                   # doctest: +SKIP

Names:

* a backend: ``yunet``, ``centerface``, ``retinaface``, ``haar``, ``dlib-hog``;
* ``yunet-tiled``: the measured default configuration, also reachable as
  ``default`` (see :data:`DEFAULT_DETECTOR` and ``docs/DETECTION.md``);
  ``yunet-tiled-v1`` is the previous default (no agreement rule);
* backends joined with ``+`` (``yunet+centerface``): the union of their
  detections, duplicates fused (:class:`~facedeid.detect.ensemble.EnsembleDetector`).

Options understood by :func:`get_detector` on top of the backend's own keyword
arguments: ``scale`` (detect on a resized copy, boxes mapped back) and ``tile``
(an extra pass on upscaled overlapping tiles for small faces).

This module also holds the small numeric helpers every backend shares (NMS,
landmark ordering, onnxruntime session options); they import nothing heavy.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ..errors import UnknownNameError
from ..registry import Registry
from .base import Detector

DETECTORS = Registry("detector", {
    "yunet": "facedeid.detect.yunet:YuNetDetector",
    "centerface": "facedeid.detect.centerface:CenterFaceDetector",
    "retinaface": "facedeid.detect.retinaface:RetinaFaceDetector",
    "haar": "facedeid.detect.haar:HaarDetector",
    "dlib-hog": "facedeid.detect.dlib_hog:DlibHogDetector",
    "yunet-tiled": "facedeid.detect.multiscale:default_detector",
    "yunet-tiled-v1": "facedeid.detect.multiscale:default_detector_v1",
})

#: The measured default (benchmarks/bench_detection.py, docs/DETECTION.md): YuNet
#: on 1.5x-upscaled tiles for small faces plus a half-size pass for large ones
#: (:func:`facedeid.detect.multiscale.default_detector`). ``"default"`` is an alias.
DEFAULT_DETECTOR = "yunet-tiled"


def get_detector(name: str = DEFAULT_DETECTOR, *, scale: Any = None, tile: Any = None,
                 **kwargs) -> Detector:
    """Instantiate a detector by registry name.

    Args:
        name: a registry name, ``"default"`` (:data:`DEFAULT_DETECTOR`), or names
            joined with ``+`` (union).
        scale: detect on a copy resized by this factor (``0.5``), to a size
            (``(640, 360)`` or ``"640x360"``); boxes come back in the input's pixels.
        tile: ``True`` or an upscale factor (``2``): add a pass on upscaled,
            overlapping tiles (:class:`~facedeid.detect.multiscale.TiledDetector`).
        **kwargs: passed to each backend (``threshold``, ``num_threads``...).

    Raises:
        UnknownNameError: an unknown name (the message lists the choices).
    """
    name = (name or DEFAULT_DETECTOR).strip()
    parts = [DEFAULT_DETECTOR if p.strip() == "default" else p.strip() for p in name.split("+")]
    if len(parts) > 1:
        if any(not p for p in parts):
            raise UnknownNameError(
                f"unknown detector '{name}'; choose one of: {', '.join(DETECTORS.names())} "
                "(or several joined with '+')")
        from .ensemble import EnsembleDetector

        threshold = kwargs.pop("threshold", None)
        members = [DETECTORS.get(p)(**kwargs) for p in parts]
        det: Detector = EnsembleDetector(members, threshold=threshold)
    else:
        det = DETECTORS.get(parts[0])(**kwargs)
    if tile:
        from .multiscale import TiledDetector

        det = TiledDetector(det) if tile is True else TiledDetector(det, upscale=float(tile))
    if scale is not None:
        from .multiscale import ScaledDetector

        det = ScaledDetector(det, scale=scale)
    return det


_shared: dict[str, Detector] = {}
_shared_lock = threading.Lock()


def shared_detector(name: str = DEFAULT_DETECTOR) -> Detector:
    """One detector per name for the whole process, built on first use (for the checks
    methods make, e.g. ``fatm``'s "is the new face still detected"); thread-safe.
    Use :func:`get_detector` for a detector with options."""
    key = DEFAULT_DETECTOR if name.strip() == "default" else name.strip()
    with _shared_lock:
        if key not in _shared:
            _shared[key] = get_detector(key)
        return _shared[key]


# ---------------------------------------------------------------- shared helpers
def default_threads() -> int:
    """Threads per onnxruntime session when not given: every core (``os.cpu_count()``)."""
    return max(1, os.cpu_count() or 1)


def ort_session(model: str | bytes, num_threads: int | None = None):
    """A CPU onnxruntime session with ``num_threads`` intra-op threads, quiet logging."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(num_threads or default_threads())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, highest score first.

    ``boxes`` is ``N x 4`` (x1, y1, x2, y2). Vectorised per kept box.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        order = rest[iou < iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``N x 4`` and ``M x 4`` boxes (x1, y1, x2, y2)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def order_landmarks5(pts: np.ndarray) -> np.ndarray:
    """Put 5 points (eyes, nose, mouth corners) in facedeid order.

    Eyes are the first two points and mouth corners the last two, in any order;
    each pair is sorted by x (smaller x first). Works on ``5 x 2`` or ``N x 5 x 2``.
    """
    p = np.array(pts, dtype=np.float64, copy=True)
    single = p.ndim == 2
    if single:
        p = p[None]
    for a, b in ((0, 1), (3, 4)):
        swap = p[:, a, 0] > p[:, b, 0]
        p[swap, a], p[swap, b] = p[swap, b].copy(), p[swap, a].copy()
    return p[0] if single else p


def pad_to(rgb: np.ndarray, multiple: int = 32, minimum: int = 32) -> np.ndarray:
    """Zero-pad bottom/right so both sides are multiples of ``multiple`` (>= ``minimum``).

    Coordinates are unchanged by padding at the bottom/right.
    """
    h, w = rgb.shape[:2]
    ph = max(minimum, -(-h // multiple) * multiple)
    pw = max(minimum, -(-w // multiple) * multiple)
    if (ph, pw) == (h, w):
        return rgb
    out = np.zeros((ph, pw) + rgb.shape[2:], dtype=rgb.dtype)
    out[:h, :w] = rgb
    return out


__all__ = ["Detector", "DETECTORS", "DEFAULT_DETECTOR", "get_detector", "shared_detector", "nms", "iou_matrix",
           "order_landmarks5", "ort_session", "default_threads", "pad_to"]
