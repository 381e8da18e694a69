"""Small array helpers shared by detectors, methods and metrics."""

from __future__ import annotations

import numpy as np


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An RGB ``uint8`` view/copy of any supported image (gray, RGBA, 16-bit).

    Alpha is dropped (not composited); 16-bit is scaled to 8-bit.
    """
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating):
            img = np.clip(img * 255.0 if img.max() <= 1.0 else img, 0, 255).astype(np.uint8)
        else:
            img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    if img.shape[2] == 3:
        return img
    raise ValueError(f"unsupported image shape {img.shape}")


def dtype_max(dtype: np.dtype) -> float:
    """The largest value of an integer image dtype (255 for uint8, 65535 for uint16)."""
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def color_channels(image: np.ndarray) -> int:
    """How many leading channels carry colour (alpha excluded)."""
    if image.ndim == 2:
        return 1
    return 3 if image.shape[2] == 4 else image.shape[2]
