"""One face replaced: render a new face on the target's landmarks, match colour, blend.

The steps shared by ``--method replace`` (stage 1) and ``--method fatm``
(stage 2); only the *renderer* differs:

1. **render** a face in the target crop's frame, already on the target's 68
   landmarks: stage 1 warps a donor piecewise-affinely onto them
   (:func:`warp_donor`); stage 2 aligns the target, runs the learned model, and
   warps its output back.  The renderer also says which pixels it covers.
2. **mask**: seed 004's landmark mask (``face_hull``: eyebrows, lower lip and 8
   interpolated cheek points; or ``face_outline``: jaw and eyebrows), restricted
   to the covered pixels.
3. **colour and light** (:mod:`.color`): Lab statistics transfer inside the mask,
   then the target's low-frequency shading.
4. **blend** (:mod:`.blend`): multi-band (default), Poisson, or seed 004's
   Gaussian-smoothed alpha, with a boundary smoothed adaptively to the face size.

Pixels outside the mask keep the target's values exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import blend as B
from . import color as C
from .donors import Donor, inter_ocular

REGIONS = ("face_hull", "face_outline")


@dataclass(frozen=True)
class SwapSettings:
    """How a rendered face is merged into the target (see docs/REPLACE.md).

    Attributes:
        region: ``face_hull`` (seed 004) or ``face_outline`` (also the chin and jaw).
        blend: ``laplacian``, ``seamless`` or ``alpha``.
        color: strength of the Lab statistics transfer, 0..1.
        shading: carry the target's low-frequency shading over (bool).
        smooth: width of the mask's soft edge (Gaussian sigma) as a fraction of the
            inter-ocular distance.
        scale: the mask polygon scaled about its centre (1 = the landmarks' outline).
        reshape: how far brows, eyes and nose move towards the donor's proportions,
            0..1 (:func:`reshape_landmarks`).
        keep_mouth: keep the target's mouth opening (inside the inner lip line) so
            teeth and an open mouth stay (bool).
    """

    region: str = "face_outline"
    blend: str = "laplacian"
    color: float = 1.0
    shading: bool = True
    smooth: float = 0.08
    scale: float = 1.25
    reshape: float = 0.5
    keep_mouth: bool = True

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"unknown region '{self.region}'; choose one of: {', '.join(REGIONS)}")
        if self.blend not in B.BLENDS:
            raise ValueError(f"unknown blend '{self.blend}'; choose one of: {', '.join(B.BLENDS)}")
        if not 0.0 <= float(self.color) <= 1.0:
            raise ValueError(f"color must be in [0, 1], got {self.color!r}")
        if not (float(self.smooth) >= 0 and math.isfinite(float(self.smooth))):
            raise ValueError(f"smooth must be >= 0, got {self.smooth!r}")
        if not 0.5 <= float(self.scale) <= 2.0:
            raise ValueError(f"scale must be in [0.5, 2], got {self.scale!r}")
        if not 0.0 <= float(self.reshape) <= 1.0:
            raise ValueError(f"reshape must be in [0, 1], got {self.reshape!r}")


INNER = slice(17, 48)
"""Eyebrows, nose and eyes: the points :func:`reshape_landmarks` moves (the jaw and the
mouth, which carries most of the expression, stay)."""
INNER_MOUTH = slice(60, 68)
"""The inner lip outline: with ``keep_mouth`` the target's own mouth opening (teeth,
tongue) is kept, so an open mouth or a smile stays as it was."""


MOUTH = slice(48, 68)


def reshape_landmarks(target68: np.ndarray, donor68: np.ndarray, amount: float) -> np.ndarray:
    """The target's landmarks with the inner features moved ``amount`` of the way to the donor's.

    The donor's shape is first mapped onto the target by the least-squares
    similarity transform of all 68 points (so pose, roll and size stay the
    target's).  Then eyebrows, nose and eyes (points 17-47) move by ``amount``
    towards the mapped donor's; the mouth (48-67) keeps its own shape (the
    expression: open, smiling) but its centre and width move by ``amount``
    towards the donor's; the jaw line stays.  This changes proportions a
    recognizer measures (eye spacing, brow height, nose length, mouth position
    and width) without moving the face: ``amount = 0`` keeps the target's geometry.
    """
    from ..landmarks.align import similarity_matrix, transform_points

    t = np.asarray(target68, np.float64)
    if amount <= 0:
        return t.copy()
    a = float(amount)
    d = transform_points(similarity_matrix(donor68, t), np.asarray(donor68, np.float64))
    out = t.copy()
    out[INNER] = t[INNER] + a * (d[INNER] - t[INNER])
    tm, dm = t[MOUTH], d[MOUTH]
    tc, dc = tm.mean(axis=0), dm.mean(axis=0)
    tw = float(np.hypot(*(t[54] - t[48])))
    dw = float(np.hypot(*(d[54] - d[48])))
    scale = 1.0 + a * (dw / tw - 1.0) if tw > 1e-9 else 1.0
    out[MOUTH] = (tm - tc) * scale + tc + a * (dc - tc)
    return out


def warp_self(image: np.ndarray, src68: np.ndarray, dst68: np.ndarray) -> np.ndarray:
    """``image`` warped piecewise-affinely so its landmarks ``src68`` move to ``dst68``
    (68 points plus the frame's 8 border points, which stay put)."""
    from ..landmarks.align import border_points, delaunay_triangles, piecewise_affine_warp

    frame = border_points(image.shape[:2])
    src = np.vstack([np.asarray(src68, np.float64), frame])
    dst = np.vstack([np.asarray(dst68, np.float64), frame])
    return piecewise_affine_warp(image, src, dst, image.shape[:2], triangles=delaunay_triangles(dst),
                                 border="replicate")


def warp_donor(donor: Donor, landmarks68: np.ndarray, out_hw) -> tuple[np.ndarray, np.ndarray]:
    """The donor warped piecewise-affinely onto ``landmarks68`` in an ``out_hw`` frame.

    The mesh is the Delaunay triangulation of the donor's 68 points plus 8 points
    on its frame's border (carried to the target by the global similarity
    transform, as :func:`facedeid.landmarks.align.warp_texture_to` does), so the
    whole face, forehead included, is covered.  Returns ``(rgb uint8, coverage)``.
    """
    from ..landmarks.align import (border_points, delaunay_triangles, piecewise_affine_warp,
                                   similarity_matrix, transform_points)

    src68 = np.asarray(donor.landmarks, np.float64)
    dst68 = np.asarray(landmarks68, np.float64)
    frame = border_points(donor.image.shape[:2])
    src = np.vstack([src68, frame])
    dst = np.vstack([dst68, transform_points(similarity_matrix(src68, dst68), frame)])
    tri = delaunay_triangles(src)
    out, cov = piecewise_affine_warp(donor.image, src, dst, out_hw, triangles=tri,
                                     border="replicate", return_coverage=True)
    return out, cov


def face_mask(landmarks68: np.ndarray, hw, region: str, scale: float = 1.0) -> np.ndarray:
    """Binary (0/1 float32) landmark mask of ``region`` (scaled by ``scale``) in an ``hw`` frame."""
    from ..landmarks.align import landmark_mask

    return landmark_mask(landmarks68, hw, smooth=0.0, region=region, scale=scale)


def mouth_mask(landmarks68: np.ndarray, hw) -> np.ndarray:
    """0/1 float32 mask of the mouth opening (convex hull of the inner lip, points 60-67),
    empty when the mouth is closed (the hull has no area)."""
    from ..composite import polygon_mask
    from ..landmarks.regions import convex_hull

    pts = np.asarray(landmarks68, np.float64)[INNER_MOUTH]
    return polygon_mask(int(hw[0]), int(hw[1]), convex_hull(pts) + 0.5).astype(np.float32)


def merge(rendered: np.ndarray, coverage: np.ndarray, target: np.ndarray, landmarks68: np.ndarray,
          settings: SwapSettings, mouth: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Steps 2-4: mask, colour/light, blend.  All images RGB uint8 of one size.

    ``mouth``: ``(rgb, mask)`` pixels put over the recoloured face before blending
    (the target's own mouth opening, see :func:`mouth_from_target`).

    Returns the target with the rendered face merged in (the target itself
    where the mask is 0).
    """
    hw = target.shape[:2]
    mask = face_mask(landmarks68, hw, settings.region, settings.scale) * (np.asarray(coverage) > 0.5)
    if mask.sum() < 16:
        return target.copy()
    face = rendered
    if settings.color > 0:
        face = C.lab_transfer(face, mask, target, mask, strength=float(settings.color))
    iod = inter_ocular(landmarks68)
    if settings.shading:
        face = C.match_shading(face, target, mask, sigma=0.35 * iod)
    if mouth is not None:
        mouth_rgb, mouth_m = mouth
        sel = np.asarray(mouth_m) > 0.5
        face = face.copy()
        face[sel] = mouth_rgb[sel]
    sigma = float(settings.smooth) * iod
    return B.blend(face, target, mask, settings.blend, sigma=sigma)


def mouth_from_target(target: np.ndarray, landmarks68: np.ndarray,
                      new68: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The target's mouth opening moved to the reshaped landmarks ``new68``:
    ``(rgb, mask)``, or None when the mouth is closed (no opening to keep)."""
    m = mouth_mask(new68, target.shape[:2])
    if m.sum() < 4:
        return None
    moved = target if np.array_equal(new68, landmarks68) else warp_self(target, landmarks68, new68)
    return moved, m


def replace_with_donor(target: np.ndarray, landmarks68: np.ndarray, donor: Donor,
                       settings: SwapSettings = SwapSettings()) -> np.ndarray:
    """Stage 1 on one face: ``target`` (RGB uint8) with ``donor`` warped onto ``landmarks68``
    (reshaped by ``settings.reshape``)."""
    dst = reshape_landmarks(landmarks68, donor.geometry, settings.reshape)
    rendered, cov = warp_donor(donor, dst, target.shape[:2])
    mouth = mouth_from_target(target, landmarks68, dst) if settings.keep_mouth else None
    return merge(rendered, cov, target, landmarks68, settings, mouth)


__all__ = ["REGIONS", "INNER", "INNER_MOUTH", "MOUTH", "SwapSettings", "reshape_landmarks", "warp_donor", "face_mask",
           "mouth_mask", "warp_self", "mouth_from_target", "merge", "replace_with_donor"]
