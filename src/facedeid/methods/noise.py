"""Noise methods (seed 003's "noise", seed 002's additive and impulse noise).

One method, ``noise``, with three kinds; its strength parameter ``k`` means:

``replace`` (default, seed 003)
    ``k`` percent of the crop's pixels (exactly ``round(k/100 * H*W)``,
    chosen without replacement) get a uniformly random value in every colour
    channel independently (0..255, resp. 0..65535).
``gaussian`` (seed 002)
    additive zero-mean Gaussian noise, independent per pixel and channel, with
    standard deviation ``k`` on the 8-bit scale (x 257 for ``uint16``);
    results are clipped to the dtype's range.
``impulse`` (seed 002, "salt and pepper")
    ``k`` percent of the pixels (exact count as for ``replace``) are set to
    black or white (0 or the dtype's maximum in every colour channel), each
    with probability 1/2.

``k=None`` uses the kind's default (:data:`DEFAULT_K`).  Alpha channels are
left unchanged.  Randomness comes only from ``params["rng"]`` (a
``numpy.random.Generator``; a fresh unseeded one when absent), so a seeded
generator makes the result reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..imageops import dtype_max
from ..types import Face
from .base import Method
from .classic import check_image, on_color

KINDS = ("replace", "gaussian", "impulse")
DEFAULT_K: dict[str, float] = {"replace": 70.0, "gaussian": 150.0, "impulse": 70.0}
"""Default strength per kind (percent of pixels; sigma in 8-bit levels for gaussian).

Chosen on LFW with SFace (docs/METHODS.md): at 50 % / sigma 100 SFace's own threshold
already rejects ~98 % of same-person pairs, but the scores still separate them (AUC
0.75-0.79); these defaults bring the AUC down to 0.60-0.69 (0.54 for blackout)."""


def _rng(params: dict[str, Any]) -> np.random.Generator:
    rng = params.get("rng")
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _strength(kind: str, k: Any) -> float:
    if k is None:
        return DEFAULT_K[kind]
    try:
        val = float(k)
    except (TypeError, ValueError):
        raise ValueError(f"noise k must be a number, got {k!r}") from None
    if kind in ("replace", "impulse") and not 0.0 <= val <= 100.0:
        raise ValueError(f"noise k for kind '{kind}' is a percentage in [0, 100], got {k!r}")
    if kind == "gaussian" and not val >= 0.0:
        raise ValueError(f"noise k for kind 'gaussian' is a sigma >= 0 (8-bit levels), got {k!r}")
    return val


def _chosen(n: int, percent: float, rng: np.random.Generator) -> np.ndarray:
    count = int(round(percent / 100.0 * n))
    return rng.choice(n, size=count, replace=False) if count else np.empty(0, np.int64)


def _noise(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    img = check_image(crop)
    kind = params.get("kind", "replace")
    if kind not in KINDS:
        raise ValueError(f"noise kind must be one of {', '.join(KINDS)}, got {kind!r}")
    k = _strength(kind, params.get("k"))
    rng = _rng(params)
    top = dtype_max(img.dtype)
    h, w = img.shape[:2]

    if kind == "gaussian":
        sigma = k * top / 255.0 if np.issubdtype(img.dtype, np.integer) else k / 255.0

        def add(src):
            return src.astype(np.float64) + rng.normal(0.0, sigma, size=src.shape)

        return on_color(img, add)

    def paint(src):
        out = src.copy()
        flat = out.reshape(h * w, -1)
        idx = _chosen(h * w, k, rng)
        if kind == "replace":
            if np.issubdtype(src.dtype, np.integer):
                vals = rng.integers(0, int(top) + 1, size=(len(idx), flat.shape[1]), dtype=np.int64)
            else:
                vals = rng.random(size=(len(idx), flat.shape[1]))
            flat[idx] = vals.astype(src.dtype)
        else:
            salt = rng.random(len(idx)) < 0.5
            flat[idx] = np.where(salt[:, None], top, 0).astype(src.dtype)
        return out

    return on_color(img, paint)


NOISE = Method(
    name="noise",
    fn=_noise,
    defaults={"kind": "replace", "k": None},
    strength="k",
    strength_doc=(
        "k depends on `kind`: replace (default) = percent of pixels given uniformly random values "
        "(seed 003); impulse = percent of pixels set to black/white; gaussian = sigma of additive "
        "noise in 8-bit levels; larger = stronger; default k: replace 70, impulse 70, gaussian 150"
    ),
)

__all__ = ["NOISE", "KINDS", "DEFAULT_K"]
