"""Face detectors: one interface (:class:`Detector`), backends chosen by name.

>>> from facedeid.detect import get_detector
>>> det = get_detector("yunet", threshold=0.5)   # doctest: +SKIP
>>> faces = det.detect(rgb_image)                   # doctest: +SKIP
"""

from __future__ import annotations

from ..registry import Registry
from .base import Detector

DETECTORS = Registry("detector", {
    "yunet": "facedeid.detect.yunet:YuNetDetector",
    "centerface": "facedeid.detect.centerface:CenterFaceDetector",
    "retinaface": "facedeid.detect.retinaface:RetinaFaceDetector",
    "haar": "facedeid.detect.haar:HaarDetector",
    "dlib-hog": "facedeid.detect.dlib_hog:DlibHogDetector",
})

DEFAULT_DETECTOR = "yunet"  # provisional; set by measured recall (benchmarks/bench_detection.py)


def get_detector(name: str = DEFAULT_DETECTOR, **kwargs) -> Detector:
    """Instantiate a detector backend by registry name."""
    return DETECTORS.get(name)(**kwargs)


__all__ = ["Detector", "DETECTORS", "DEFAULT_DETECTOR", "get_detector"]
