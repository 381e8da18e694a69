"""What each k-Same variant averages, and how a group's average is painted on a face.

Three representations (``kind``), all built on :mod:`facedeid.landmarks.align`:

``pixel`` (k-Same-Pixel, Newton et al. 2005)
    the face similarity-aligned into the canonical ``size x size`` frame;
    distance and average in pixel space; the average is warped back with the
    inverse similarity transform.  Faces are registered only globally, so the
    average of k faces shows k slightly offset eyes and mouths ("ghosting"):
    that is the original algorithm.
``eigen`` (k-Same-Eigen, Newton et al. 2005)
    the face's shape-free texture (piecewise-affine warp onto the mean shape)
    projected on the shipped eigenfaces (:mod:`facedeid.facemodel`); distance
    and average of the coefficients; the average coefficients are
    reconstructed into a texture, which keeps the *mean* shape and is placed on
    the face by the similarity transform (like a registered k-Same-Eigen face).
``m`` (k-Same-M, after Gross et al. 2005)
    shape (68 points, similarity-normalised) and shape-free texture averaged
    *separately*; the average texture is warped onto the target's **own**
    landmarks (pose and expression kept; ``shape_weight`` > 0 moves them towards the
    group's average shape), colour-matched to the target and pasted.

Every kind pastes with seed 004's landmark mask (``face_hull`` by default)
and an adaptive Gaussian-smoothed boundary.

:class:`Sample` is one face's encoding (``feature`` for the grouping, ``data``
for the average); :class:`Target` is what a face is painted with: the average
of its group (or of the shipped pool's nearest k-averaged faces) and a record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import FaceDeidError
from ..imageops import color_channels, dtype_max
from .grouping import Group

KINDS = ("pixel", "eigen", "m")
COLOR_MODES = ("none", "mean", "meanstd", "shading")
MASK_REGIONS = ("face_hull", "face_outline")
DEFAULT_SIZE = 128
"""Aligned frame / texture size (pixels) of ``pixel`` and ``m`` (``eigen`` uses the model's, 64)."""
SHAPE_FEATURE_WEIGHT = 1.0
"""``m``: weight of the shape (pixels of the model's texture frame) against the texture
coefficients in the grouping distance."""


@dataclass(frozen=True, eq=False)
class Sample:
    """One face, encoded for k-Same.

    Attributes:
        feature: 1-D float vector; groups are formed by Euclidean distance between features.
        data: named arrays that are averaged over a group (``aligned``, ``coeff``,
            ``texture``, ``shape``).
    """

    feature: np.ndarray
    data: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Target:
    """What one face is painted with.

    Attributes:
        data: the average (same names as :attr:`Sample.data`).
        info: JSON-ready record: ``source`` (``set``, ``set+gallery`` or ``pool``),
            group index and size, number of distinct people averaged.
    """

    data: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ model access
def _model():
    from ..facemodel import load_face_model

    return load_face_model()


def _eigen(model, components: int | None):
    mean, comps, _ = model.eigen
    if components is not None:
        if not (1 <= int(components) <= len(comps)):
            raise ValueError(f"components must be 1..{len(comps)}, got {components}")
        comps = comps[: int(components)]
    return mean, comps


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp).reshape((size, size) + img.shape[2:])


def _unit_shape(landmarks68: np.ndarray, model) -> np.ndarray:
    """The face's 68 points, similarity-normalised into the model's unit frame."""
    from ..landmarks.align import similarity_matrix, transform_points

    m = similarity_matrix(landmarks68, model.mean_shape)
    return transform_points(m, landmarks68)


# ------------------------------------------------------------------ encoding
def check_params(kind: str, params: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a bad parameter value (before any work is done)."""
    if kind not in KINDS:
        raise ValueError(f"unknown k-Same kind '{kind}'")
    k = params.get("k")
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)) \
            or not float(k).is_integer() or int(k) < 1:
        raise ValueError(f"k must be a whole number >= 1 (the number of people averaged), got {k!r}")
    size = params.get("size", DEFAULT_SIZE)
    if kind != "eigen" and not (isinstance(size, (int, np.integer)) and 32 <= int(size) <= 512):
        raise ValueError(f"size must be an integer in 32..512 pixels, got {size!r}")
    if (params.get("color") or "none") not in COLOR_MODES:
        raise ValueError(f"color must be one of {', '.join(COLOR_MODES)}, got {params.get('color')!r}")
    forehead = params.get("forehead", 0.0)
    if not isinstance(forehead, (int, float)) or not 0.0 <= float(forehead) <= 1.0:
        raise ValueError(f"forehead must be a number in 0..1, got {forehead!r}")
    if params.get("region", "face_outline") not in MASK_REGIONS:
        raise ValueError(f"region must be one of {', '.join(MASK_REGIONS)}, got {params.get('region')!r}")
    shading = params.get("shading", 0.2)
    if isinstance(shading, bool) or not isinstance(shading, (int, float)) \
            or not 0.02 <= float(shading) <= 1.0:
        raise ValueError(f"shading must be a number in 0.02..1, got {shading!r}")
    smooth = params.get("smooth", 0.04)
    if not isinstance(smooth, (int, float)) or not 0 <= float(smooth) <= 0.5:
        raise ValueError(f"smooth must be a number in 0..0.5, got {smooth!r}")
    if kind == "m":
        w = params.get("shape_weight", 0.0)
        if not isinstance(w, (int, float)) or not 0.0 <= float(w) <= 1.0:
            raise ValueError(f"shape_weight must be a number in 0..1, got {w!r}")


def encode(kind: str, rgb: np.ndarray, landmarks68: np.ndarray, params: dict[str, Any]) -> Sample:
    """Encode one face (``rgb``: the whole RGB uint8 image, ``landmarks68`` in its pixels).

    Raises ``ValueError`` for degenerate landmarks.
    """
    from ..landmarks.align import align_face, shape_free

    model = _model()
    lm = np.asarray(landmarks68, np.float64)
    if kind == "pixel":
        size = int(params.get("size", DEFAULT_SIZE))
        al = align_face(rgb, lm, size).image.astype(np.float32) / 255.0
        return Sample(_resize(al, model.texture_size).ravel(), {"aligned": al})
    if kind == "eigen":
        mean, comps = _eigen(model, params.get("components"))
        tex = shape_free(rgb, lm, model.texture_size).astype(np.float64) / 255.0
        coeff = comps @ (tex.ravel() - mean)
        return Sample(coeff.astype(np.float32), {"coeff": coeff})
    if kind == "m":
        size = int(params.get("size", DEFAULT_SIZE))
        tex = shape_free(rgb, lm, size).astype(np.float32) / 255.0
        shape = _unit_shape(lm, model)
        inside = shape_free(np.full(rgb.shape[:2], 255, np.uint8), lm, size, border="constant")
        weight = texture_reliability(lm, size) * (inside.astype(np.float32) / 255.0)
        return Sample(m_feature(_resize(tex, model.texture_size), shape, model),
                      {"texture": tex, "shape": shape, "weight": weight})
    raise ValueError(f"unknown k-Same kind '{kind}'")


def texture_reliability(landmarks68: np.ndarray, size: int) -> np.ndarray:
    """Float32 ``size x size`` weight of each shape-free texture pixel: how faithfully the
    face's own pixels fill it.

    The shape-free warp maps each triangle of the mean-shape mesh from the face's
    triangle; on a turned face the far side's triangles are squashed or even folded
    (flipped), so their texture is smeared or mirrored and averaging it leaves seams.
    Weight = the face triangle's area relative to the mesh triangle's (after the global
    similarity), ramped from 0 (flipped, or a quarter of the area or less) to 1 (half
    or more), then smoothed.  :func:`encode` also zeroes the pixels that fall outside
    the image (a face cut by the border).  Group averages are weighted by it (:func:`average`).
    """
    from ..landmarks.align import (border_points, canonical_landmarks, delaunay_triangles,
                                   similarity_matrix, transform_points)

    lm = np.asarray(landmarks68, np.float64)
    canon = canonical_landmarks(size)
    border = border_points((size, size))
    dst = np.vstack([canon, border])
    tri = delaunay_triangles(dst)
    m = similarity_matrix(canon, lm)
    src = np.vstack([lm, transform_points(m, border)])

    def area(p):
        a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
        return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))

    scale2 = abs(float(np.linalg.det(m[:, :2])))
    ratio = area(src) / max(scale2, 1e-12) / np.where(np.abs(area(dst)) > 1e-9, area(dst), 1e-9)
    w_tri = np.clip((ratio - 0.25) / 0.25, 0.0, 1.0)
    weight = np.zeros((size, size), np.float32)
    for t, w in zip(tri, w_tri):
        if w < 1.0:
            continue
        cv2.fillConvexPoly(weight, np.round(dst[t] * 16).astype(np.int32), 1.0, cv2.LINE_AA, 4)
    for t, w in zip(tri, w_tri):
        if 0.0 < w < 1.0:
            cv2.fillConvexPoly(weight, np.round(dst[t] * 16).astype(np.int32), float(w),
                               cv2.LINE_AA, 4)
    sigma = max(1.0, 0.02 * size)
    return cv2.GaussianBlur(weight, (0, 0), sigma)


def m_feature(texture64: np.ndarray, shape_unit: np.ndarray, model) -> np.ndarray:
    """``m``'s grouping feature: texture eigen-coefficients and the shape's deviation from the mean."""
    mean, comps = _eigen(model, None)
    coeff = comps @ (np.asarray(texture64, np.float64).ravel() - mean)
    dev = (np.asarray(shape_unit) - model.mean_shape).ravel() * model.texture_size
    return np.concatenate([coeff, SHAPE_FEATURE_WEIGHT * dev]).astype(np.float32)


def average(samples: Sequence[Sample | Target], weights: Sequence[float] | None = None
            ) -> dict[str, np.ndarray]:
    """Per-array (weighted) mean of the samples' data."""
    w = np.ones(len(samples)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    out = {}
    for key in samples[0].data:
        if key == "weight":
            continue
        if key == "texture" and all("weight" in s.data for s in samples):
            # per pixel, weighted by how reliable each face's texture is there (never 0 in all)
            pw = np.stack([wi * np.asarray(s.data["weight"], np.float64) + 1e-3 * wi
                           for wi, s in zip(w, samples)])
            tex = np.stack([np.asarray(s.data["texture"], np.float64) for s in samples])
            acc = (pw[..., None] * tex).sum(axis=0) / pw.sum(axis=0)[..., None]
        else:
            acc = sum(wi * np.asarray(s.data[key], np.float64) for wi, s in zip(w, samples))
        out[key] = np.asarray(acc, np.float32 if key in ("aligned", "texture") else np.float64)
    return out


# ------------------------------------------------------------------ the shipped pool
@dataclass(frozen=True, eq=False)
class Pool:
    """The shipped k-averaged faces, encoded for one kind.

    Attributes:
        samples: one :class:`Sample` per pool entry.
        people: distinct people averaged in each entry (every entry >= ``k_built``).
        k_built: the k the pool was built with.
    """

    samples: list[Sample]
    people: np.ndarray
    k_built: int


def load_pool(kind: str, params: dict[str, Any]) -> Pool:
    """The shipped pool of k-averaged faces, as samples of ``kind`` (see ``tools/build_face_model.py``)."""
    model = _model()
    tex, shapes, aligned, people = model.require("pool_texture", "pool_shape", "pool_aligned",
                                                 "pool_people")
    k_built = int(model.meta.get("pool", {}).get("k", int(np.min(people))))
    samples = []
    size = int(params.get("size", DEFAULT_SIZE))
    for i in range(len(people)):
        t = np.asarray(tex[i], np.float32) / 255.0
        if kind == "pixel":
            a = np.asarray(aligned[i], np.float32) / 255.0
            samples.append(Sample(a.ravel(), {"aligned": _resize(a, size)}))
        elif kind == "eigen":
            mean, comps = _eigen(model, params.get("components"))
            coeff = comps @ (t.astype(np.float64).ravel() - mean)
            samples.append(Sample(coeff.astype(np.float32), {"coeff": coeff}))
        else:
            s = np.asarray(shapes[i], np.float64)
            samples.append(Sample(m_feature(t, s, model), {"texture": _resize(t, size), "shape": s}))
    return Pool(samples, np.asarray(people, np.int64), k_built)


def pool_targets(samples: Sequence[Sample], pool: Pool, k: int) -> list[Target]:
    """Each face gets the average of the pool entries nearest to it, enough of them to
    stand for at least ``k`` distinct people (entries are disjoint groups of people).

    The face itself is **not** averaged in: its texture does not enter the result.
    """
    feats = np.stack([s.feature for s in pool.samples]).astype(np.float64)
    order_people = pool.people
    out = []
    for s in samples:
        d = ((feats - np.asarray(s.feature, np.float64)) ** 2).sum(axis=1)
        order = np.argsort(d, kind="stable")
        chosen, people = [], 0
        for j in order:
            chosen.append(int(j))
            people += int(order_people[j])
            if people >= k:
                break
        if people < k:
            raise FaceDeidError(
                f"the shipped pool averages {int(order_people.sum())} people in all, fewer than "
                f"k={k}: use a smaller k or --gallery")
        data = average([pool.samples[j] for j in chosen], weights=order_people[chosen])
        out.append(Target(data, {"source": "pool", "n_people": people,
                                 "pool_entries": chosen, "k": k}))
    return out


def group_targets(groups: Sequence[Group], samples: Sequence[Sample], n_cover: int, k: int,
                  source: str) -> list[Target | None]:
    """The average of each group, for each of the first ``n_cover`` samples (the faces to paint)."""
    out: list[Target | None] = [None] * n_cover
    for g in groups:
        data = average([samples[m] for m in g.members])
        n_fill = sum(1 for m in g.members if m >= n_cover)
        info = {"source": source, "k": k, **g.info(), "n_gallery": n_fill}
        target = Target(data, info)
        for m in g.members:
            if m < n_cover:
                out[m] = target
    return out


# ------------------------------------------------------------------ painting
def _lowpass_in(x: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of ``x`` (H x W) using only the pixels weighted by ``w`` (normalized
    convolution), so the background outside the face does not bleed in."""
    num = cv2.GaussianBlur((x * w).astype(np.float32), (0, 0), sigma)
    den = cv2.GaussianBlur(w.astype(np.float32), (0, 0), sigma)
    return num / np.maximum(den, 1e-4)


def _match_color(src: np.ndarray, ref: np.ndarray, mask: np.ndarray, mode: str,
                 shading: float = 0.2) -> np.ndarray:
    """``src`` (float RGB [0, 1]) with its Lab mean (and std) inside ``mask`` set to ``ref``'s.

    ``shading``: the Lab mean is matched, then the low frequencies of the lightness
    (Gaussian sigma = ``shading`` x sqrt(mask area), computed inside the mask) are taken
    from ``ref``: the target's lighting and shadows over the average's texture.
    """
    if mode == "none":
        return src
    sel = mask > 0.5
    if sel.sum() < 16:
        return src
    a = cv2.cvtColor(np.ascontiguousarray(src, np.float32), cv2.COLOR_RGB2LAB)
    b = cv2.cvtColor(np.ascontiguousarray(ref, np.float32), cv2.COLOR_RGB2LAB)
    if mode == "shading":
        w = sel.astype(np.float32)
        sigma = max(1.0, float(shading) * math.sqrt(float(sel.sum())))
        la, lb = _lowpass_in(a[..., 0], w, sigma), _lowpass_in(b[..., 0], w, sigma)
        a[..., 0] = np.clip(a[..., 0] + (lb - la), 0.0, 100.0)
        mode = "mean"
    ma, mb = a[sel].mean(axis=0), b[sel].mean(axis=0)
    if mode == "meanstd":
        sa, sb = a[sel].std(axis=0), b[sel].std(axis=0)
        gain = np.clip(sb / np.maximum(sa, 1e-3), 1 / 3.0, 3.0)
    else:
        gain = np.ones(3, np.float32)
    a = (a - ma) * gain + mb
    return np.clip(cv2.cvtColor(a.astype(np.float32), cv2.COLOR_LAB2RGB), 0.0, 1.0)


def _to_crop_format(rgb01: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """A float RGB [0, 1] layer in ``crop``'s channels and value scale (alpha copied)."""
    scale = dtype_max(crop.dtype)
    nc = color_channels(crop)
    if nc == 1:
        v = (0.299 * rgb01[..., 0] + 0.587 * rgb01[..., 1] + 0.114 * rgb01[..., 2]) * scale
        return v if crop.ndim == 2 else v[..., None]
    v = rgb01 * scale
    if crop.ndim == 3 and crop.shape[2] == 4:
        v = np.concatenate([v, crop[..., 3:].astype(np.float64)], axis=2)
    return v


def _crop_rgb01(crop: np.ndarray) -> np.ndarray:
    from ..imageops import to_rgb8

    if crop.dtype == np.uint16:
        c = crop if crop.ndim == 3 else crop[..., None]
        c = c[..., :3] if c.shape[2] >= 3 else np.repeat(c, 3, axis=2)
        return c.astype(np.float32) / 65535.0
    return to_rgb8(crop).astype(np.float32) / 255.0


def mask_landmarks(landmarks68: np.ndarray, forehead: float) -> np.ndarray:
    """The landmarks the painted mask is built from: the eyebrows (points 17-26) raised
    by ``forehead`` x the chin-to-eyebrows distance, so the mask covers the forehead."""
    lm = np.asarray(landmarks68, np.float64)
    if forehead <= 0:
        return lm
    out = lm.copy()
    out[17:27] += float(forehead) * (lm[17:27].mean(axis=0) - lm[8])
    return out


def render(kind: str, crop: np.ndarray, landmarks68: np.ndarray, target: Target,
           params: dict[str, Any]) -> np.ndarray:
    """Paint ``target`` on the face with ``landmarks68`` (crop pixels); returns a new crop."""
    from ..landmarks.align import (blend, canonical_landmarks, landmark_mask, similarity_matrix,
                                   transform_points, warp_back, warp_back_coverage,
                                   warp_texture_to)

    img = np.asarray(crop)
    hw = img.shape[:2]
    lm = np.asarray(landmarks68, np.float64)
    model = _model()
    region = params.get("region", "face_outline")
    alpha = landmark_mask(mask_landmarks(lm, float(params.get("forehead", 0.0))), hw,
                          float(params.get("smooth", 0.04)), region)
    if kind == "pixel":
        tex = np.asarray(target.data["aligned"], np.float32)
        m = similarity_matrix(lm, canonical_landmarks(tex.shape[0]))
        layer = warp_back(tex, m, hw)
        alpha = alpha * warp_back_coverage(tex.shape[0], m, hw)
    elif kind == "eigen":
        mean, comps = _eigen(model, params.get("components"))
        coeff = np.asarray(target.data["coeff"], np.float64)
        size = model.texture_size
        tex = np.clip(mean + comps[: coeff.size].T @ coeff, 0.0, 1.0).reshape(size, size, 3)
        m = similarity_matrix(lm, canonical_landmarks(size))
        layer = warp_back(tex.astype(np.float32), m, hw)
        alpha = alpha * warp_back_coverage(size, m, hw)
    elif kind == "m":
        tex = np.asarray(target.data["texture"], np.float32)
        dst = lm
        w = float(params.get("shape_weight", 0.0))
        if w > 0:
            to_face = similarity_matrix(model.mean_shape, lm)
            avg = transform_points(to_face, target.data["shape"])
            dst = lm + w * (avg - lm)
        layer, cov = warp_texture_to(tex, dst, hw, return_coverage=True)
        alpha = alpha * cov
    else:
        raise ValueError(f"unknown k-Same kind '{kind}'")
    layer = np.asarray(layer, np.float32).reshape(hw + (3,))
    color = params.get("color") or "none"
    if color != "none":
        layer = _match_color(layer, _crop_rgb01(img), alpha, color,
                             float(params.get("shading", 0.2)))
    out = _to_crop_format(layer, img)
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return blend(img, out.astype(img.dtype).reshape(img.shape), alpha)


MIN_IOD = 10.0
"""Faces whose outer inter-ocular distance is below this (pixels; a face about 25 px wide)
are not averaged: their landmarks and texture are too coarse. They get the fallback."""


def face_size_ok(landmarks68: np.ndarray, min_iod: float = MIN_IOD) -> bool:
    """False for faces too small to average (outer inter-ocular distance < ``min_iod`` px)."""
    lm = np.asarray(landmarks68)
    return bool(math.dist(lm[36], lm[45]) >= min_iod)


__all__ = ["KINDS", "COLOR_MODES", "DEFAULT_SIZE", "Sample", "Target", "Pool", "check_params",
           "encode", "average", "load_pool", "pool_targets", "group_targets", "render",
           "m_feature", "face_size_ok"]
