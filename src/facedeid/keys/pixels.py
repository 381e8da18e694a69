"""Region pixels: which face owns which pixel, lossless packing, digests.

**Ownership.** Faces are painted one after the other; a pixel covered by the
regions of several faces ends up as painted by the last of them. Each changed
pixel is therefore *owned* by exactly one face, the last one whose region
(``mask > 0``) covers it, and only that face's entry stores its original value:
a face key reveals the original pixels of its own face's region and of no other
(where two regions overlap, the later face's key holds the overlap).

**Packing** (the plaintext that gets encrypted)::

    "R1" | h u32 | w u32 | channels u8 | bits u8
    | mask_len u32 | zlib(packbits(owned, row-major))
    | pix_len u32  | zlib(plane-predictor residual of the h x w x c grid)
    | zero padding to a multiple of 256 bytes

The grid is the original crop with pixels not owned set to 0. The residual is
``x - left - up + upleft`` modulo ``2**bits`` (the inverse is two cumulative sums),
stored little-endian for 16 bits; on LFW face regions it is ~16 KB for a 110 x
130 RGB ellipse (raw 34 KB; raw zlib 28 KB, PNG 18 KB). Padding hides the exact
compressed size (it still shows it to within 256 bytes).
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np

from .errors import PayloadError

_PACK_MAGIC = b"R1"
_PACK_HEAD = struct.Struct(">IIBB")
PAD = 256
ZLIB_LEVEL = 6


def ownership(regions: list[tuple[np.ndarray, tuple[int, int, int, int]]], height: int, width: int
              ) -> list[np.ndarray]:
    """Owned-pixel masks, one per region (bool, cropped to the region's bbox).

    Args:
        regions: ``(mask, bbox)`` in paint order; ``mask`` > 0 marks the region.
        height, width: the image size.
    """
    owner = np.full((height, width), -1, dtype=np.int32)
    for i, (mask, (x0, y0, x1, y1)) in enumerate(regions):
        sub = owner[y0:y1, x0:x1]
        sub[np.asarray(mask) > 0] = i
    return [owner[y0:y1, x0:x1] == i for i, (_, (x0, y0, x1, y1)) in enumerate(regions)]


def _residual(grid: np.ndarray) -> np.ndarray:
    r = grid.copy()
    r[:, 1:] -= grid[:, :-1]
    out = r.copy()
    out[1:] -= r[:-1]
    return out


def _integrate(res: np.ndarray) -> np.ndarray:
    dt = res.dtype
    return np.cumsum(np.cumsum(res, axis=0, dtype=dt), axis=1, dtype=dt)


def pack_region(crop: np.ndarray, owned: np.ndarray, *, level: int = ZLIB_LEVEL) -> bytes:
    """The plaintext of one entry: the owned pixels of ``crop``, losslessly compressed."""
    crop = np.asarray(crop)
    if crop.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"region pixels must be uint8 or uint16, got {crop.dtype}")
    h, w = crop.shape[:2]
    c = 1 if crop.ndim == 2 else crop.shape[2]
    owned = np.asarray(owned, dtype=bool)
    if owned.shape != (h, w):
        raise ValueError(f"ownership mask {owned.shape} does not match the crop {(h, w)}")
    grid = crop.reshape(h, w, c).copy()
    grid[~owned] = 0
    res = _residual(grid)
    if res.dtype == np.uint16:
        res = res.astype("<u2", copy=False)
    mask_z = zlib.compress(np.packbits(owned, axis=None).tobytes(), level)
    pix_z = zlib.compress(np.ascontiguousarray(res).tobytes(), level)
    out = bytearray(_PACK_MAGIC)
    out += _PACK_HEAD.pack(h, w, c, 8 * crop.dtype.itemsize)
    out += struct.pack(">I", len(mask_z)) + mask_z
    out += struct.pack(">I", len(pix_z)) + pix_z
    out += b"\0" * (-len(out) % PAD)
    return bytes(out)


def _inflate(data: bytes, expected: int, what: str) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, expected + 1)
    except zlib.error:
        raise PayloadError(f"{what} does not decompress") from None
    if len(out) != expected or not d.eof:
        raise PayloadError(f"{what} has the wrong size")
    return out


def unpack_region(data: bytes, height: int, width: int, channels: int, bits: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(owned, pixels)`` from :func:`pack_region`'s bytes; sizes checked against the entry.

    ``pixels`` is ``h x w x channels`` (``h x w`` for one channel); only its owned
    pixels are meaningful.
    """
    view = memoryview(data)
    if bytes(view[:2]) != _PACK_MAGIC or len(view) < 2 + _PACK_HEAD.size + 8:
        raise PayloadError("decrypted region has an unknown format")
    h, w, c, b = _PACK_HEAD.unpack(view[2:2 + _PACK_HEAD.size])
    if (h, w, c, b) != (height, width, channels, bits):
        raise PayloadError("decrypted region does not match its entry's box or pixel layout")
    pos = 2 + _PACK_HEAD.size
    (mlen,) = struct.unpack(">I", view[pos:pos + 4])
    pos += 4
    if mlen > len(view) - pos - 4:
        raise PayloadError("decrypted region is truncated")
    mask_bytes = _inflate(bytes(view[pos:pos + mlen]), (h * w + 7) // 8, "region mask")
    pos += mlen
    (plen,) = struct.unpack(">I", view[pos:pos + 4])
    pos += 4
    if plen > len(view) - pos:
        raise PayloadError("decrypted region is truncated")
    dt = np.dtype("<u2") if b == 16 else np.dtype(np.uint8)
    pix = _inflate(bytes(view[pos:pos + plen]), h * w * c * dt.itemsize, "region pixels")
    owned = np.unpackbits(np.frombuffer(mask_bytes, np.uint8), count=h * w).reshape(h, w).astype(bool)
    res = np.frombuffer(pix, dt).reshape(h, w, c).astype(np.uint16 if b == 16 else np.uint8)
    grid = _integrate(res)
    return owned, (grid[:, :, 0] if c == 1 else grid)


def region_digest(image: np.ndarray, bbox: tuple[int, int, int, int]) -> bytes:
    """SHA-256 of the pixels inside ``bbox`` (with their shape and dtype)."""
    x0, y0, x1, y1 = bbox
    crop = np.ascontiguousarray(np.asarray(image)[y0:y1, x0:x1])
    h = hashlib.sha256(b"facedeid-region\0")
    h.update(f"{crop.shape}|{crop.dtype.str}".encode())
    h.update(crop.tobytes())
    return h.digest()


def image_digest(image: np.ndarray) -> bytes:
    """SHA-256 of a whole picture (with its shape and dtype)."""
    arr = np.ascontiguousarray(np.asarray(image))
    h = hashlib.sha256(b"facedeid-image\0")
    h.update(f"{arr.shape}|{arr.dtype.str}".encode())
    h.update(arr.tobytes())
    return h.digest()


def layout_of(image: np.ndarray) -> tuple[int, int]:
    """``(channels, bits)`` of a picture."""
    arr = np.asarray(image)
    return (1 if arr.ndim == 2 else int(arr.shape[2])), 8 * arr.dtype.itemsize


def to_layout(image: np.ndarray, channels: int, bits: int) -> np.ndarray:
    """Convert a decoded picture to the original's channels and bit depth.

    Used outside the recovered regions only, where a format changed the layout
    (JPEG has no alpha or 16 bits, WebP no gray): 8 -> 16 bits multiplies by 257,
    16 -> 8 rounds, RGB -> gray takes the rounded mean, a missing alpha is opaque.
    """
    arr = np.asarray(image)
    src_bits = 8 * arr.dtype.itemsize
    if src_bits != bits:
        if bits == 16:
            arr = arr.astype(np.uint16) * 257
        else:
            arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    c = 1 if arr.ndim == 2 else arr.shape[2]
    if c == channels:
        return np.ascontiguousarray(arr)
    maxv = np.iinfo(arr.dtype).max
    rgb = arr if arr.ndim == 3 else arr[:, :, None]
    rgb = rgb[:, :, :3] if rgb.shape[2] >= 3 else np.repeat(rgb[:, :, :1], 3, axis=2)
    if channels == 1:
        return np.rint(rgb.astype(np.float64).mean(axis=2)).astype(arr.dtype)
    if channels == 3:
        return np.ascontiguousarray(rgb)
    alpha = np.full(rgb.shape[:2] + (1,), maxv, arr.dtype)
    return np.concatenate([rgb, alpha], axis=2)


__all__ = ["ownership", "pack_region", "unpack_region", "region_digest", "image_digest",
           "layout_of", "to_layout"]
