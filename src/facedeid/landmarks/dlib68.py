"""68-point landmarks with dlib's shape predictor (iBUG 300-W layout).

The predictor regresses the 68 points from a *starting box*, and it was
trained on boxes from dlib's own HOG face detector: square, from the eyebrows
to the chin, centred a little below the eyes.
Boxes from CNN detectors follow other conventions (YuNet's are ~1.3x taller
than wide and reach from the forehead to below the chin), and feeding them
as they are shifts and squashes the landmarks.  :class:`Dlib68Predictor`
therefore converts every box to the HOG convention first:

1. ``face.detector == "dlib-hog"`` and the box is square (within 2 px): the box
   is used as it is.  (A HOG box clipped at the image border is no longer
   square; it goes through case 3.)
2. the face has 5-point landmarks: the HOG-style box is derived from them
   (eye midpoint ``E``, mouth midpoint ``M``, ``v = M - E``, ``u = eye2 - eye1``)::

       centre = E + 0.465 v - 0.079 u,   side = 0.576 |u| + 1.830 |v|

3. otherwise: the given box.

In cases 2 and 3, ``refine`` (default 1) further passes follow, each starting
from the HOG-style box derived from the previous pass's 68 points::

    side = 0.670 (x extent) + 0.425 (y extent),
    centre = mean of the 68 points + (-0.032, -0.053) side

The coefficients were fitted by least squares on 1,191 LFW images (dlib HOG
box, and YuNet 2023mar box + 5 points, of the same face), then checked on
771 other LFW images.  Error = mean distance of the 68 points from those
obtained with the HOG box, over the outer-eye-corner distance (NME):

=====================================  ========  ========  =========  ==========
starting box (771 held-out faces)      mean NME  median    90th pct.  NME > 0.1
=====================================  ========  ========  =========  ==========
YuNet box as is                        0.035     0.023     0.052      3.5 %
YuNet box + 1 refinement               0.017     0.010     0.021      1.3 %
YuNet box + 2 refinements              0.016     0.010     0.019      0.8 %
YuNet 5 points -> box                  0.013     0.010     0.020      0.1 %
YuNet 5 points -> box + 1 refinement   0.012     0.010     0.020      0.1 %
Haar box as is                         0.017     0.012     0.025      0.7 %
Haar box + 1 refinement                0.014     0.010     0.020      0.5 %
HOG box + 1 refinement (noise floor)   0.012     0.010     0.018      0.0 %
=====================================  ========  ========  =========  ==========

So the 5-point rule brings a CNN detector's landmarks to the predictor's own
jitter level (re-running from a slightly different box moves the points by
~0.012 inter-ocular distances anyway).

Faces partly outside the image work: dlib reads pixels outside the image as
black, and the points may lie outside the image.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..imageops import to_rgb8
from ..types import Face

# fitted constants (see the module docstring)
L5_CENTRE_V = 0.465
L5_CENTRE_U = -0.079
L5_SIDE_IOD = 0.576
L5_SIDE_EM = 1.830
L68_SIDE_X = 0.670
L68_SIDE_Y = 0.425
L68_CENTRE_OFFSET = (-0.032, -0.053)

HOG_DETECTOR_NAMES = frozenset({"dlib-hog", "dlib_hog", "hog"})


def _square(cx: float, cy: float, side: float) -> tuple[float, float, float, float]:
    h = side / 2.0
    return (cx - h, cy - h, cx + h, cy + h)


def box_from_landmarks5(landmarks5) -> tuple[float, float, float, float]:
    """A dlib-HOG-style box ``(x1, y1, x2, y2)`` from 5 detector landmarks (eye centres first)."""
    p = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    e = (p[0] + p[1]) / 2
    v = (p[3] + p[4]) / 2 - e
    u = p[1] - p[0]
    c = e + L5_CENTRE_V * v + L5_CENTRE_U * u
    side = L5_SIDE_IOD * float(np.hypot(*u)) + L5_SIDE_EM * float(np.hypot(*v))
    return _square(c[0], c[1], max(side, 1.0))


def box_from_landmarks68(landmarks68) -> tuple[float, float, float, float]:
    """A dlib-HOG-style box from 68 landmarks (the box the predictor 'expects' for them)."""
    p = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)
    ext = p.max(axis=0) - p.min(axis=0)
    side = max(L68_SIDE_X * ext[0] + L68_SIDE_Y * ext[1], 1.0)
    c = p.mean(axis=0) + np.asarray(L68_CENTRE_OFFSET) * side
    return _square(c[0], c[1], side)


class Dlib68Predictor:
    """dlib's 68-point shape predictor, loaded on first use.

    Args:
        model_file: the ``.dat`` file; default :func:`facedeid.models.model_path` ``("dlib68")``.
        refine: refinement passes after the first prediction for boxes that
            are not dlib-HOG boxes (0 = none).

    >>> pred = Dlib68Predictor()            # nothing loaded yet
    >>> faces = pred.add_landmarks(rgb, faces)   # doctest: +SKIP
    """

    name = "dlib68"

    def __init__(self, model_file: str | Path | None = None, refine: int = 1):
        self._model_file = None if model_file is None else Path(model_file)
        self.refine = int(refine)
        self._predictor = None
        self._lock = threading.Lock()

    def _load(self):
        if self._predictor is None:
            with self._lock:
                if self._predictor is None:
                    import dlib

                    path = self._model_file
                    if path is None:
                        from ..models import model_path

                        path = model_path("dlib68")
                        logging.getLogger("facedeid").warning(
                            "the 68-point landmark model is trained on iBUG 300-W: "
                            "non-commercial use only (see docs/MODELS.md)")
                    self._predictor = dlib.shape_predictor(str(path))
        return self._predictor

    @staticmethod
    def is_native(face: Face) -> bool:
        """True for an unclipped dlib-HOG box, which the predictor takes as it is."""
        return face.detector in HOG_DETECTOR_NAMES and abs(face.width - face.height) <= 2.0

    @classmethod
    def start_box(cls, face: Face) -> tuple[float, float, float, float]:
        """The box the first prediction starts from (see the module docstring)."""
        if cls.is_native(face):
            return face.box
        if face.landmarks5 is not None:
            return box_from_landmarks5(face.landmarks5)
        return face.box

    def _run(self, img: np.ndarray, box) -> np.ndarray:
        import dlib

        x1, y1, x2, y2 = (int(round(v)) for v in box)
        rect = dlib.rectangle(x1, y1, max(x2 - 1, x1), max(y2 - 1, y1))
        shape = self._load()(img, rect)
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)

    @staticmethod
    def _prepare(rgb: np.ndarray) -> np.ndarray:
        img = np.asarray(rgb)
        if not (img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
            img = to_rgb8(img)
        return np.ascontiguousarray(img)

    def predict(self, rgb: np.ndarray, face: Face, refine: int | None = None) -> np.ndarray:
        """The ``(68, 2)`` landmarks of ``face`` in image pixels (float64).

        ``rgb`` is an RGB ``uint8`` image (other supported layouts are
        converted with :func:`facedeid.imageops.to_rgb8`); ``refine``
        overrides the instance's number of refinement passes.
        """
        return self._predict(self._prepare(rgb), face, refine)

    def _predict(self, img: np.ndarray, face: Face, refine: int | None = None) -> np.ndarray:
        pts = self._run(img, self.start_box(face))
        if not self.is_native(face):
            for _ in range(self.refine if refine is None else int(refine)):
                pts = self._run(img, box_from_landmarks68(pts))
        return pts

    def add_landmarks(self, rgb: np.ndarray, faces: list[Face], refine: int | None = None) -> list[Face]:
        """The same faces with ``landmarks68`` set (new :class:`Face` objects, same order)."""
        if not faces:
            return []
        img = self._prepare(rgb)
        return [f.replace(landmarks68=self._predict(img, f, refine)) for f in faces]

    def __repr__(self) -> str:
        return f"Dlib68Predictor(refine={self.refine})"


__all__ = ["Dlib68Predictor", "box_from_landmarks5", "box_from_landmarks68"]
