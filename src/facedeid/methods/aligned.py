"""Shared plumbing of the methods that work on an aligned face (seed formulas, PCA/SVD).

Every such method is ``(crop, face, params) -> crop``: it aligns the face in
the crop from its 68 landmarks (:mod:`facedeid.landmarks.align`), changes the
aligned face or its shape-free texture, warps the result back and blends it in
with seed 004's landmark mask (``region``, ``smooth``).  Work happens in float
on the **8-bit scale** (0..255, so the seeds' formulas read as printed);
``uint16`` crops are scaled by 255/65535 and back; gray crops are processed as
gray (per-pixel formulas) or replicated to RGB (the colour face model); alpha
is kept (:func:`facedeid.methods.classic.on_color`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..errors import InputError
from ..imageops import dtype_max
from ..landmarks.align import DEFAULT_SMOOTH, MASK_REGIONS, TRANSFORMS, apply_aligned, apply_shape_free
from ..types import Face
from .base import CannotPaint
from .classic import on_color

ALIGN_DEFAULTS: dict[str, Any] = {"region": "face_outline", "smooth": DEFAULT_SMOOTH}
"""Paste options shared by every aligned method: mask ``region`` (``face_outline``: jaw and
eyebrows, chin included; ``face_hull``: seed 004's mask, eyebrows to lower lip) and boundary
``smooth`` (Gaussian sigma / sqrt(mask area))."""


def landmarks_of(face: Face, method: str) -> np.ndarray:
    """The face's 68 points, or :class:`CannotPaint` (the pipeline paints its fallback)."""
    if face.landmarks68 is None:
        raise CannotPaint(f"method '{method}' needs 68-point landmarks and this face has none")
    return np.asarray(face.landmarks68, np.float64)


def check_region(params: dict[str, Any]) -> tuple[str, float]:
    region = params.get("region", ALIGN_DEFAULTS["region"])
    if region not in MASK_REGIONS:
        raise ValueError(f"region must be one of {', '.join(MASK_REGIONS)}, got {region!r}")
    try:
        smooth = float(params.get("smooth", ALIGN_DEFAULTS["smooth"]))
    except (TypeError, ValueError):
        raise ValueError(f"smooth must be a number, got {params.get('smooth')!r}") from None
    if not 0 <= smooth <= 0.5:
        raise ValueError(f"smooth must be in [0, 0.5], got {smooth}")
    return region, smooth


def check_size(value: Any, name: str = "size") -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number of pixels, got {value!r}") from None
    if size != float(value) or not 32 <= size <= 1024:
        raise ValueError(f"{name} must be a whole number of pixels in 32..1024, got {value!r}")
    return size


def check_transform(value: Any) -> str:
    if value not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, got {value!r}")
    return str(value)


def paint_aligned(crop: np.ndarray, face: Face, params: dict[str, Any], method: str,
                  fn: Callable[[np.ndarray], np.ndarray], size: int, transform: str = "similarity",
                  shape_free: bool = False) -> np.ndarray:
    """Run ``fn`` on the aligned face (or its shape-free texture) and paste the result.

    ``fn`` receives float64 on the 8-bit scale, ``size x size`` (gray) or
    ``size x size x C`` (C = 1 or 3), and returns the same shape (any float
    values; the result is clipped to 0..255 before it is pasted).
    """
    lm = landmarks_of(face, method)
    region, smooth = check_region(params)

    def colour(src: np.ndarray) -> np.ndarray:
        scale = 255.0 / dtype_max(src.dtype) if np.issubdtype(src.dtype, np.integer) else 255.0
        x = src.astype(np.float64) * scale

        def inner(a: np.ndarray) -> np.ndarray:
            return np.clip(np.asarray(fn(a), np.float64), 0.0, 255.0)

        if shape_free:
            y = apply_shape_free(x, lm, inner, size=size, smooth=smooth, region=region)
        else:
            y = apply_aligned(x, lm, inner, size=size, transform=transform, smooth=smooth, region=region)
        return y / scale

    return on_color(crop, colour)


def as_rgb(a: np.ndarray) -> np.ndarray:
    """``H x W`` or ``H x W x 1`` -> ``H x W x 3`` (replicated); RGB unchanged."""
    if a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=2)
    if a.shape[2] == 1:
        return np.repeat(a, 3, axis=2)
    return a


def like(rgb: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """An RGB result back in ``ref``'s layout (gray: Rec. 601 luma)."""
    if ref.ndim == 3 and ref.shape[2] == 3:
        return rgb
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    return gray if ref.ndim == 2 else gray[..., None]


def match_channels(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``img`` (gray or RGB, same H x W as ``ref``) in ``ref``'s channel layout."""
    return like(as_rgb(img), ref) if img.shape != ref.shape else img


# ------------------------------------------------------------------ reference faces
def model_face(size: int, which: str = "mean", index: int = 0) -> np.ndarray:
    """An aggregate face of the shipped model in the aligned ``size`` frame, RGB float 0..255.

    ``which="mean"``: the mean shape-free texture (the model's texture frame is
    the canonical frame, so it is an aligned mean face); ``"pool"``: entry
    ``index`` of the pool of k-averaged faces (``pool_aligned``).
    """
    from ..facemodel import load_face_model

    model = load_face_model()
    if which == "mean":
        (img,) = model.require("texture_mean")
        img = np.asarray(img, np.float32) * 255.0
    elif which == "pool":
        (pool,) = model.require("pool_aligned")
        img = np.asarray(pool[index % len(pool)], np.float32)
        if pool.dtype != np.uint8:
            img = img * 255.0
    else:
        raise ValueError(f"unknown model face {which!r}")
    if img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.float64), 0.0, 255.0)


def pool_size() -> int:
    """Entries in the shipped pool of k-averaged faces (0 if the model has none)."""
    from ..facemodel import load_face_model

    model = load_face_model()
    return int(len(model.arrays["pool_aligned"])) if model.has("pool_aligned") else 0


def read_aligned_image(path: str | Path, size: int, what: str) -> np.ndarray:
    """An image file that must already be an aligned ``size x size`` face: float 0..255.

    Raises:
        InputError: unreadable file, or its size is not ``size x size`` (the
            message gives both sizes).
    """
    from ..io.images import read_image

    loaded = read_image(path)
    px = np.asarray(loaded.pixels)
    h, w = px.shape[:2]
    if (h, w) != (size, size):
        hint = (f"set size={w} if it is an aligned face" if h == w
                else "an aligned face is square")
        raise InputError(
            f"{path}: {what} is {w}x{h} pixels but the aligned frame is {size}x{size} "
            f"({hint}; make one from a photo with facedeid.methods.seed_formulas.aligned_key_from_photo)")
    x = px.astype(np.float64) * (255.0 / dtype_max(px.dtype))
    if x.ndim == 3 and x.shape[2] in (2, 4):
        x = x[..., : x.shape[2] - 1]
    return x


def as_array_key(value: Any, size: int, what: str) -> np.ndarray:
    """A reference image given as an array (Python API): checked for its size, float 0..255."""
    a = np.asarray(value)
    if a.ndim not in (2, 3) or a.shape[:2] != (size, size):
        raise InputError(f"{what} array has shape {a.shape}; the aligned frame is {size}x{size}")
    scale = 255.0 / dtype_max(a.dtype) if np.issubdtype(a.dtype, np.integer) else 1.0
    return a.astype(np.float64) * scale


@functools.lru_cache(maxsize=4)
def _gallery(folder: str, size: int, signature: tuple) -> np.ndarray:
    from ..detect import get_detector
    from ..evaluate.datasets import load_rgb
    from ..landmarks.align import align_face
    from ..landmarks.dlib68 import Dlib68Predictor

    det, pred = get_detector("default"), Dlib68Predictor()
    out = []
    for name, _mtime in signature:
        rgb = load_rgb(Path(folder) / name)
        faces = det.detect(rgb)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.area)
        out.append(align_face(rgb, pred.predict(rgb, face), size).image.astype(np.float64))
    if not out:
        raise InputError(f"{folder}: no face found in any gallery image")
    arr = np.stack(out)
    arr.setflags(write=False)
    return arr


def gallery_faces(folder: str | Path, size: int) -> np.ndarray:
    """Every face (the largest per image) of a folder of photos, aligned: ``(N, size, size, 3)``.

    Detected with the default detector, 68 points by dlib; read once per
    process for a given folder content (cached by file names and times).

    Raises:
        InputError: not a folder, no image in it, or no face in any image.
    """
    p = Path(folder)
    if not p.is_dir():
        raise InputError(f"{folder}: gallery is not a folder")
    files = sorted(f for f in p.iterdir()
                   if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
    if not files:
        raise InputError(f"{folder}: gallery holds no image")
    sig = tuple((f.name, f.stat().st_mtime) for f in files)
    return _gallery(str(p.resolve()), size, sig)


__all__ = [
    "ALIGN_DEFAULTS", "landmarks_of", "check_region", "check_size", "check_transform",
    "paint_aligned", "as_rgb", "like", "match_channels", "model_face", "pool_size",
    "read_aligned_image", "as_array_key", "gallery_faces",
]
