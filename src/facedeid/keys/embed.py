"""Where a payload lives: a PNG chunk, JPEG APP15 segments, or a sidecar file.

* **PNG**: one private ancillary chunk ``fdEK`` before ``IEND``. Its name marks it
  *not safe to copy* (4th letter upper case): an editor that changes the picture
  drops it instead of carrying a payload that no longer matches.
* **JPEG**: APP15 segments right after the leading APPn segments, each
  ``"FACEDEID\\0" | seq u16 | count u16 | up to 65,520 payload bytes``; a payload of
  any size is split over as many segments as needed (at most 65,535).
* **Everything else** (WebP, TIFF, BMP; MP4 and other video containers except
  Matroska): a sidecar file ``OUTPUT.fdk`` next to the output holding the payload bytes.
* **Matroska video** (``.mkv``): an attachment ``facedeid-payload.fdk``.

Extraction walks the container structure with bounds checks and raises
:class:`~facedeid.keys.errors.PayloadError` for anything inconsistent.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from .errors import PayloadError

PNG_SIG = b"\x89PNG\r\n\x1a\n"
PNG_CHUNK = b"fdEK"
JPEG_APP = 0xEF                       # APP15
JPEG_ID = b"FACEDEID\x00"
_JPEG_HEAD = len(JPEG_ID) + 4
JPEG_MAX_DATA = 0xFFFF - 2 - _JPEG_HEAD
SIDECAR_SUFFIX = ".fdk"
MKV_ATTACHMENT = "facedeid-payload.fdk"
MKV_MIMETYPE = "application/x-facedeid-payload"


def sidecar_path(output: str | Path) -> Path:
    """``OUTPUT.fdk`` (the output's full name plus ``.fdk``)."""
    p = Path(output)
    return p.with_name(p.name + SIDECAR_SUFFIX)


# ---------------------------------------------------------------- PNG
def _png_chunks(data: bytes):
    if not data.startswith(PNG_SIG):
        raise PayloadError("not a PNG stream")
    pos, n = len(PNG_SIG), len(data)
    while pos + 12 <= n:
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > n:
            raise PayloadError(f"PNG chunk {ctype!r} is truncated")
        yield pos, ctype, end
        if ctype == b"IEND":
            return
        pos = end
    raise PayloadError("PNG stream ends without IEND")


def embed_png(png: bytes, payload: bytes) -> bytes:
    """``png`` with the payload chunk inserted before ``IEND`` (an old one refused)."""
    iend = None
    for pos, ctype, _ in _png_chunks(png):
        if ctype == PNG_CHUNK:
            raise ValueError("the PNG already holds a facedeid payload")
        if ctype == b"IEND":
            iend = pos
    if iend is None:  # pragma: no cover - _png_chunks raises first
        raise PayloadError("PNG stream ends without IEND")
    if len(payload) >= 1 << 31:
        raise ValueError("payload too large for one PNG chunk")
    chunk = struct.pack(">I", len(payload)) + PNG_CHUNK + payload
    chunk += struct.pack(">I", zlib.crc32(PNG_CHUNK + payload))
    return png[:iend] + chunk + png[iend:]


def extract_png(png: bytes) -> bytes | None:
    """The payload of a PNG, or None when it has none."""
    found = None
    for pos, ctype, end in _png_chunks(png):
        if ctype != PNG_CHUNK:
            continue
        if found is not None:
            raise PayloadError("the PNG holds more than one facedeid payload chunk")
        body = png[pos + 8:end - 4]
        if zlib.crc32(PNG_CHUNK + body) != struct.unpack(">I", png[end - 4:end])[0]:
            raise PayloadError("the payload chunk is damaged (bad PNG checksum)")
        found = body
    return found


# ---------------------------------------------------------------- JPEG
def _jpeg_segments(data: bytes):
    """``(pos, marker, seg_start, seg_end)`` of the marker segments before SOS."""
    if not data.startswith(b"\xff\xd8"):
        raise PayloadError("not a JPEG stream")
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise PayloadError(f"JPEG marker expected at byte {pos}")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise PayloadError("JPEG ends inside a marker")
        marker = data[pos]
        start = pos - 1
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker == 0xD9:
            return
        if pos + 2 > n:
            raise PayloadError("JPEG ends inside a segment header")
        length = struct.unpack(">H", data[pos:pos + 2])[0]
        if length < 2 or pos + length > n:
            raise PayloadError("JPEG segment runs past the end of the file")
        yield start, marker, pos + 2, pos + length
        if marker == 0xDA:  # SOS: entropy-coded data follows, no more header segments
            return
        pos += length


def embed_jpeg(jpeg: bytes, payload: bytes) -> bytes:
    """``jpeg`` with APP15 payload segments after its leading APPn segments."""
    insert = 2
    for start, marker, _, end in _jpeg_segments(jpeg):
        if 0xE0 <= marker <= 0xEF:
            if marker == JPEG_APP:
                raise ValueError("the JPEG already holds APP15 segments")
            insert = end
            continue
        break
    pieces = [payload[i:i + JPEG_MAX_DATA] for i in range(0, len(payload), JPEG_MAX_DATA)] or [b""]
    if len(pieces) > 0xFFFF:
        raise ValueError("payload too large for JPEG APP15 segments")
    segs = bytearray()
    for i, piece in enumerate(pieces):
        body = JPEG_ID + struct.pack(">HH", i, len(pieces)) + piece
        segs += bytes([0xFF, JPEG_APP]) + struct.pack(">H", len(body) + 2) + body
    return jpeg[:insert] + bytes(segs) + jpeg[insert:]


def extract_jpeg(jpeg: bytes) -> bytes | None:
    """The payload of a JPEG (its APP15 segments joined), or None."""
    parts: list[bytes] = []
    count = None
    for _, marker, s, e in _jpeg_segments(jpeg):
        if marker != JPEG_APP or not jpeg.startswith(JPEG_ID, s):
            continue
        if e - s < _JPEG_HEAD:
            raise PayloadError("a facedeid APP15 segment is truncated")
        seq, cnt = struct.unpack(">HH", jpeg[s + len(JPEG_ID):s + _JPEG_HEAD])
        if count is None:
            count = cnt
        if cnt != count or seq != len(parts) or cnt == 0:
            raise PayloadError("facedeid APP15 segments are missing or out of order")
        parts.append(jpeg[s + _JPEG_HEAD:e])
    if count is None:
        return None
    if len(parts) != count:
        raise PayloadError(f"{count - len(parts)} of {count} facedeid APP15 segment(s) missing")
    return b"".join(parts)


def embed(data: bytes, fmt: str, payload: bytes) -> bytes | None:
    """The encoded image with the payload inside, or None when ``fmt`` needs a sidecar."""
    if fmt == "PNG":
        return embed_png(data, payload)
    if fmt == "JPEG":
        return embed_jpeg(data, payload)
    return None


def extract(data: bytes) -> tuple[bytes | None, str]:
    """``(payload or None, where)`` from an encoded image's bytes."""
    if data.startswith(PNG_SIG):
        return extract_png(data), f"PNG chunk {PNG_CHUNK.decode()}"
    if data.startswith(b"\xff\xd8"):
        return extract_jpeg(data), "JPEG APP15 segments"
    return None, "sidecar"


__all__ = ["sidecar_path", "embed_png", "extract_png", "embed_jpeg", "extract_jpeg", "embed",
           "extract", "PNG_CHUNK", "JPEG_ID", "SIDECAR_SUFFIX", "MKV_ATTACHMENT"]
