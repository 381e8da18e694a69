"""Blending a warped donor face into the target image without a visible seam.

Three ways, chosen by the ``blend`` parameter of ``--method replace``:

``laplacian`` (default)
    multi-band blending (Burt and Adelson 1983): both images are split into
    Laplacian pyramids, each band is mixed with the mask blurred to that band's
    scale, and the result is collapsed.  Low frequencies (skin tone, light) cross
    the seam over a wide band, fine detail over a narrow one, so there is neither a
    halo nor a hard edge, and the donor's detail stays sharp inside.
``seamless``
    Poisson image editing (Perez et al. 2003, ``cv2.seamlessClone`` with
    ``NORMAL_CLONE``): the donor's gradients inside the mask, the target's colours
    on its boundary.  Adapts the lighting strongly; can bleed the target's
    boundary colour (e.g. dark hair) into the face.
``alpha``
    seed 004's own step: "adaptive Gaussian smoothing of the boundary" -- a plain
    alpha blend through the mask smoothed with a Gaussian whose width follows the
    face size (:func:`soft_mask`).

Every function takes ``fg`` (donor, already warped and recoloured) and ``bg``
(target) as RGB ``uint8`` of one size and a mask in [0, 1] of that size, and
returns RGB ``uint8``.  Outside the (dilated) mask the result equals ``bg``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

BLENDS = ("laplacian", "seamless", "alpha")


def _check(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if fg.shape != bg.shape or fg.ndim != 3 or fg.shape[2] != 3:
        raise ValueError(f"blend needs two RGB images of one size, got {fg.shape} and {bg.shape}")
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != fg.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match the image {fg.shape[:2]}")
    return np.clip(m, 0.0, 1.0)


def soft_mask(mask: np.ndarray, sigma: float, inside: bool = True) -> np.ndarray:
    """The mask with a Gaussian-smoothed boundary (float32 in [0, 1]).

    With ``inside`` the binary mask is first eroded by ``2 sigma`` so that the
    soft edge lies within the original mask: pixels outside it stay exactly 0
    (nothing of the donor leaks past the landmark hull), the core is 1.
    ``sigma`` <= 0 returns the binary mask.
    """
    m = (np.asarray(mask, dtype=np.float32) > 0.5).astype(np.float32)
    if sigma <= 0:
        return m
    if inside:
        r = int(math.ceil(2.0 * sigma))
        if r > 0:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            m = cv2.erode(m, k)
    ks = 2 * int(math.ceil(3.0 * sigma)) + 1
    out = cv2.GaussianBlur(m, (ks, ks), sigma)
    if inside:
        out = np.where(np.asarray(mask) > 0.5, out, 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def alpha_blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``bg + (fg - bg) * mask`` rounded to uint8."""
    m = _check(fg, bg, mask)[..., None]
    out = bg.astype(np.float32) + (fg.astype(np.float32) - bg.astype(np.float32)) * m
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _levels_for(h: int, w: int, levels: int | None) -> int:
    most = max(1, int(math.floor(math.log2(max(min(h, w), 2)))) - 2)
    return most if levels is None else max(1, min(int(levels), most))


def laplacian_blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray,
                    levels: int | None = None) -> np.ndarray:
    """Multi-band blend of ``fg`` into ``bg`` through ``mask`` (see the module docstring).

    ``levels``: number of pyramid levels (None: as many as the size allows, down
    to about 8 pixels).  The change fades out linearly within ``2^levels`` pixels
    outside the mask; pixels farther away keep ``bg`` exactly.
    """
    m = _check(fg, bg, mask)
    h, w = m.shape
    n = _levels_for(h, w, levels)
    gf, gb, gm = [fg.astype(np.float32)], [bg.astype(np.float32)], [m]
    for _ in range(n):
        gf.append(cv2.pyrDown(gf[-1]))
        gb.append(cv2.pyrDown(gb[-1]))
        gm.append(cv2.pyrDown(gm[-1]))
    out = gf[n] * gm[n][..., None] + gb[n] * (1.0 - gm[n][..., None])
    for i in range(n - 1, -1, -1):
        size = (gf[i].shape[1], gf[i].shape[0])
        lf = gf[i] - cv2.pyrUp(gf[i + 1], dstsize=size)
        lb = gb[i] - cv2.pyrUp(gb[i + 1], dstsize=size)
        band = lf * gm[i][..., None] + lb * (1.0 - gm[i][..., None])
        out = cv2.pyrUp(out, dstsize=size) + band
    # the coarse bands reach past the mask: fade the change out linearly over ``2^n`` pixels
    # from the mask, so pixels farther away keep ``bg`` exactly
    reach = float(2 ** n)
    outside = (m <= 0).astype(np.uint8)
    if outside.all():
        return bg.copy()
    dist = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    fade = np.clip(1.0 - dist / reach, 0.0, 1.0)[..., None]
    bgf = bg.astype(np.float32)
    res = np.clip(np.rint(bgf + (out - bgf) * fade), 0, 255).astype(np.uint8)
    res[dist >= reach] = bg[dist >= reach]
    return res


def seamless_blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson blend (``cv2.seamlessClone``, NORMAL_CLONE) of ``fg`` into ``bg``.

    The images are padded by reflection first, so masks that touch the crop's
    edge work (OpenCV refuses a mask that reaches the border).
    """
    m = _check(fg, bg, mask)
    binary = (m > 0.5).astype(np.uint8) * 255
    if not binary.any():
        return bg.copy()
    pad = 4
    fgp = cv2.copyMakeBorder(fg, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    bgp = cv2.copyMakeBorder(bg, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    mp = cv2.copyMakeBorder(binary, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(mp)
    center = (x + w // 2, y + h // 2)
    # seamlessClone works in BGR order internally but is channel-agnostic per channel
    out = cv2.seamlessClone(fgp, bgp, mp, center, cv2.NORMAL_CLONE)
    out = out[pad:-pad, pad:-pad]
    # the clone may shift by a pixel for even-sized rects: keep bg outside the mask exactly
    keep = binary == 0
    out[keep] = bg[keep]
    return out


def levels_for_sigma(sigma: float) -> int:
    """Pyramid levels for a mask edge of width ``sigma``: ``2^levels ~ 2 sigma`` pixels (at
    least 2 levels), so the blend reaches about as far past the mask as the smoothed edge."""
    return max(2, int(math.ceil(math.log2(max(2.0 * float(sigma), 4.0)))))


def blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray, how: str = "laplacian",
          sigma: float = 0.0) -> np.ndarray:
    """Blend with the named method; ``sigma`` smooths the mask's edge first (:func:`soft_mask`)
    and sets how far the multi-band blend reaches past the mask (:func:`levels_for_sigma`)."""
    if how not in BLENDS:
        raise ValueError(f"unknown blend '{how}'; choose one of: {', '.join(BLENDS)}")
    if how == "seamless":
        return seamless_blend(fg, bg, mask)
    soft = soft_mask(mask, sigma) if sigma > 0 else _check(fg, bg, mask)
    if how == "alpha":
        return alpha_blend(fg, bg, soft)
    return laplacian_blend(fg, bg, soft, levels=levels_for_sigma(sigma))


__all__ = ["BLENDS", "levels_for_sigma", "soft_mask", "alpha_blend", "laplacian_blend", "seamless_blend", "blend"]
