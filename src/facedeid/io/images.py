"""Read and write still images in facedeid's pixel conventions.

Reading (:func:`read_image`)
============================
* Formats: JPEG (and MPO, its multi-picture variant: first picture), PNG,
  WebP, TIFF, BMP, GIF (first frame; GIFs normally go to the video pipeline).
  Only these decoders are ever tried, whatever the file's name.
* The whole file is decoded before returning (a truncated or corrupt file is
  an error, never a half-grey picture); Pillow's ``LOAD_TRUNCATED_IMAGES`` is
  left at its default, False.
* Pixels follow :mod:`facedeid.types`: ``H x W`` gray, ``H x W x 3`` RGB or
  ``H x W x 4`` RGBA, ``uint8``, or ``uint16`` when the file stores 16 bits
  (16-bit PNG and TIFF, gray or colour; colour is decoded with OpenCV because
  Pillow reduces it to 8 bits). Conversions: bilevel -> gray 0/255; gray+alpha
  -> RGBA; palette -> RGBA when it has transparency, else RGB; CMYK -> RGB
  through the embedded ICC profile when there is one (to sRGB); YCbCr/HSV ->
  RGB. 32-bit integer or float pixels are refused.
* EXIF orientation (all 8 values; TIFF's own Orientation tag too) is applied,
  so ``pixels`` is the picture as viewers display it; ``orientation`` records
  the value found.
* Only what writing needs is kept: the ICC profile, the DPI, and the
  allow-listed EXIF values (:class:`~facedeid.io.metadata.SafeExif`). The
  original EXIF bytes, thumbnail, GPS, XMP ... are never held, so no code path
  can write them back. ``metadata`` summarises what the file carried.
* Errors raise :class:`~facedeid.errors.InputError` with one line naming the
  file: missing, a folder, not a regular file, unreadable, empty, unknown
  format, corrupt or truncated data, unsupported pixel format, or more pixels
  than ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, 178,956,970: the size
  at which Pillow itself refuses a "decompression bomb"; ``None`` = no limit).

Writing (:func:`write_image`)
=============================
* The format comes from the extension (``.jpg .jpeg .png .webp .tif .tiff
  .bmp``), else from ``like.format``; ``.gif`` is refused (the video writer
  handles GIF).
* JPEG: quality 95, 4:4:4 chroma (no subsampling) unless told otherwise.
  PNG: lossless, zlib level 6. TIFF: lossless (deflate). WebP: lossy at
  ``quality`` unless ``lossless=True``, or the input was lossless WebP. BMP:
  uncompressed.
* What each format keeps: PNG and TIFF keep everything (gray, alpha, 16 bits;
  a gray+alpha input is written back as gray+alpha when still gray). JPEG,
  WebP and BMP are 8-bit: 16-bit pixels are rounded to 8 bits. WebP has no
  gray mode: gray is written as RGB. WebP keeps alpha.
* **Alpha to JPEG or BMP** (JPEG has no alpha; BMP alpha is not read back
  reliably, by Pillow or by most viewers): the image is composited over
  ``background`` (default white, ``(255, 255, 255)``) as
  ``colour * a + background * (1 - a)`` with ``a = alpha / max``; an alpha that is
  fully opaque everywhere is simply dropped. ``background=None`` refuses with an
  :class:`~facedeid.errors.OutputError` instead. (Flattening is also the safe
  choice for privacy: the colour hidden under transparent pixels is gone.)
* Metadata: see :mod:`facedeid.io.metadata` (default: ICC + DPI only;
  ``keep_metadata=True`` adds the allow-listed EXIF with Orientation 1). The
  written bytes are checked with :func:`~facedeid.io.metadata.metadata_summary`
  before they reach the disk: if anything identifying slipped in, nothing is
  written.
* The file is written atomically (:mod:`facedeid.io.atomic`); writing over the
  file ``like`` was read from (or any path in ``protect``) is an OutputError.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import InputError, OutputError
from .atomic import atomic_write_bytes, check_not_input
from .metadata import (
    SafeExif,
    icc_color_space,
    metadata_summary,
    png_bad_crc,
    png_insert_chunks,
    png_metadata_chunks,
    sniff_format,
    tag_name,
)

READ_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
WRITE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
EXT_FORMATS: dict[str, str] = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
}
FORMAT_EXTS: dict[str, str] = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
DEFAULT_MAX_PIXELS = 178_956_970  # 2 x Pillow's MAX_IMAGE_PIXELS: where Pillow raises DecompressionBombError
DEFAULT_JPEG_QUALITY = 95

_PIL_OPEN_LOCK = threading.Lock()


# --------------------------------------------------------------------------
# data classes


@dataclass(eq=False)
class LoadedImage:
    """An image as read by :func:`read_image`.

    Attributes:
        pixels: the picture as displayed (orientation applied), facedeid conventions.
        path: the file, as given.
        format: ``"JPEG"``, ``"PNG"``, ``"WEBP"``, ``"TIFF"``, ``"BMP"`` or ``"GIF"``.
        mode: Pillow's mode of the stored picture (``"RGB"``, ``"P"``, ``"I;16"`` ...).
        bit_depth: 8 or 16 (bits per sample of ``pixels``).
        orientation: the EXIF orientation found (1..8; 1 when absent or invalid),
            already applied to ``pixels``.
        sha256: hex digest of the file's bytes.
        size_bytes: file size.
        icc_profile: the embedded ICC profile (None when absent, or when a CMYK
            picture was converted to RGB); the writer embeds it only when its
            colour space matches the written pixels.
        dpi: ``(x, y)`` resolution, or None.
        exif: the allow-listed EXIF values (nothing else of the EXIF is kept).
        metadata: :func:`~facedeid.io.metadata.metadata_summary` of the file.
        n_frames: frames/pages in the file (only the first is read).
        lossless: for WebP, whether it was stored lossless; None otherwise.
        notes: conversions made while reading, for logs and audit records.
    """

    pixels: np.ndarray
    path: Path
    format: str
    mode: str
    bit_depth: int
    orientation: int
    sha256: str
    size_bytes: int
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: SafeExif = field(default_factory=SafeExif)
    metadata: dict = field(default_factory=dict)
    n_frames: int = 1
    lossless: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])

    @property
    def has_alpha(self) -> bool:
        return self.channels == 4

    @property
    def is_gray(self) -> bool:
        return self.channels == 1

    @property
    def info(self) -> dict[str, Any]:
        """What :func:`write_image` carries over: ICC, DPI, allow-listed EXIF tag names."""
        return {"icc_profile": self.icc_profile, "dpi": self.dpi, "exif": self.exif.names()}


@dataclass
class WrittenImage:
    """What :func:`write_image` wrote.

    Attributes:
        path: the file written.
        format: its format.
        sha256: hex digest of the written bytes.
        size_bytes: file size.
        width, height: picture size.
        mode: ``"L"``, ``"LA"``, ``"RGB"``, ``"RGBA"`` with ``";16"`` for 16 bits.
        kept: metadata carried over (``"icc_profile"``, ``"dpi"``, ``"exif:Make"`` ...).
        metadata: :func:`~facedeid.io.metadata.metadata_summary` of the written bytes.
        notes: conversions made (alpha flattened, 16 -> 8 bits ...).
    """

    path: Path
    format: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    mode: str
    kept: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# orientation


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into displayed pixels for an EXIF orientation value.

    1 none, 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose
    (mirror along the main diagonal), 6 rotate 90 clockwise, 7 transverse
    (mirror along the anti-diagonal), 8 rotate 90 counter-clockwise. Other
    values are treated as 1. Works for any dtype and channel count.
    """
    a = pixels
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = a.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        a = a.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        a = a.swapaxes(0, 1)[::-1]
    else:
        return pixels
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------
# reading


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _read_bytes(path: str | Path) -> bytes:
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except NotADirectoryError:
        raise InputError(f"{name}: no such file (a parent is not a folder)") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or _one_line(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{name}: is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{name}: not a regular file")
    if st.st_size == 0:
        raise InputError(f"{name}: empty file (0 bytes)")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or _one_line(exc)}") from None
    if not data:
        raise InputError(f"{name}: empty file (0 bytes)")
    return data


def _open(data: bytes, name: str, max_pixels: int | None) -> Image.Image:
    # Pillow's own bomb check uses a process-wide limit; we apply ours instead
    # (configurable per call) right after the header is parsed, before decoding.
    with _PIL_OPEN_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(io.BytesIO(data), formats=READ_FORMATS)
        except UnidentifiedImageError:
            sniffed = sniff_format(data)
            if sniffed:
                raise InputError(f"{name}: corrupt {sniffed} file (header cannot be parsed)") from None
            raise InputError(
                f"{name}: unknown or unsupported image format "
                f"(facedeid reads {', '.join(READ_FORMATS)})"
            ) from None
        except Image.DecompressionBombError as exc:
            raise InputError(f"{name}: {_one_line(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted bytes
            raise InputError(f"{name}: corrupt image header ({_one_line(exc)})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = im.size
    if w <= 0 or h <= 0:
        raise InputError(f"{name}: image has no pixels ({w}x{h})")
    if max_pixels is not None and w * h > max_pixels:
        raise InputError(
            f"{name}: image is {w}x{h} = {w * h / 1e6:.1f} megapixels, over the limit of "
            f"{max_pixels / 1e6:.1f} megapixels (possible decompression bomb; raise max_pixels to allow it)"
        )
    return im


def _load(im: Image.Image, name: str) -> None:
    try:
        im.load()
    except MemoryError:
        raise InputError(f"{name}: image too large to decode in memory") from None
    except Exception as exc:  # noqa: BLE001 - decoder errors on untrusted data
        msg = _one_line(exc)
        if "truncated" in msg.lower():
            raise InputError(f"{name}: truncated file ({msg})") from None
        raise InputError(f"{name}: corrupt image data ({msg})") from None


def _is_16bit_colour(fmt: str, data: bytes, im: Image.Image) -> bool:
    if fmt == "PNG" and len(data) >= 26:
        return data[24] == 16 and data[25] in (2, 4, 6)
    if fmt == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bps = tags.get(258)
        spp = tags.get(277, 1)
        if isinstance(bps, int):
            bps = (bps,)
        fmt_tag = tags.get(339, 1)
        sample_format = fmt_tag[0] if isinstance(fmt_tag, tuple) else fmt_tag
        return bool(bps) and max(bps) == 16 and isinstance(spp, int) and spp >= 2 and sample_format == 1
    return False


def _decode_16bit_colour(data: bytes) -> np.ndarray | None:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        return None
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    if arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    if arr.shape[2] == 2:
        g, a = arr[:, :, 0], arr[:, :, 1]
        return np.stack([g, g, g, a], axis=2)
    return None


def _same_picture(deep: np.ndarray, ref8: np.ndarray) -> bool:
    """True when 16-bit ``deep`` reduces to the 8-bit ``ref8`` (within 1 level)."""
    if deep.shape != ref8.shape:
        return False
    diff = np.abs((deep >> 8).astype(np.int16) - ref8.astype(np.int16))
    return int(diff.max(initial=0)) <= 1


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if out is not None:
                notes.append("CMYK converted to sRGB through the embedded ICC profile")
                return out
        except Exception:  # noqa: BLE001 - a broken profile: fall back to the plain conversion
            pass
    notes.append("CMYK converted to RGB without a colour profile (colours approximate)")
    return im.convert("RGB")


def _pil_to_array(im: Image.Image, name: str, icc: bytes | None, notes: list[str]) -> np.ndarray:
    mode = im.mode
    if mode in ("1", "L"):
        return np.asarray(im.convert("L") if mode == "1" else im, dtype=np.uint8).copy()
    if mode in ("RGB", "RGBA"):
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(f"{name}: 32-bit integer pixels outside 0..65535 are not supported")
        return arr.astype(np.uint16)
    if mode == "F":
        raise InputError(f"{name}: floating-point pixels are not supported")
    if mode == "P":
        has_alpha = "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        notes.append("palette converted to " + ("RGBA" if has_alpha else "RGB"))
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8).copy()
    if mode in ("LA", "La", "PA", "RGBa"):
        if mode != "RGBa":
            notes.append(f"{mode} converted to RGBA")
        return np.asarray(im.convert("RGBA"), dtype=np.uint8).copy()
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(im, icc, notes), dtype=np.uint8).copy()
    if mode in ("RGBX", "YCbCr", "HSV", "LAB"):
        try:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except (ValueError, OSError):
            pass
    raise InputError(f"{name}: unsupported pixel mode {mode}")


def read_image(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file fully; see the module docstring for the rules.

    Raises:
        InputError: the file is missing, unreadable, empty, not a supported
            image, corrupt, truncated, or larger than ``max_pixels``.
    """
    return decode_image(_read_bytes(path), path, max_pixels=max_pixels)


def decode_image(data: bytes, path: str | Path = "<bytes>", *,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """:func:`read_image` for bytes already in memory (``path`` names them in messages).

    The reversible mode decodes the bytes it is about to write with this, so it
    binds its payload to exactly the pixels a later :func:`read_image` will see.
    """
    name = str(path)
    if not data:
        raise InputError(f"{name}: empty file (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()
    im = _open(data, name, max_pixels)
    fmt = "JPEG" if im.format == "MPO" else (im.format or "?")
    n_frames = int(getattr(im, "n_frames", 1) or 1)
    notes: list[str] = []
    if n_frames > 1:
        notes.append(f"file holds {n_frames} frames/pages; only the first was read")

    # EXIF is read before decoding: Pillow's TIFF decoder applies the
    # Orientation tag itself while loading, and then deletes it.
    orientation = 1
    safe = SafeExif()
    try:
        exif = im.getexif()
        value = exif.get(0x0112)
        if isinstance(value, int) and 1 <= value <= 8:
            orientation = value
        safe = SafeExif.from_pillow(exif)
    except Exception:  # noqa: BLE001 - malformed EXIF: no orientation, nothing kept
        notes.append("EXIF could not be parsed (ignored)")
    tiff_oriented_by_pillow = fmt == "TIFF" and orientation != 1

    _load(im, name)
    if fmt == "PNG":
        bad = png_bad_crc(data)
        if bad is not None and bad != "IEND":
            raise InputError(f"{name}: corrupt or truncated PNG file (bad or missing checksum of a {bad} chunk)")
    if tiff_oriented_by_pillow and 0x0112 in getattr(im, "tag_v2", {}):
        tiff_oriented_by_pillow = False  # this Pillow left the pixels as stored
    icc = im.info.get("icc_profile") or None

    pixels = _pil_to_array(im, name, icc, notes)
    if not tiff_oriented_by_pillow:
        pixels = apply_orientation(pixels, orientation)
    if _is_16bit_colour(fmt, data, im):
        # Pillow holds 16-bit colour as 8 bits: decode again with OpenCV. Whether
        # OpenCV applied the orientation itself differs by format (its TIFF
        # decoder does, its PNG decoder does not), so keep the candidate whose
        # high bytes match Pillow's displayed picture.
        deep = _decode_16bit_colour(data)
        chosen = None
        if deep is not None:
            candidates = [deep] if orientation == 1 else [apply_orientation(deep, orientation), deep]
            chosen = next((c for c in candidates if _same_picture(c, pixels)), None)
        if chosen is None:
            notes.append("16-bit colour could not be decoded at full depth; read as 8-bit")
        else:
            pixels = chosen
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    if im.mode == "CMYK":
        icc = None  # converted to sRGB (or plain RGB): the CMYK profile no longer applies
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        notes.append("warning: Pillow's LOAD_TRUNCATED_IMAGES was enabled by other code; "
                     "truncation may go undetected")

    dpi = _clean_dpi(im.info.get("dpi"))
    lossless = None
    try:
        summary = metadata_summary(data)
    except Exception as exc:  # noqa: BLE001 - inspection must never block reading
        summary = {"format": fmt, "errors": [f"metadata inspection failed: {_one_line(exc)}"]}
    if fmt == "WEBP":
        lossless = "VP8L" in summary.get("segments", [])
    return LoadedImage(
        pixels=pixels, path=Path(path), format=fmt, mode=im.mode, bit_depth=bit_depth,
        orientation=orientation, sha256=digest, size_bytes=len(data), icc_profile=icc,
        dpi=dpi, exif=safe, metadata=summary, n_frames=n_frames, lossless=lossless, notes=notes,
    )


def _clean_dpi(value: Any) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (0 < x < 1e6 and 0 < y < 1e6):
        return None
    return (round(x, 4), round(y, 4))


# --------------------------------------------------------------------------
# writing


def output_format(path: str | Path, like: LoadedImage | None = None, format: str | None = None) -> str:
    """The format :func:`write_image` would use for ``path``."""
    if format:
        fmt = format.upper()
        fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt, fmt)
    else:
        ext = Path(path).suffix.lower()
        fmt = EXT_FORMATS.get(ext)
        if fmt is None:
            if ext == ".gif":
                raise OutputError(f"{path}: GIF output is written by the video pipeline, not as a still image")
            if like is not None and like.format in WRITE_FORMATS:
                fmt = like.format
            else:
                raise OutputError(
                    f"{path}: cannot tell the output format from the extension "
                    f"(use one of {' '.join(sorted(EXT_FORMATS))})"
                )
    if fmt not in WRITE_FORMATS:
        raise OutputError(f"{path}: cannot write {fmt} (facedeid writes {', '.join(WRITE_FORMATS)})")
    return fmt


def _check_pixels(pixels: Any) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image expects uint8 or uint16 pixels, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"write_image expects H x W, H x W x 3 or H x W x 4 pixels, got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError("write_image got an empty image")
    return np.ascontiguousarray(arr)


def to_8bit(arr: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit with rounding (65535 -> 255, 257*k -> k)."""
    if arr.dtype == np.uint8:
        return arr
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def flatten_alpha(arr: np.ndarray, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Composite RGBA over an opaque 8-bit-scale ``background``; keeps the dtype."""
    maxv = float(np.iinfo(arr.dtype).max)
    a = arr[:, :, 3:4].astype(np.float32) / maxv
    bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3) * (maxv / 255.0)
    out = arr[:, :, :3].astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(np.rint(out), 0, maxv).astype(arr.dtype)


def _fit_to_format(arr: np.ndarray, fmt: str, path: str, like: LoadedImage | None,
                   background: tuple[int, int, int] | None, notes: list[str]) -> tuple[np.ndarray, bool]:
    """Adapt pixels to what ``fmt`` can hold. Returns (pixels, write_as_gray_alpha)."""
    has_alpha = arr.ndim == 3 and arr.shape[2] == 4
    if fmt in ("JPEG", "BMP") and has_alpha:
        alpha = arr[:, :, 3]
        if np.all(alpha == np.iinfo(arr.dtype).max):
            arr = np.ascontiguousarray(arr[:, :, :3])
        elif background is None:
            raise OutputError(f"{path}: the image has transparency and {fmt} cannot store it "
                              "(write PNG/WebP/TIFF, or allow flattening onto a background)")
        else:
            arr = flatten_alpha(arr, background)
            notes.append(f"alpha flattened onto background {tuple(background)} ({fmt} has no alpha)")
    if fmt in ("JPEG", "WEBP", "BMP") and arr.dtype == np.uint16:
        arr = to_8bit(arr)
        notes.append(f"16-bit pixels rounded to 8 bits ({fmt} holds 8 bits)")
    if fmt == "WEBP" and arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
        notes.append("gray written as RGB (WebP has no gray mode)")
    gray_alpha = False
    if (fmt in ("PNG", "TIFF") and like is not None and like.mode in ("LA", "La") and arr.ndim == 3
            and arr.shape[2] == 4 and arr.dtype == np.uint8
            and np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 0], arr[:, :, 2])):
        gray_alpha = True
    return arr, gray_alpha


def _mode_name(arr: np.ndarray, gray_alpha: bool) -> str:
    base = "LA" if gray_alpha else {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
    return base + (";16" if arr.dtype == np.uint16 else "")


def _pil_image(arr: np.ndarray, gray_alpha: bool) -> Image.Image:
    if gray_alpha:
        return Image.fromarray(np.ascontiguousarray(arr[:, :, [0, 3]]), mode="LA")
    if arr.ndim == 2 and arr.dtype == np.uint16:
        return Image.fromarray(arr.astype("<u2"))  # -> mode "I;16"
    return Image.fromarray(arr)


def _encode_png16(arr: np.ndarray, icc: bytes | None, dpi, exif: bytes | None) -> bytes:
    import cv2

    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, enc = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise OutputError("OpenCV could not encode a 16-bit PNG")
    return png_insert_chunks(enc.tobytes(), png_metadata_chunks(icc=icc, dpi=dpi, exif=exif))


def _rational(value: float) -> tuple[int, int]:
    den = 10000
    return max(0, int(round(value * den))), den


def encode_tiff16(arr: np.ndarray, *, icc: bytes | None = None, dpi: tuple[float, float] | None = None,
                  ascii_tags: dict[int, str] | None = None, orientation: int | None = None) -> bytes:
    """A baseline little-endian TIFF of 16-bit RGB/RGBA pixels (Pillow cannot write them).

    Deflate compression with horizontal differencing (predictor 2), ~64 KiB
    strips; alpha is marked unassociated (ExtraSamples 2). Only the tags
    listed here are written.
    """
    h, w, c = arr.shape
    rows = max(1, min(h, (1 << 16) // (w * c * 2)))
    diff = np.array(arr, dtype=np.uint16, copy=True)
    diff[:, 1:, :] = arr[:, 1:, :] - arr[:, :-1, :]  # wraps modulo 2**16, as predictor 2 expects
    le = diff.astype("<u2", copy=False)
    strips = [zlib.compress(le[y:y + rows].tobytes(), 6) for y in range(0, h, rows)]

    entries: dict[int, tuple[int, int, bytes]] = {}  # tag -> (type, count, payload)

    def short(tag: int, *values: int) -> None:
        entries[tag] = (3, len(values), struct.pack(f"<{len(values)}H", *values))

    def long(tag: int, *values: int) -> None:
        entries[tag] = (4, len(values), struct.pack(f"<{len(values)}I", *values))

    long(256, w)
    long(257, h)
    short(258, *([16] * c))
    short(259, 8)
    short(262, 2)
    short(277, c)
    long(278, rows)
    short(284, 1)
    short(317, 2)
    short(339, *([1] * c))
    if c == 4:
        short(338, 2)
    if orientation is not None:
        short(274, orientation)
    if dpi:
        for tag, v in ((282, dpi[0]), (283, dpi[1])):
            entries[tag] = (5, 1, struct.pack("<II", *_rational(v)))
        short(296, 2)
    for tag, text in (ascii_tags or {}).items():
        raw = text.encode("ascii", "replace") + b"\x00"
        entries[tag] = (2, len(raw), raw)
    if icc:
        entries[34675] = (7, len(icc), icc)

    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    offsets = []
    for s in strips:
        offsets.append(len(out))
        out += s
        if len(out) % 2:
            out += b"\x00"
    long(273, *offsets)
    long(279, *(len(s) for s in strips))

    inline: dict[int, bytes] = {}
    for tag in sorted(entries):
        typ, count, payload = entries[tag]
        if len(payload) <= 4:
            inline[tag] = payload.ljust(4, b"\x00")
        else:
            if len(out) % 2:
                out += b"\x00"
            inline[tag] = struct.pack("<I", len(out))
            out += payload
    if len(out) % 2:
        out += b"\x00"
    ifd_offset = len(out)
    out += struct.pack("<H", len(entries))
    for tag in sorted(entries):
        typ, count, _ = entries[tag]
        out += struct.pack("<HHI", tag, typ, count) + inline[tag]
    out += b"\x00\x00\x00\x00"
    out[4:8] = struct.pack("<I", ifd_offset)
    return bytes(out)


def _encode(arr: np.ndarray, fmt: str, *, gray_alpha: bool, icc: bytes | None, dpi, exif: bytes | None,
            safe: SafeExif | None, quality: int, subsampling: int, lossless: bool) -> bytes:
    colour16 = arr.dtype == np.uint16 and arr.ndim == 3
    if fmt == "PNG" and colour16:
        return _encode_png16(arr, icc, dpi, exif)
    if fmt == "TIFF" and colour16:
        ascii_tags = {}
        if safe is not None:
            ascii_tags = {t: v for t, v in safe.ifd0.items() if isinstance(v, str)}
        return encode_tiff16(arr, icc=icc, dpi=dpi, ascii_tags=ascii_tags,
                             orientation=1 if safe is not None else None)
    im = _pil_image(arr, gray_alpha)
    opts: dict[str, Any] = {}
    if icc:
        opts["icc_profile"] = icc
    if exif and fmt != "TIFF":
        opts["exif"] = exif
    if fmt == "TIFF" and safe is not None:
        # libtiff cannot write an Exif sub-IFD: TIFF keeps the allow-listed
        # IFD0 strings (Make, Model) and Orientation = 1.
        info = {t: v for t, v in safe.ifd0.items() if isinstance(v, str)}
        info[0x0112] = 1
        opts["tiffinfo"] = info
    if dpi and fmt != "WEBP":
        opts["dpi"] = dpi if fmt != "JPEG" else tuple(int(round(v)) for v in dpi)
    if fmt == "JPEG":
        opts.update(quality=quality, subsampling=subsampling)
    elif fmt == "PNG":
        opts.update(compress_level=6)
    elif fmt == "WEBP":
        opts.update(quality=quality, lossless=lossless, method=4)
    elif fmt == "TIFF":
        opts.update(compression="tiff_adobe_deflate")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **opts)
    return buf.getvalue()


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    *,
    like: LoadedImage | None = None,
    keep_metadata: bool = False,
    keep_icc: bool = True,
    quality: int = DEFAULT_JPEG_QUALITY,
    subsampling: int = 0,
    lossless: bool | None = None,
    background: tuple[int, int, int] | None = (255, 255, 255),
    format: str | None = None,
    protect: Iterable[str | Path] = (),
    finalize: Callable[[bytes, str], bytes] | None = None,
) -> WrittenImage:
    """Write ``pixels`` to ``path`` atomically; see the module docstring for the rules.

    Args:
        path: output file; its extension chooses the format.
        pixels: ``H x W``, ``H x W x 3`` or ``H x W x 4``; uint8 or uint16; RGB(A).
        like: the :class:`LoadedImage` the pixels came from: gives the ICC
            profile, DPI, allow-listed EXIF, a fallback format, and is never
            overwritten.
        keep_metadata: also write the allow-listed EXIF (Orientation = 1).
        keep_icc: carry the ICC colour profile (default True).
        quality: JPEG/WebP quality 1..100 (default 95).
        subsampling: JPEG chroma subsampling: 0 = 4:4:4 (default), 1 = 4:2:2, 2 = 4:2:0.
        lossless: WebP lossless; None = lossless only when ``like`` was lossless WebP.
        background: colour that transparent pixels are flattened onto for JPEG
            and BMP; None refuses to write alpha to them.
        format: force a format instead of the extension's.
        protect: more input files that must not be overwritten.
        finalize: called as ``finalize(encoded_bytes, format)`` before the
            metadata check and the write; returns the bytes to write (the
            reversible mode embeds its payload here, see :mod:`facedeid.keys`).

    Raises:
        OutputError: unknown/unsupported output format, not writable, would
            overwrite an input, or alpha to JPEG/BMP with ``background=None``.
        ValueError: ``pixels`` is not a supported array.
    """
    fmt = output_format(path, like, format)
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if subsampling not in (0, 1, 2):
        raise ValueError(f"subsampling must be 0, 1 or 2, got {subsampling}")
    guarded = [like.path] if like is not None else []
    guarded += list(protect)
    check_not_input(path, guarded)
    notes: list[str] = []
    arr = _check_pixels(pixels)
    arr, gray_alpha = _fit_to_format(arr, fmt, str(path), like, background, notes)

    kept: list[str] = []
    icc = None
    dpi = None
    exif_bytes = None
    safe = None
    if like is not None:
        if keep_icc and like.icc_profile:
            want = "GRAY" if arr.ndim == 2 or gray_alpha else "RGB"
            if icc_color_space(like.icc_profile) == want:
                icc = like.icc_profile
                kept.append("icc_profile")
            else:
                notes.append("ICC profile not written: it does not match the written colour mode")
        if like.dpi and fmt != "WEBP":
            dpi = like.dpi
            kept.append("dpi")
        if keep_metadata and like.exif and fmt != "BMP":
            safe = like.exif
            if fmt == "TIFF":
                kept += sorted(f"exif:{tag_name(t)}" for t, v in safe.ifd0.items() if isinstance(v, str))
                if safe.exif:
                    notes.append("TIFF output keeps Make/Model only (no Exif sub-IFD)")
            else:
                exif_bytes = safe.to_bytes()
                kept += [f"exif:{n}" for n in safe.names()]
        elif keep_metadata and like.exif and fmt == "BMP":
            notes.append("BMP cannot hold EXIF: none written")
    if lossless is None:
        lossless = bool(like is not None and like.format == "WEBP" and like.lossless)

    try:
        data = _encode(arr, fmt, gray_alpha=gray_alpha, icc=icc, dpi=dpi, exif=exif_bytes, safe=safe,
                       quality=int(quality), subsampling=subsampling, lossless=bool(lossless))
    except OutputError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise OutputError(f"{path}: cannot encode {fmt}: {_one_line(exc)}") from None

    if finalize is not None:
        data = finalize(data, fmt)
    summary = metadata_summary(data)
    if summary["identifying"]:
        raise OutputError(f"{path}: internal check failed: the encoded file would carry "
                          f"{', '.join(summary['identifying'])}; nothing written")
    atomic_write_bytes(path, data, protect=guarded)
    return WrittenImage(
        path=Path(path), format=fmt, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
        width=int(arr.shape[1]), height=int(arr.shape[0]), mode=_mode_name(arr, gray_alpha),
        kept=kept, metadata=summary, notes=notes,
    )


def default_extension(fmt: str) -> str:
    """The usual extension for a format name (``"JPEG"`` -> ``".jpg"``)."""
    return FORMAT_EXTS[fmt.upper()]
