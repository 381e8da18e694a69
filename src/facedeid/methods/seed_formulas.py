"""The student seeds' pixel formulas, implemented faithfully on aligned faces.

Seed 000, "modified averaging" (method ``modified-averaging``)
    With a key image ``main`` (an aligned face of the same size) and the face
    to de-identify ``db``, per pixel and channel, on the 8-bit scale::

        deid    = (sqrt(main + db) / 2) * 15          in [0, 7.5 * sqrt(510)] = [0, 169.37]
        recover = ((2 * deid) / 15) ** 2 - main       = db when deid is not rounded

    We follow the seed's prose and code, ``15 * sqrt(main + db) / 2`` (its
    printed formula ``((srt(Main+DB/2)*15)`` misplaces a bracket).  Float
    arithmetic throughout; ``deid`` never exceeds 169.37, so it needs no
    clipping, only rounding to the output's integers (nearest, done once when
    the face is pasted); ``recover`` is clipped to [0, 255] (rounding of
    ``deid`` can push it slightly outside).  :func:`modified_average` and
    :func:`recover_modified_average` are the formulas on aligned arrays;
    :func:`recover_face` undoes the method on a whole de-identified image.
    The seed's own code differs in ways that break it, listed in
    docs/AVERAGING.md (uint8 sums wrap at 256, ``astype(int)`` truncates, the
    recovery truncates ``2 * deid / 15`` to an integer *before* squaring, and
    a misplaced ``return`` processes only the first row).

Seed 001, "Pythagorean" fusion (method ``pythagorean``)
    Two aligned faces ``x1`` (the one to de-identify) and ``x2`` (a second face)::

        out = sqrt(x1 ** 2 + x2 ** 2) / 2              in [0, 255 * sqrt(2) / 2] = [0, 180.3]

    per pixel, on the gray image (``mode=gray``, the seed's choice: the result
    is gray) or per colour channel (``mode=color``).  The seed truncates with
    ``astype(int)``; we round.  The division by 2 (not sqrt(2)) darkens: two
    equal pixels ``v`` give ``0.707 v``.

The key / second face (``key`` / ``second``): ``mean`` (the shipped model's
mean face: public, an average of 1,906 people), ``pool`` (``second`` only: a
k-averaged face of the shipped pool, picked at random), the path of an image file that is
already an aligned ``size x size`` face (a mismatched size is an
:class:`~facedeid.errors.InputError`), or (``second`` only) a folder of photos
whose faces are detected, aligned and picked at random.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..landmarks.align import align_face, apply_aligned
from ..types import Face
from .aligned import (
    ALIGN_DEFAULTS,
    as_array_key,
    check_region,
    check_size,
    check_transform,
    gallery_faces,
    landmarks_of,
    match_channels,
    model_face,
    paint_aligned,
    pool_size,
    read_aligned_image,
)
from .base import Method

DEFAULT_SIZE = 128
"""Aligned frame of both formulas (pixels)."""
SEED000_MAX = 7.5 * np.sqrt(510.0)
"""Largest value ``modified_average`` can produce: 169.37 (< 255: no clipping needed)."""


# ------------------------------------------------------------------ the formulas
def modified_average(db, main) -> np.ndarray:
    """Seed 000's de-identification ``(sqrt(main + db) / 2) * 15``, float64, not rounded.

    Args:
        db: the aligned face to de-identify, 8-bit scale (0..255), any shape.
        main: the key image, same shape (or broadcastable: a gray key on an RGB face).

    Raises:
        InputError: the two shapes do not match.
        ValueError: values outside 0..255.
    """
    d, m = np.asarray(db, np.float64), np.asarray(main, np.float64)
    _check_pair(d, m, "key image")
    return (np.sqrt(m + d) / 2.0) * 15.0


def recover_modified_average(deid, main) -> np.ndarray:
    """Seed 000's recovery ``((2 * deid) / 15) ** 2 - main``, clipped to [0, 255], float64.

    ``deid`` is the aligned de-identified face (float, or rounded to
    integers as it is once pasted into an image); ``main`` the same key image.
    Exact (to float precision) on unrounded ``deid``; after rounding to
    integers the error is at most ``sqrt(main + db) / 7.5 + 1/56`` gray levels
    (<= 3.03 at the brightest pixels).

    Raises:
        InputError: the two shapes do not match.
    """
    d, m = np.asarray(deid, np.float64), np.asarray(main, np.float64)
    _check_pair(d, m, "key image", upper=255.0)
    return np.clip(((2.0 * d) / 15.0) ** 2 - m, 0.0, 255.0)


def pythagorean(x1, x2, divisor: float = 2.0) -> np.ndarray:
    """Seed 001's fusion ``sqrt(x1 ** 2 + x2 ** 2) / 2`` per pixel, float64, not rounded."""
    a, b = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    _check_pair(a, b, "second face")
    if not divisor > 0:
        raise ValueError(f"divisor must be > 0, got {divisor}")
    return np.sqrt(a * a + b * b) / float(divisor)


def _check_pair(a: np.ndarray, b: np.ndarray, what: str, upper: float = 255.0) -> None:
    if a.shape[:2] != b.shape[:2] or (b.ndim == 3 and a.ndim == 3 and b.shape[2] not in (1, a.shape[2])):
        raise InputError(f"{what} has shape {b.shape}, the face has shape {a.shape}: "
                         "they must be the same size")
    for arr in (a, b):
        if arr.size and (arr.min() < 0 or arr.max() > upper + 1e-9):
            raise ValueError(f"values must be on the 8-bit scale 0..{upper:g}")


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (what ``cv2.cvtColor(..., COLOR_BGR2GRAY)`` computes), float."""
    a = np.asarray(rgb, np.float64)
    if a.ndim == 2:
        return a
    if a.shape[2] == 1:
        return a[..., 0]
    return a[..., :3] @ np.array([0.299, 0.587, 0.114])


# ------------------------------------------------------------------ reference images
def resolve_reference(spec: Any, size: int, what: str, rng: np.random.Generator | None,
                      allow_folder: bool = False) -> tuple[np.ndarray, str]:
    """The key / second face for one face: ``(float image 0..255, description)``."""
    if isinstance(spec, np.ndarray):
        return as_array_key(spec, size, what), "array"
    if spec is None or spec == "mean":
        return model_face(size, "mean"), "mean"
    if spec == "pool":
        n = pool_size()
        if n == 0:
            raise InputError(f"{what}='pool': the shipped face model has no pool of k-averaged faces")
        i = int(rng.integers(n)) if rng is not None else 0
        return model_face(size, "pool", i), f"pool[{i}]"
    p = Path(str(spec)).expanduser()
    if p.is_dir():
        if not allow_folder:
            raise InputError(f"{spec}: {what} must be an image file, not a folder")
        faces = gallery_faces(p, size)
        i = int(rng.integers(len(faces))) if rng is not None else 0
        return faces[i], f"gallery[{i}]"
    if not p.exists():
        raise InputError(f"{spec}: {what} not found (use 'mean', 'pool' or an image path)")
    return read_aligned_image(p, size, what), str(p)


def aligned_key_from_photo(image, landmarks68, size: int = DEFAULT_SIZE) -> np.ndarray:
    """A key image for ``modified-averaging``: a face photo aligned to the ``size`` frame.

    Save the result (e.g. ``facedeid.io.images.write_image``) and pass its path as ``key``.
    """
    return align_face(image, landmarks68, size).image


# ------------------------------------------------------------------ methods
def _modified_averaging(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    landmarks_of(face, "modified-averaging")
    size = check_size(params.get("size", DEFAULT_SIZE))
    transform = check_transform(params.get("transform", "similarity"))
    spec = params.get("key", "mean")
    if isinstance(spec, str) and spec == "pool":
        raise ValueError("modified-averaging key must be 'mean' or an aligned key image "
                         "(a random pool face could never be recovered)")
    key, _ = resolve_reference(spec, size, "key image", params.get("rng"))

    def fn(db: np.ndarray) -> np.ndarray:
        return modified_average(db, match_channels(key, db))

    return paint_aligned(crop, face, params, "modified-averaging", fn, size, transform)


MODIFIED_AVERAGING = Method(
    name="modified-averaging",
    fn=_modified_averaging,
    defaults={"key": "mean", "size": DEFAULT_SIZE, "transform": "similarity", **ALIGN_DEFAULTS},
    strength=None,
    strength_doc=(
        "no strength (seed 000's fixed formula deid = 15*sqrt(key + face)/2 on the aligned face); "
        "`key` = 'mean' (public mean face: anyone can invert) or the path of an aligned "
        "size x size key image; reversible with facedeid.methods.seed_formulas.recover_face"
    ),
    needs_landmarks68=True,
)


PYTHAGOREAN_MODES = ("gray", "color")


def _pythagorean(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    landmarks_of(face, "pythagorean")
    size = check_size(params.get("size", DEFAULT_SIZE))
    transform = check_transform(params.get("transform", "similarity"))
    mode = params.get("mode", "gray")
    if mode not in PYTHAGOREAN_MODES:
        raise ValueError(f"pythagorean mode must be one of {', '.join(PYTHAGOREAN_MODES)}, got {mode!r}")
    divisor = float(params.get("divisor", 2.0))
    second, _ = resolve_reference(params.get("second", "pool"), size, "second face",
                                  params.get("rng"), allow_folder=True)

    def fn(x1: np.ndarray) -> np.ndarray:
        if mode == "gray" or x1.ndim == 2 or x1.shape[2] == 1:
            out = pythagorean(to_gray(x1), to_gray(second), divisor)
            return out if x1.ndim == 2 else np.repeat(out[..., None], x1.shape[2], axis=2)
        return pythagorean(x1, match_channels(second, x1), divisor)

    return paint_aligned(crop, face, params, "pythagorean", fn, size, transform)


PYTHAGOREAN = Method(
    name="pythagorean",
    fn=_pythagorean,
    defaults={"second": "pool", "mode": "gray", "divisor": 2.0, "size": DEFAULT_SIZE,
              "transform": "similarity", **ALIGN_DEFAULTS},
    strength=None,
    strength_doc=(
        "no strength (seed 001's fixed fusion sqrt(face^2 + second^2)/2 of two aligned faces); "
        "`second` = 'pool' (a random k-averaged face of the shipped pool), 'mean', an aligned image "
        "file or a folder of photos (a random face of it); `mode` gray (seed) or color"
    ),
    needs_landmarks68=True,
)


# ------------------------------------------------------------------ recovery of a whole image
def recover_face(image, landmarks68, key="mean", size: int = DEFAULT_SIZE,
                 transform: str = "similarity", region: str = ALIGN_DEFAULTS["region"],
                 smooth: float = ALIGN_DEFAULTS["smooth"]) -> np.ndarray:
    """Undo ``modified-averaging`` on one face of a de-identified image.

    Args:
        image: the de-identified image (uint8 / uint16, gray or RGB(A)).
        landmarks68: the face's 68 points **as found on the original** (the
            audit record keeps them, ``faces[i].landmarks68``): the alignment
            must be the one used to de-identify.
        key: the same key as used to de-identify (``mean``, a path, or an aligned array).
        size, transform, region, smooth: the same as used to de-identify.

    Returns a new image: inside the face mask the recovered face (re-aligned,
    recovered with :func:`recover_modified_average`, warped back and pasted
    with the same mask); elsewhere ``image`` unchanged.  Two extra bilinear
    resamplings and the integer rounding of the published pixels make it
    approximate (see docs/AVERAGING.md for the measured PSNR).
    """
    from .classic import on_color

    if isinstance(key, str) and key == "pool":
        raise InputError("key='pool' picks a random pool face: it cannot be recovered")
    size = check_size(size)
    transform = check_transform(transform)
    region, smooth = check_region({"region": region, "smooth": smooth})
    lm = landmarks_of(Face(box=(0, 0, 1, 1), landmarks68=landmarks68), "recover_face")
    main, _ = resolve_reference(key, size, "key image", None)

    def colour(src: np.ndarray) -> np.ndarray:
        from ..imageops import dtype_max

        scale = 255.0 / dtype_max(src.dtype)
        x = src.astype(np.float64) * scale

        def inner(d: np.ndarray) -> np.ndarray:
            return recover_modified_average(np.clip(d, 0, 255), match_channels(main, d))

        return apply_aligned(x, lm, inner, size=size, transform=transform, smooth=smooth,
                             region=region) / scale

    return on_color(np.asarray(image), colour)


__all__ = [
    "MODIFIED_AVERAGING", "PYTHAGOREAN", "DEFAULT_SIZE", "SEED000_MAX", "modified_average",
    "recover_modified_average", "pythagorean", "to_gray", "resolve_reference",
    "aligned_key_from_photo", "recover_face",
]
