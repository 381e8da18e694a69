"""Colour and lighting transfer: make a donor face take the target's skin tone and light.

Reinhard et al.'s statistics transfer, computed only where it matters: the mean
and standard deviation of each channel of the CIE L*a*b* image (OpenCV's float
Lab: L in [0, 100], a/b roughly in [-127, 127]) are measured **inside the skin
region** of the donor and of the target (a landmark mask), and the donor's
pixels are shifted and scaled so that their statistics become the target's::

    out_c = (src_c - mean_src_c) * (std_tgt_c / std_src_c) + mean_tgt_c

The scale is clipped to ``[1 / max_gain, max_gain]`` so that a nearly flat
region (std ~ 0) cannot blow the contrast up.  Because the statistics are taken
inside masks, a dark background or hair in the donor crop does not shift the
skin colour.  ``strength`` in [0, 1] mixes between no change (0) and the full
transfer (1).

A second, local step (:func:`match_shading`) carries over the target's
**low-frequency shading** (where the light comes from): the ratio of the two
faces' heavily blurred L channels, so a face lit from the left stays lit from
the left.  Fine detail (the identity) is never copied from the target.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_GAIN = 3.0
"""Largest per-channel contrast change of :func:`lab_transfer` (and smallest, as 1/MAX_GAIN)."""


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``uint8`` (or float in [0, 1]) RGB to float32 Lab (L 0..100)."""
    img = np.asarray(rgb)
    f = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2LAB)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Float Lab to ``uint8`` RGB (rounded, clipped)."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab.astype(np.float32)), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def masked_stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of ``values`` (H x W x C) where ``mask`` > 0.5.

    Raises:
        ValueError: the mask selects fewer than 2 pixels.
    """
    sel = np.asarray(mask) > 0.5
    n = int(sel.sum())
    if n < 2:
        raise ValueError(f"colour statistics need a mask of at least 2 pixels, got {n}")
    px = values[sel].astype(np.float64)
    return px.mean(axis=0), px.std(axis=0)


def lab_transfer(src: np.ndarray, src_mask: np.ndarray, target: np.ndarray, target_mask: np.ndarray,
                 strength: float = 1.0, max_gain: float = MAX_GAIN) -> np.ndarray:
    """``src`` (RGB uint8) recoloured so its Lab statistics inside ``src_mask`` equal
    ``target``'s inside ``target_mask``; returns RGB uint8 of ``src``'s shape.

    The two images may differ in size (statistics are per mask).

    >>> import numpy as np
    >>> a = np.full((8, 8, 3), (200, 150, 120), np.uint8); b = np.full((8, 8, 3), (90, 60, 50), np.uint8)
    >>> m = np.ones((8, 8))
    >>> out = lab_transfer(a, m, b, m)
    >>> bool(np.abs(out.astype(int) - b).max() <= 1)
    True
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"colour transfer strength must be in [0, 1], got {strength}")
    s_lab = rgb_to_lab(src)
    t_lab = rgb_to_lab(target)
    ms, ss = masked_stats(s_lab, src_mask)
    mt, st = masked_stats(t_lab, target_mask)
    gain = np.where(ss > 1e-6, st / np.maximum(ss, 1e-6), 1.0)
    gain = np.clip(gain, 1.0 / max_gain, max_gain)
    out = (s_lab - ms) * gain + mt
    if strength < 1.0:
        out = s_lab + (out - s_lab) * strength
    out[..., 0] = np.clip(out[..., 0], 0.0, 100.0)
    return lab_to_rgb(out)


def match_shading(src: np.ndarray, target: np.ndarray, mask: np.ndarray, sigma: float,
                  max_ratio: float = 1.6) -> np.ndarray:
    """Carry the target's low-frequency shading over to ``src`` (both RGB uint8, same size).

    Inside ``mask`` the L channel of ``src`` is multiplied by
    ``blur(L_target) / blur(L_src)`` (normalised Gaussian blurs of width
    ``sigma`` pixels, computed over the mask only, ratio clipped to
    ``[1/max_ratio, max_ratio]``); a and b are left as they are.  With ``sigma``
    about a quarter of the face width only the direction and falloff of the light
    pass, not the target's features.
    """
    if src.shape != target.shape:
        raise ValueError(f"shading needs images of one size, got {src.shape} and {target.shape}")
    if sigma <= 0:
        return src.copy()
    m = (np.asarray(mask, dtype=np.float32) > 0.5).astype(np.float32)
    s_lab = rgb_to_lab(src)
    t_lab = rgb_to_lab(target)

    def mblur(ch: np.ndarray) -> np.ndarray:
        num = cv2.GaussianBlur(ch * m, (0, 0), sigma)
        den = cv2.GaussianBlur(m, (0, 0), sigma)
        return num / np.maximum(den, 1e-6)

    ls, lt = mblur(s_lab[..., 0]), mblur(t_lab[..., 0])
    ratio = np.clip((lt + 1.0) / (ls + 1.0), 1.0 / max_ratio, max_ratio)
    out = s_lab.copy()
    out[..., 0] = np.where(m > 0, np.clip(s_lab[..., 0] * ratio, 0.0, 100.0), s_lab[..., 0])
    return lab_to_rgb(out)


__all__ = ["MAX_GAIN", "rgb_to_lab", "lab_to_rgb", "masked_stats", "lab_transfer", "match_shading"]
