"""Reconstruction-based de-identification (seed 002, the AUTh lecture): ``pca``, ``svd``, ``hypersphere``.

"Obtain facial image coefficients using some reconstruction method (PCA, SVD
...), apply modifications to these coefficients, reconstruct a distorted facial
image."  All three work on the face's **shape-free texture** (piecewise-affine
warp onto the mean shape, :func:`facedeid.landmarks.align.shape_free`); the
modified texture is warped back onto the face's *own* landmarks, so pose and
expression are kept, and pasted with seed 004's landmark mask.

``pca`` (strength ``components`` = r, fewer is stronger)
    project the 64x64 RGB texture (values in [0, 1]) on the shipped
    eigenfaces (:mod:`facedeid.facemodel`: 100 components of 1,906 LFW people)
    and reconstruct from the first r coefficients; ``noise`` > 0 adds Gaussian
    noise of ``noise`` standard deviations *of each component* to those r
    coefficients ("perturbed coefficients").  r = 0 gives the mean face.
``hypersphere`` (strength ``radius``, smaller is stronger)
    the lecture's projection: the coefficient vector ``c`` (first
    ``components`` eigenfaces) is moved to the hypersphere of radius r around
    the mean, ``c' = r c / |c|``.  Units: Euclidean norm of the texture's
    deviation from the mean face, pixel values in [0, 1], 64x64x3 values; the
    model's training faces have median |c| = 21.2 (10th-90th percentile
    16.0-27.7, ``meta`` of the model), so the lecture's radius 8 pulls a typical
    face about 60 % of the way to the mean while keeping its direction.
``svd`` (strength ``rank`` = r, fewer is stronger)
    model-free: each colour channel of the ``size x size`` texture (default
    128) is replaced by its best rank-r approximation (truncated SVD, the
    "SVD-DID" of the lecture); ``noise`` > 0 multiplies each kept singular
    value by ``max(0, 1 + noise * N(0, 1))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import Face
from .aligned import ALIGN_DEFAULTS, as_rgb, check_size, like, paint_aligned
from .base import Method


def _model():
    from ..facemodel import load_face_model

    return load_face_model()


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if not v.is_integer() or not lo <= v <= hi:
        raise ValueError(f"{name} must be a whole number in {lo}..{hi}, got {value!r}")
    return int(v)


def _float(value: Any, name: str, lo: float = 0.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(v) and v >= lo):
        raise ValueError(f"{name} must be a number >= {lo:g}, got {value!r}")
    return v


# ------------------------------------------------------------------ eigenface coefficients
def project(texture01: np.ndarray, n: int | None = None) -> np.ndarray:
    """Eigenface coefficients of an RGB shape-free texture (model size, values in [0, 1])."""
    mean, comps, _ = _model().eigen
    x = np.asarray(texture01, np.float64).reshape(-1)
    if x.size != mean.size:
        raise ValueError(f"texture has {x.size} values, the model expects {mean.size}")
    k = len(comps) if n is None else n
    return comps[:k] @ (x - mean)


def reconstruct(coeffs: np.ndarray) -> np.ndarray:
    """The texture (model size x size x 3, [0, 1] scale, not clipped) from the first len(coeffs) coefficients."""
    model = _model()
    mean, comps, _ = model.eigen
    c = np.asarray(coeffs, np.float64).reshape(-1)
    s = model.texture_size
    return (mean + comps[: len(c)].T @ c).reshape(s, s, 3)


def hypersphere_coefficients(coeffs: np.ndarray, radius: float) -> np.ndarray:
    """``radius * c / |c|`` (the mean, c = 0, stays at the mean)."""
    c = np.asarray(coeffs, np.float64)
    norm = float(np.linalg.norm(c))
    return c * (radius / norm) if norm > 0 else c.copy()


def _texture_fn(modify):
    """fn for :func:`paint_aligned`: 8-bit texture -> coefficients -> modified -> 8-bit texture."""

    def fn(tex: np.ndarray) -> np.ndarray:
        x = as_rgb(tex) / 255.0
        rec = reconstruct(modify(project(x))) * 255.0
        return like(rec, tex)

    return fn


def _pca(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    model = _model()
    _, comps, var = model.eigen
    r = _int(params.get("components", 20), "pca components", 0, len(comps))
    noise = _float(params.get("noise", 0.0), "pca noise")
    rng = params.get("rng")

    def modify(c: np.ndarray) -> np.ndarray:
        c = c[:r].copy()
        if noise > 0 and r:
            g = rng if rng is not None else np.random.default_rng()
            c += noise * np.sqrt(var[:r]) * g.standard_normal(r)
        return c

    return paint_aligned(crop, face, params, "pca", _texture_fn(modify), model.texture_size,
                         shape_free=True)


PCA = Method(
    name="pca",
    fn=_pca,
    defaults={"components": 20, "noise": 0.0, **ALIGN_DEFAULTS},
    strength="components",
    strength_doc=(
        "components = eigenfaces kept (0..100) when the shape-free face is reconstructed; "
        "FEWER = stronger (0 = the mean face); noise = Gaussian perturbation of the kept "
        "coefficients in standard deviations of each component"
    ),
    needs_landmarks68=True,
)


def _hypersphere(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    model = _model()
    _, comps, _ = model.eigen
    radius = _float(params.get("radius", 8.0), "hypersphere radius")
    r = _int(params.get("components", len(comps)), "hypersphere components", 1, len(comps))

    def modify(c: np.ndarray) -> np.ndarray:
        return hypersphere_coefficients(c[:r], radius)

    return paint_aligned(crop, face, params, "hypersphere", _texture_fn(modify), model.texture_size,
                         shape_free=True)


HYPERSPHERE = Method(
    name="hypersphere",
    fn=_hypersphere,
    defaults={"radius": 8.0, "components": 100, **ALIGN_DEFAULTS},
    strength="radius",
    strength_doc=(
        "radius of the hypersphere around the mean face onto which the eigenface coefficients "
        "are projected (L2 norm of the 64x64x3 texture's deviation from the mean, values in [0, 1]; "
        "training faces: median 21, the lecture shows 8); SMALLER = stronger (0 = the mean face)"
    ),
    needs_landmarks68=True,
)


# ------------------------------------------------------------------ SVD
def low_rank(channel: np.ndarray, rank: int, noise: float = 0.0,
             rng: np.random.Generator | None = None) -> np.ndarray:
    """Best rank-``rank`` approximation of a 2-D array (truncated SVD), singular values perturbed by ``noise``."""
    u, s, vt = np.linalg.svd(np.asarray(channel, np.float64), full_matrices=False)
    r = min(rank, len(s))
    s = s[:r].copy()
    if noise > 0 and r:
        g = rng if rng is not None else np.random.default_rng()
        s *= np.maximum(0.0, 1.0 + noise * g.standard_normal(r))
    return (u[:, :r] * s) @ vt[:r]


def _svd(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    size = check_size(params.get("size", 128))
    rank = _int(params.get("rank", 8), "svd rank", 1, size)
    noise = _float(params.get("noise", 0.0), "svd noise")
    rng = params.get("rng")

    def fn(tex: np.ndarray) -> np.ndarray:
        if tex.ndim == 2:
            return low_rank(tex, rank, noise, rng)
        return np.stack([low_rank(tex[..., i], rank, noise, rng) for i in range(tex.shape[2])], axis=2)

    return paint_aligned(crop, face, params, "svd", fn, size, shape_free=True)


SVD = Method(
    name="svd",
    fn=_svd,
    defaults={"rank": 8, "noise": 0.0, "size": 128, **ALIGN_DEFAULTS},
    strength="rank",
    strength_doc=(
        "rank = singular values kept per colour channel of the size x size shape-free face "
        "(truncated SVD); FEWER = stronger; noise = relative Gaussian perturbation of the kept "
        "singular values"
    ),
    needs_landmarks68=True,
)

__all__ = ["PCA", "SVD", "HYPERSPHERE", "project", "reconstruct", "hypersphere_coefficients", "low_rank"]
