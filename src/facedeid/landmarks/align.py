"""Face alignment to a canonical frame, shape-free textures, landmark masks, paste-back.

Coordinates follow OpenCV (and dlib): pixel ``(col, row)`` has its centre at
the integer point ``(col, row)``; every matrix is a 2x3 affine ``M`` mapping a
point ``p`` to ``M[:, :2] @ p + M[:, 2]``.

**The canonical frame** (seed 004: "a standard face of fixed size and frontal
orientation").  :func:`canonical_landmarks` ``(size)`` is the shipped face
model's mean 68-point shape (a Procrustes mean over LFW, see
``tools/build_face_model.py``) scaled into a ``size x size`` frame by
:func:`place_in_frame`: eyes level, the bounding box of the 68 points
(ear-to-ear jaw width, brow-to-chin height) has its larger side equal to
:data:`FACE_FRACTION` (0.70) of the frame and is centred horizontally, with its
centre at :data:`FACE_CENTER_Y` (0.56) of the height.  With the shipped mean
shape (width 0.70, height 0.68 of the frame) that leaves 15 % of the frame on
the left and right, 22 % above the brows (forehead) and 10 % below the chin;
the eye centres sit at 33 % of the height, 0.30 of the frame apart.

**Alignment.** :func:`align_face` fits the least-squares similarity (or affine)
transform from the face's 68 points to the canonical points and warps the image
with it (bilinear, border replicated); :func:`warp_back` applies the inverse.

**Shape-free texture.** :func:`shape_free` warps a face piecewise-affinely
(Delaunay triangles of the 68 points plus 8 frame-border points) onto the mean
shape, :func:`warp_texture_to` warps such a texture onto any face's landmarks.
The triangulation is fixed (that of the canonical points), so both directions
use the same mesh; the border points follow the global similarity transform.

**Masks and paste-back.** :func:`landmark_mask` is seed 004's face mask
(``face_hull``: eyebrows, lower-lip outline and 8 interpolated cheek points;
or ``face_outline``: jaw and eyebrows) with a Gaussian-smoothed boundary whose
width adapts to the face size; :func:`blend` pastes with it.
:func:`apply_aligned` and :func:`apply_shape_free` wrap the whole round trip
for methods that work on an aligned face.

>>> m = similarity_matrix([[0, 0], [1, 0]], [[0, 0], [0, 2]])   # rotate 90 deg, scale 2
>>> np.round(transform_points(m, [[1, 0]]), 6).tolist()
[[0.0, 2.0]]
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

FACE_FRACTION = 0.70
"""Larger side of the 68 points' bounding box as a fraction of the canonical frame."""
FACE_CENTER_Y = 0.56
"""Vertical centre of the 68 points' bounding box as a fraction of the frame height."""
TRANSFORMS = ("similarity", "affine")
MASK_REGIONS = ("face_hull", "face_outline")
DEFAULT_SMOOTH = 0.04
"""Default boundary smoothing of :func:`landmark_mask`: Gaussian sigma as a fraction of sqrt(mask area)."""


# ------------------------------------------------------------------ small geometry
def _pts(points, n: int | None = None, name: str = "points") -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or (n is not None and len(p) != n):
        want = f"({n}, 2)" if n else "(N, 2)"
        raise ValueError(f"{name}: expected {want} coordinates, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: coordinates must be finite")
    return p


def transform_points(matrix, points) -> np.ndarray:
    """``points`` ``(N, 2)`` mapped by a 2x3 affine ``matrix``."""
    m = np.asarray(matrix, np.float64).reshape(2, 3)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def invert_matrix(matrix) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (raises ``ValueError`` if singular)."""
    m = np.asarray(matrix, np.float64).reshape(2, 3)
    det = np.linalg.det(m[:, :2])
    if abs(det) < 1e-12:
        raise ValueError("the transform is singular (degenerate landmarks)")
    return cv2.invertAffineTransform(m)


def similarity_matrix(src, dst) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama (1991); never a reflection.  Raises ``ValueError`` for fewer than
    2 points or coincident source points.
    """
    s, d = _pts(src, name="src"), _pts(dst, name="dst")
    if len(s) != len(d) or len(s) < 2:
        raise ValueError(f"need >= 2 corresponding points, got {len(s)} and {len(d)}")
    mu_s, mu_d = s.mean(0), d.mean(0)
    s0, d0 = s - mu_s, d - mu_d
    var_s = (s0 ** 2).sum() / len(s)
    if var_s <= 1e-12:
        raise ValueError("degenerate landmarks (all points coincide)")
    u, sig, vt = np.linalg.svd(d0.T @ s0 / len(s))
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def affine_matrix(src, dst) -> np.ndarray:
    """2x3 least-squares affine transform mapping ``src`` onto ``dst`` (>= 3 non-collinear points)."""
    s, d = _pts(src, name="src"), _pts(dst, name="dst")
    if len(s) != len(d) or len(s) < 3:
        raise ValueError(f"need >= 3 corresponding points, got {len(s)} and {len(d)}")
    a = np.hstack([s, np.ones((len(s), 1))])
    if np.linalg.matrix_rank(a) < 3:
        raise ValueError("degenerate landmarks (collinear points)")
    sol, *_ = np.linalg.lstsq(a, d, rcond=None)
    return sol.T.copy()


def fit_matrix(src, dst, transform: str = "similarity") -> np.ndarray:
    """:func:`similarity_matrix` or :func:`affine_matrix` by name."""
    if transform == "similarity":
        return similarity_matrix(src, dst)
    if transform == "affine":
        return affine_matrix(src, dst)
    raise ValueError(f"unknown transform '{transform}'; choose one of: {', '.join(TRANSFORMS)}")


# ------------------------------------------------------------------ canonical frame
def place_in_frame(shape) -> np.ndarray:
    """A 68-point shape placed in the unit frame (see the module docstring for the margins).

    Scaled so that the larger side of its bounding box is :data:`FACE_FRACTION`,
    centred at ``(0.5, FACE_CENTER_Y)``.  Rotation is kept (give a shape with
    level eyes).
    """
    p = _pts(shape, 68, "shape")
    lo, hi = p.min(axis=0), p.max(axis=0)
    scale = FACE_FRACTION / max(float((hi - lo).max()), 1e-12)
    return (p - (lo + hi) / 2) * scale + np.array([0.5, FACE_CENTER_Y])


def canonical_landmarks(size: int, model=None) -> np.ndarray:
    """The mean 68-point shape in a ``size x size`` frame (pixel coordinates, float64).

    ``model``: a :class:`facedeid.facemodel.FaceModel` (default: the shipped one).
    """
    if not (isinstance(size, (int, np.integer)) and size >= 16):
        raise ValueError(f"canonical frame size must be an integer >= 16, got {size!r}")
    if model is None:
        from ..facemodel import load_face_model

        model = load_face_model()
    # unit frame [0, 1] -> pixel centres: the frame spans pixels -0.5 .. size-0.5
    return model.mean_shape * size - 0.5


# ------------------------------------------------------------------ whole-face alignment
@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face warped into the canonical frame.

    Attributes:
        image: the ``size x size`` (x C) warped image, same dtype as the input.
        matrix: 2x3 affine mapping input-image points to aligned points.
        landmarks: the face's 68 points mapped into the aligned frame.
    """

    image: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray

    @property
    def size(self) -> int:
        return int(self.image.shape[0])


_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101,
            "constant": cv2.BORDER_CONSTANT}


def _warp(image: np.ndarray, matrix: np.ndarray, out_hw, border: str, flags=cv2.INTER_LINEAR,
          inverse: bool = False) -> np.ndarray:
    img = np.asarray(image)
    h, w = int(out_hw[0]), int(out_hw[1])
    if border not in _BORDERS:
        raise ValueError(f"unknown border '{border}'; choose one of: {', '.join(_BORDERS)}")
    if inverse:
        flags |= cv2.WARP_INVERSE_MAP
    src = img
    if img.dtype not in (np.uint8, np.uint16, np.float32, np.float64, np.int16):
        src = img.astype(np.float32)
    out = cv2.warpAffine(src, np.asarray(matrix, np.float64), (w, h), flags=flags,
                         borderMode=_BORDERS[border], borderValue=0)
    out = out.reshape((h, w) + img.shape[2:])
    return out.astype(img.dtype, copy=False)


def align_face(image, landmarks68, size: int = 128, transform: str = "similarity",
               border: str = "replicate", model=None) -> AlignedFace:
    """Warp the face with ``landmarks68`` into the canonical ``size x size`` frame.

    Args:
        image: ``H x W`` or ``H x W x C`` array (any dtype OpenCV warps).
        landmarks68: ``(68, 2)`` points in ``image``'s pixels.
        size: output frame size in pixels (>= 16).
        transform: ``similarity`` (default; keeps the face's proportions) or ``affine``.
        border: how pixels outside ``image`` are filled: ``replicate``, ``reflect``, ``constant`` (0).
    """
    pts = _pts(landmarks68, 68, "landmarks68")
    dst = canonical_landmarks(size, model)
    m = fit_matrix(pts, dst, transform)
    out = _warp(image, m, (size, size), border)
    return AlignedFace(image=out, matrix=m, landmarks=transform_points(m, pts))


def warp_back(aligned_img, matrix, out_hw, border: str = "constant",
              interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Warp an aligned image back into an ``out_hw`` image with the inverse of ``matrix``.

    ``matrix`` is :attr:`AlignedFace.matrix` (image -> aligned).  Pixels that
    fall outside the aligned frame get 0 (``border="constant"``); use
    :func:`warp_back_coverage` to know which.
    """
    return _warp(aligned_img, matrix, out_hw, border, flags=interpolation, inverse=True)


def warp_back_coverage(size: int, matrix, out_hw) -> np.ndarray:
    """Float32 ``out_hw`` map: 1 where the aligned ``size x size`` frame covers the pixel, 0 outside."""
    ones = np.ones((int(size), int(size)), np.float32)
    return _warp(ones, matrix, out_hw, "constant", inverse=True)


# ------------------------------------------------------------------ piecewise affine
def border_points(size_hw) -> np.ndarray:
    """8 points on the frame's outer edge (corners and edge midpoints), pixel-centre convention."""
    h, w = size_hw
    x0, y0, x1, y1 = -0.5, -0.5, w - 0.5, h - 0.5
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[x0, y0], [xm, y0], [x1, y0], [x1, ym], [x1, y1], [xm, y1], [x0, y1], [x0, ym]])


def delaunay_triangles(points) -> np.ndarray:
    """``(T, 3)`` vertex indices of the Delaunay triangulation of ``points``."""
    from scipy.spatial import Delaunay

    return np.asarray(Delaunay(_pts(points)).simplices, np.int64)


def piecewise_affine_warp(image, src_pts, dst_pts, out_hw, triangles=None,
                          border: str = "replicate", return_coverage: bool = False):
    """Warp ``image`` so that ``src_pts`` (in ``image``) land on ``dst_pts`` (in the output).

    Each triangle of the mesh (``triangles``, default the Delaunay
    triangulation of ``dst_pts``) is mapped by its own affine transform
    (OpenCV rasterises which triangle holds each output pixel, at 1/16 px);
    the whole output is then resampled in one bilinear ``cv2.remap`` from a
    per-pixel source map, so shared triangle edges have no seams.  Output
    pixels outside every triangle get 0.

    Args:
        image: ``H x W`` (x C) source.
        src_pts, dst_pts: ``(N, 2)`` corresponding points (N >= 3).
        out_hw: ``(height, width)`` of the output.
        triangles: ``(T, 3)`` indices into the points (the same mesh for both sides).
        border: how source pixels outside ``image`` are read (``replicate``...).
        return_coverage: also return the float32 map of covered output pixels.
    """
    src, dst = _pts(src_pts, name="src_pts"), _pts(dst_pts, name="dst_pts")
    if len(src) != len(dst) or len(src) < 3:
        raise ValueError("src_pts and dst_pts must be the same (N >= 3) points")
    tri = delaunay_triangles(dst) if triangles is None else np.asarray(triangles, np.int64)
    h, w = int(out_hw[0]), int(out_hw[1])
    # per-triangle affine maps dst -> src, solved in one batch (degenerate triangles skipped)
    d_tri = np.concatenate([dst[tri], np.ones(tri.shape + (1,))], axis=2)  # (T, 3, 3)
    ok = np.abs(np.linalg.det(d_tri)) > 1e-9
    aff = np.zeros((len(tri), 3, 2))
    if ok.any():
        aff[ok] = np.linalg.solve(d_tri[ok], src[tri[ok]])  # [x y 1] @ aff = [sx sy]
    # which triangle holds each output pixel: rasterised by OpenCV (sub-pixel, 1/16 px)
    ids = np.full((h, w), -1, np.int32)
    for k in np.flatnonzero(ok):
        poly = np.rint(dst[tri[k]] * 16).astype(np.int32)
        cv2.fillConvexPoly(ids, poly, int(k), lineType=cv2.LINE_8, shift=4)
    covered = ids >= 0
    ys, xs = np.nonzero(covered)
    a_k = aff[ids[covered]]  # (P, 3, 2)
    map_x = np.full((h, w), -1e6, np.float32)
    map_y = np.full((h, w), -1e6, np.float32)
    map_x[covered] = xs * a_k[:, 0, 0] + ys * a_k[:, 1, 0] + a_k[:, 2, 0]
    map_y[covered] = xs * a_k[:, 0, 1] + ys * a_k[:, 1, 1] + a_k[:, 2, 1]
    img = np.asarray(image)
    srcimg = img if img.dtype in (np.uint8, np.uint16, np.float32, np.float64, np.int16) \
        else img.astype(np.float32)
    if border not in _BORDERS:
        raise ValueError(f"unknown border '{border}'; choose one of: {', '.join(_BORDERS)}")
    out = cv2.remap(srcimg, map_x, map_y, cv2.INTER_LINEAR, borderMode=_BORDERS[border], borderValue=0)
    out = out.reshape((h, w) + img.shape[2:]).astype(img.dtype, copy=False)
    if (~covered).any():
        out[~covered] = 0
    if return_coverage:
        return out, covered.astype(np.float32)
    return out


@functools.lru_cache(maxsize=16)
def _mesh_for(points_key: bytes) -> np.ndarray:
    """Delaunay triangles of the canonical points (cached: one mesh per frame size)."""
    return delaunay_triangles(np.frombuffer(points_key, np.float64).reshape(-1, 2))


def _with_border(landmarks68, canon68, canon_border):
    """Face landmarks plus the frame-border points carried by the global similarity canon -> face."""
    m = similarity_matrix(canon68, landmarks68)
    return np.vstack([landmarks68, transform_points(m, canon_border)])


def shape_free(image, landmarks68, size: int = 64, mean_shape=None, border: str = "replicate"):
    """The face's texture warped onto the mean shape: a ``size x size`` (x C) image, input dtype.

    ``mean_shape``: the target 68 points in the ``size`` frame (default
    :func:`canonical_landmarks` ``(size)``).  Every pixel of the frame is
    covered (the 8 border points follow the global similarity transform).
    """
    pts = _pts(landmarks68, 68, "landmarks68")
    canon = canonical_landmarks(size) if mean_shape is None else _pts(mean_shape, 68, "mean_shape")
    canon_b = border_points((size, size))
    dst = np.vstack([canon, canon_b])
    tri = _mesh_for(np.ascontiguousarray(dst).tobytes())
    src = _with_border(pts, canon, canon_b)
    return piecewise_affine_warp(image, src, dst, (size, size), triangles=tri, border=border)


def warp_texture_to(texture, dst_landmarks68, out_hw, mean_shape=None, return_coverage: bool = False):
    """Inverse of :func:`shape_free`: warp a mean-shape texture onto ``dst_landmarks68``.

    Returns an ``out_hw`` image (texture's dtype) that is 0 outside the warped
    frame (with ``return_coverage`` also the float32 coverage map).
    """
    tex = np.asarray(texture)
    size = int(tex.shape[0])
    if tex.ndim < 2 or tex.shape[1] != size:
        raise ValueError(f"texture must be square, got shape {tex.shape}")
    pts = _pts(dst_landmarks68, 68, "dst_landmarks68")
    canon = canonical_landmarks(size) if mean_shape is None else _pts(mean_shape, 68, "mean_shape")
    canon_b = border_points((size, size))
    src = np.vstack([canon, canon_b])
    tri = _mesh_for(np.ascontiguousarray(src).tobytes())
    dst = _with_border(pts, canon, canon_b)
    return piecewise_affine_warp(tex, src, dst, out_hw, triangles=tri, border="replicate",
                                 return_coverage=return_coverage)


# ------------------------------------------------------------------ mask and paste
def landmark_mask(landmarks68, hw, smooth: float = DEFAULT_SMOOTH, region: str = "face_hull",
                  scale: float = 1.0) -> np.ndarray:
    """Seed 004's face mask with an adaptive Gaussian-smoothed boundary: float32 ``hw`` in [0, 1].

    Args:
        landmarks68: ``(68, 2)`` points in the mask's pixels.
        hw: ``(height, width)``.
        smooth: Gaussian sigma as a fraction of ``sqrt(area)`` of the polygon
            (adapts to the face size; 0 = hard 0/1 mask).  The smoothing is
            centred on the polygon edge: the mask is 0.5 on it.
        region: ``face_hull`` (seed 004: eyebrows, lower-lip outline, 8
            interpolated cheek points) or ``face_outline`` (jaw + eyebrows, covers the chin).
        scale: polygon scaled about its centroid.
    """
    from ..composite import polygon_mask
    from .regions import region_polygon

    if region not in MASK_REGIONS:
        raise ValueError(f"unknown mask region '{region}'; choose one of: {', '.join(MASK_REGIONS)}")
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth}")
    h, w = int(hw[0]), int(hw[1])
    poly = region_polygon(_pts(landmarks68, 68, "landmarks68"), region)
    c = poly.mean(axis=0)
    poly = c + (poly - c) * float(scale)
    # polygon_mask tests pixel centres at (j + 0.5, i + 0.5): shift to our integer-centre convention
    mask = polygon_mask(h, w, poly + 0.5).astype(np.float32)
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum()))
    sigma = smooth * math.sqrt(area)
    if sigma > 0.3 and mask.any():
        k = 2 * int(math.ceil(3 * sigma)) + 1
        mask = cv2.GaussianBlur(mask, (k, k), sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    return np.clip(mask, 0.0, 1.0)


def blend(base, overlay, alpha) -> np.ndarray:
    """``base + (overlay - base) * alpha`` per pixel, rounded and clipped to ``base``'s dtype.

    ``alpha`` is ``H x W`` in [0, 1]; where it is 0 the base pixel is kept
    exactly, where 1 the overlay pixel.  An alpha channel (4th channel) of
    ``base`` is never changed.
    """
    b = np.asarray(base)
    o = np.asarray(overlay)
    if o.shape != b.shape:
        raise ValueError(f"overlay shape {o.shape} != base shape {b.shape}")
    a = np.clip(np.asarray(alpha, np.float64), 0.0, 1.0)
    if a.shape != b.shape[:2]:
        raise ValueError(f"alpha shape {a.shape} != image size {b.shape[:2]}")
    out = b.copy()
    nc = 3 if (b.ndim == 3 and b.shape[2] == 4) else (b.shape[2] if b.ndim == 3 else 1)
    bb = b.astype(np.float64) if b.ndim == 2 else b[..., :nc].astype(np.float64)
    oo = o.astype(np.float64) if o.ndim == 2 else o[..., :nc].astype(np.float64)
    aa = a if b.ndim == 2 else a[..., None]
    res = bb + (oo - bb) * aa
    if np.issubdtype(b.dtype, np.integer):
        info = np.iinfo(b.dtype)
        res = np.clip(np.rint(res), info.min, info.max)
    res = res.astype(b.dtype)
    full, zero = a >= 1.0, a <= 0.0
    if b.ndim == 2:
        out[...] = res
        out[full] = o[full]
        out[zero] = b[zero]
    else:
        out[..., :nc] = res
        out[full, :nc] = o[full, :nc]
        out[zero, :nc] = b[zero, :nc]
    return out


def paste_aligned(base, aligned_img, matrix, landmarks68, smooth: float = DEFAULT_SMOOTH,
                  region: str = "face_hull") -> np.ndarray:
    """Warp ``aligned_img`` back into ``base`` and blend it in with :func:`landmark_mask`.

    Pixels the aligned frame does not cover keep ``base``.
    """
    b = np.asarray(base)
    hw = b.shape[:2]
    back = warp_back(aligned_img, matrix, hw)
    alpha = landmark_mask(landmarks68, hw, smooth, region)
    alpha *= warp_back_coverage(np.asarray(aligned_img).shape[0], matrix, hw)
    if back.shape != b.shape:
        back = back.reshape(b.shape)
    return blend(b, back, alpha)


def apply_aligned(image, landmarks68, fn: Callable[[np.ndarray], np.ndarray], size: int = 128,
                  transform: str = "similarity", smooth: float = DEFAULT_SMOOTH,
                  region: str = "face_hull") -> np.ndarray:
    """Align the face, ``fn(aligned) -> aligned'``, warp back and paste with the landmark mask.

    ``fn`` receives the ``size x size`` aligned image (input dtype) and
    returns an array of the same shape and dtype.
    """
    al = align_face(image, landmarks68, size, transform)
    new = np.asarray(fn(al.image))
    if new.shape != al.image.shape:
        raise ValueError(f"aligned result has shape {new.shape}, expected {al.image.shape}")
    return paste_aligned(image, new.astype(al.image.dtype, copy=False), al.matrix, landmarks68,
                         smooth, region)


def apply_shape_free(image, landmarks68, fn: Callable[[np.ndarray], np.ndarray], size: int = 64,
                     smooth: float = DEFAULT_SMOOTH, region: str = "face_hull") -> np.ndarray:
    """Shape-free texture of the face, ``fn(texture) -> texture'``, warp onto the face's own
    landmarks and paste with the landmark mask (pose and expression are kept)."""
    img = np.asarray(image)
    tex = shape_free(img, landmarks68, size)
    new = np.asarray(fn(tex))
    if new.shape != tex.shape:
        raise ValueError(f"texture result has shape {new.shape}, expected {tex.shape}")
    hw = img.shape[:2]
    back, cov = warp_texture_to(new.astype(img.dtype, copy=False), landmarks68, hw,
                                return_coverage=True)
    alpha = landmark_mask(landmarks68, hw, smooth, region) * cov
    return blend(img, back.reshape(img.shape), alpha)


__all__ = [
    "FACE_FRACTION", "FACE_CENTER_Y", "TRANSFORMS", "MASK_REGIONS", "DEFAULT_SMOOTH",
    "AlignedFace", "transform_points", "invert_matrix", "similarity_matrix", "affine_matrix",
    "fit_matrix", "place_in_frame", "canonical_landmarks", "align_face", "warp_back",
    "warp_back_coverage", "border_points", "delaunay_triangles", "piecewise_affine_warp",
    "shape_free", "warp_texture_to", "landmark_mask", "blend", "paste_aligned",
    "apply_aligned", "apply_shape_free",
]
