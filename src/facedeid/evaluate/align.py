"""Five-point similarity alignment of faces to each recognizer's template.

Landmarks are in facedeid order (eye with smaller x, eye with larger x, nose
tip, mouth corner with smaller x, mouth corner with larger x), i.e. the order
YuNet/RetinaFace/MTCNN give them.

Templates (pixel coordinates in the output crop):

* :data:`ARCFACE_112` - the ArcFace/InsightFace 112x112 template, the one
  ``cv2.FaceRecognizerSF.alignCrop`` hard-codes for SFace. :func:`align_crop`
  with it reproduces ``alignCrop`` (same least-squares similarity, same
  bilinear ``warpAffine``).
* :data:`FACENET_160` - FaceNet (davidsandberg) was trained and evaluated on
  MTCNN boxes enlarged by a margin and resized to 160x160, without rotation.
  The template places the points as in such crops (scale and height tuned on
  LFW DevTrain, see docs/ATTACKERS.md); aligning to it also removes in-plane
  rotation, which did not hurt (97.75% vs 97.62% without rotation).
* :data:`DLIB_150` - where the 5 points fall in dlib's 150x150 face chip
  (``dlib.get_face_chip(img, shape, 150, 0.25)`` from its 5-point predictor),
  measured on LFW. The dlib attacker can also use dlib's own chip pipeline
  (:func:`dlib_chip`), which is what its ResNet was trained with.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

ARCFACE_112 = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
    [41.5493, 92.3655], [70.7299, 92.2041],
])

# The ArcFace point layout scaled to an eye distance of 0.29 x 160 px with the
# eye midpoint at (80, 64): the best of a grid over scale (0.24-0.36) and eye
# height (0.34-0.50 x 160) by verification accuracy/AUC on LFW DevTrain pairs,
# consistent with MTCNN box + 32 px margin crops (see docs/ATTACKERS.md).
FACENET_160 = np.array([
    [56.80, 64.13], [103.20, 63.87], [80.15, 90.52],
    [61.09, 117.68], [99.51, 117.47],
])

# Where the 5 points fall, on average, in dlib's 150x150 chips
# (``get_face_chip(img, shape5, 150, 0.25)``), measured on 1,141 LFW faces.
DLIB_150 = np.array([
    [46.88, 44.51], [103.35, 45.51], [75.06, 77.35],
    [50.82, 101.69], [98.80, 102.35],
])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale,
    translation; no reflection) mapping ``src`` points onto ``dst`` (Umeyama 1991).
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError("need >= 2 corresponding points")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0 ** 2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("degenerate landmarks (all points coincide)")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_crop(rgb: np.ndarray, landmarks5: np.ndarray, template: np.ndarray,
               size: int | tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Warp ``rgb`` so that ``landmarks5`` land on ``template``; ``size`` px crop.

    Pixels outside the image are black (as ``alignCrop``). Downscaling by more
    than 2x is anti-aliased with INTER_AREA-like prefiltering (a Gaussian blur),
    so a face from a 4K frame and one from a thumbnail give comparable crops.
    """
    w, h = (size, size) if isinstance(size, int) else size
    m = similarity_transform(landmarks5, template)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    img = np.asarray(rgb)
    if scale < 0.5:  # prefilter (only the region the crop reads) against aliasing
        sigma = 0.3 / scale
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], float) @ inv.T
        pad = int(np.ceil(3 * sigma)) + 2
        x0, y0 = np.floor(corners.min(0)).astype(int) - pad
        x1, y1 = np.ceil(corners.max(0)).astype(int) + pad
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, img.shape[1]), min(y1, img.shape[0])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return np.zeros((h, w) + img.shape[2:], img.dtype)
        img = cv2.GaussianBlur(np.ascontiguousarray(img[y0:y1, x0:x1]), (0, 0), sigma)
        m = m.copy()
        m[:, 2] += m[:, :2] @ np.array([x0, y0], float)
    return cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# --------------------------------------------------------------------------
# dlib's own 5-point chip
# --------------------------------------------------------------------------

# dlib's HOG detector box relative to the 5 facedeid landmarks, in the face's
# own frame (unit = eye-centre to mouth-centre distance d; +y from the eyes to
# the mouth, +x perpendicular): centre = eye-mid + BOX_DX * perp + BOX_DY * axis,
# side = BOX_SIDE * d. Medians over 1,141 LFW faces found by both detectors.
BOX_DX, BOX_DY, BOX_SIDE = -0.10, 0.47, 2.42

_local = threading.local()


def _dlib_predictor():
    """dlib's 5-point predictor, one per thread and process."""
    if getattr(_local, "pid", None) != os.getpid():
        import dlib

        from ..models import model_path

        _local.pred = dlib.shape_predictor(str(model_path("dlib5")))
        _local.pid = os.getpid()
    return _local.pred


def box_from_landmarks(landmarks5: np.ndarray) -> tuple[float, float, float, float]:
    """A dlib-HOG-like square box ``(x1, y1, x2, y2)`` around the 5 landmarks."""
    p = np.asarray(landmarks5, np.float64).reshape(5, 2)
    eyes = (p[0] + p[1]) / 2
    axis = (p[3] + p[4]) / 2 - eyes
    d = float(np.hypot(*axis))
    if d < 1e-6:  # degenerate: fall back to the eye distance, upright
        d = max(float(np.hypot(*(p[1] - p[0]))), 1.0)
        axis = np.array([0.0, d])
    perp = np.array([axis[1], -axis[0]])
    cx, cy = eyes + BOX_DX * perp + BOX_DY * axis
    half = BOX_SIDE * d / 2
    return cx - half, cy - half, cx + half, cy + half


def dlib_shape(rgb: np.ndarray, landmarks5: np.ndarray):
    """dlib ``full_object_detection`` from its 5-point predictor, run on a box
    derived from the given landmarks."""
    import dlib

    x1, y1, x2, y2 = box_from_landmarks(landmarks5)
    rect = dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)) - 1, int(round(y2)) - 1)
    return _dlib_predictor()(np.ascontiguousarray(rgb), rect)


def dlib_chip(rgb: np.ndarray, landmarks5: np.ndarray, size: int = 150,
              padding: float = 0.25) -> np.ndarray:
    """dlib's aligned face chip (``dlib.get_face_chip``) at the given landmarks."""
    import dlib

    img = np.ascontiguousarray(rgb)
    return dlib.get_face_chip(img, dlib_shape(img, landmarks5), size=size, padding=padding)
