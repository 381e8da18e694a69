"""Image metadata: what a file carries, and what facedeid writes back.

Policy
======

A face photo's metadata can identify the person as surely as the face does:
GPS position, the EXIF thumbnail (a small copy of the *original* picture, face
included), owner and artist names, camera serial numbers, capture dates,
XMP/IPTC captions and keywords, PNG text chunks, JPEG comments, MakerNotes
(vendor blobs that hold serial numbers and even face-detection boxes).

**Default (strip)**: the written file carries pixels and nothing else except

* the ICC colour profile, when its colour space matches the written pixels
  (``RGB`` profile for colour, ``GRAY`` profile for grayscale). It describes how
  to render the pixels; without it a Display-P3 or Adobe-RGB photo shows wrong
  colours. It names no person. ``write_image(..., keep_icc=False)`` drops it too.
* the resolution (DPI: JFIF density, PNG ``pHYs``, TIFF X/YResolution), which
  only affects print size.

Nothing else is copied: no EXIF at all (so Orientation is implicitly 1; the
pixels were already rotated on reading), no XMP, IPTC, Photoshop resources,
comments, text chunks, ``tIME``, MPF secondary images or trailing data.

**keep_metadata=True** additionally writes a fresh EXIF block (never the
original bytes) holding only these tags, with ``Orientation = 1``:

* IFD0: ``Make``, ``Model``, ``XResolution``, ``YResolution``, ``ResolutionUnit``
  (:data:`SAFE_IFD0_TAGS`);
* Exif IFD: exposure and optics only — ``ExposureTime``, ``FNumber``,
  ``ExposureProgram``, ``ISOSpeedRatings``, ``SensitivityType``, ``ExifVersion``,
  ``ShutterSpeedValue``, ``ApertureValue``, ``BrightnessValue``,
  ``ExposureBiasValue``, ``MaxApertureValue``, ``MeteringMode``, ``LightSource``,
  ``Flash``, ``FocalLength``, ``ColorSpace``, ``ExposureMode``, ``WhiteBalance``,
  ``DigitalZoomRatio``, ``FocalLengthIn35mmFilm``, ``SceneCaptureType``,
  ``Contrast``, ``Saturation``, ``Sharpness``, ``LensSpecification``,
  ``LensMake``, ``LensModel`` (:data:`SAFE_EXIF_TAGS`).

Make/Model/Lens name a *product*, not a person or a unit. Never kept, whatever
the option: the GPS IFD, IFD1 and its thumbnail, the Interoperability IFD,
``MakerNote``, ``UserComment``, ``ImageDescription``, ``Artist``,
``Copyright``, ``CameraOwnerName``, ``BodySerialNumber``, ``LensSerialNumber``,
``ImageUniqueID`` (links the copy back to the original), every date/time and
time-zone tag (``DateTime*``, ``OffsetTime*``, ``SubSecTime*``: they place the
person in time and link copies), ``Software``, ``HostComputer``, Windows ``XP*``
tags, ``SubjectArea``/``SubjectLocation`` (they point at the face), pixel
dimensions (stale after processing), XMP, IPTC and all text chunks.
String values longer than 64 characters are dropped (a camera model is short;
a long string is something else).

Formats: JPEG, PNG (``eXIf``) and WebP carry the kept EXIF; TIFF carries the
IFD0 strings (Make, Model) and Orientation only (libtiff cannot write an Exif
sub-IFD); BMP carries no EXIF.

Inspection
==========

:func:`metadata_summary` parses a file's **bytes** itself (JPEG segments, PNG
chunks, WebP RIFF chunks, TIFF IFDs, BMP header, GIF blocks, and the EXIF
TIFF structure inside them) rather than trusting a decoder's view; tests and the
audit record use it. Its result (all JSON-safe)::

    format           "JPEG" | "PNG" | "WEBP" | "TIFF" | "BMP" | "GIF" | None
    found            sorted kinds present: exif gps thumbnail makernote xmp iptc
                     photoshop comment text time mpf jumbf trailing-data
                     extra-images unknown-segment icc_profile dpi animation
                     deid-payload (facedeid's encrypted reversible-mode payload)
    identifying      ``found`` minus the non-identifying kinds (icc_profile,
                     dpi, animation, deid-payload) and minus ``exif`` when every EXIF tag is
                     on the allow-list
    exif_tags        EXIF tag names (IFD0, Exif IFD; TIFF files: non-structural
                     image tags), sorted
    gps_tags         GPS tag names, sorted
    orientation      EXIF/TIFF Orientation value or None
    thumbnail_bytes  size of an embedded thumbnail (EXIF IFD1 or JFXX), 0 if none
    text_keys        PNG text keywords / GIF application ids, in file order
    comments         number of comment segments/chunks/extensions
    segments         container items in file order ("APP1:Exif", "COM",
                     "iCCP", "EXIF", "tag:Artist" ...)
    trailing_bytes   bytes after the end of the image (after JPEG EOI/PNG IEND)
    errors           problems met while parsing (the file may be malformed)
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import ExifTags

# --------------------------------------------------------------------------
# tag numbers and allow-lists

ORIENTATION = 0x0112
EXIF_IFD_POINTER = 0x8769
GPS_IFD_POINTER = 0x8825
INTEROP_IFD_POINTER = 0xA005
MAKERNOTE = 0x927C
JPEG_IF_OFFSET = 0x0201
JPEG_IF_LENGTH = 0x0202

SAFE_IFD0_TAGS: frozenset[int] = frozenset({
    0x010F,  # Make
    0x0110,  # Model
    0x011A,  # XResolution
    0x011B,  # YResolution
    0x0128,  # ResolutionUnit
})

SAFE_EXIF_TAGS: frozenset[int] = frozenset({
    0x829A,  # ExposureTime
    0x829D,  # FNumber
    0x8822,  # ExposureProgram
    0x8827,  # ISOSpeedRatings / PhotographicSensitivity
    0x8830,  # SensitivityType
    0x9000,  # ExifVersion
    0x9201,  # ShutterSpeedValue
    0x9202,  # ApertureValue
    0x9203,  # BrightnessValue
    0x9204,  # ExposureBiasValue
    0x9205,  # MaxApertureValue
    0x9207,  # MeteringMode
    0x9208,  # LightSource
    0x9209,  # Flash
    0x920A,  # FocalLength
    0xA001,  # ColorSpace
    0xA402,  # ExposureMode
    0xA403,  # WhiteBalance
    0xA404,  # DigitalZoomRatio
    0xA405,  # FocalLengthIn35mmFilm
    0xA406,  # SceneCaptureType
    0xA408,  # Contrast
    0xA409,  # Saturation
    0xA40A,  # Sharpness
    0xA432,  # LensSpecification
    0xA433,  # LensMake
    0xA434,  # LensModel
})

MAX_SAFE_STRING = 64

# Tags that describe a TIFF file's pixel layout, not its content.
TIFF_STRUCTURAL_TAGS: frozenset[int] = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 274, 277, 278, 279, 280, 281,
    282, 283, 284, 290, 291, 292, 293, 296, 317, 318, 319, 320, 322, 323, 324, 325,
    332, 338, 339, 340, 341, 347, 529, 530, 531, 532,
})

#: ``deid-payload``: facedeid's own reversible-mode payload (``facedeid.keys``): the
#: original face pixels, AES-256-GCM encrypted; nothing readable without the key.
NON_IDENTIFYING_KINDS = frozenset({"icc_profile", "dpi", "animation", "deid-payload"})

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_MAX_IFD_ENTRIES = 4096


def tag_name(tag: int, gps: bool = False) -> str:
    table = ExifTags.GPSTAGS if gps else ExifTags.TAGS
    return table.get(tag) or f"0x{tag:04X}"


# --------------------------------------------------------------------------
# EXIF / TIFF structure parser


@dataclass
class ExifInfo:
    """Tags found in a TIFF-structured block (EXIF payload or a TIFF file)."""

    ifd0: dict[int, Any] = field(default_factory=dict)
    exif: dict[int, Any] = field(default_factory=dict)
    gps: dict[int, Any] = field(default_factory=dict)
    interop: dict[int, Any] = field(default_factory=dict)
    ifd1: dict[int, Any] = field(default_factory=dict)
    n_ifds: int = 0
    thumbnail_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def orientation(self) -> int | None:
        value = self.ifd0.get(ORIENTATION)
        return value if isinstance(value, int) else None


def parse_exif(buf: bytes, *, tiff_file: bool = False) -> ExifInfo:
    """Parse a TIFF structure (``II*\\0``/``MM\\0*``), bounds-checked.

    Scalar SHORT/LONG values are decoded (others are ``None``); this is for
    inspection, not for round-tripping values.
    """
    info = ExifInfo()
    if buf.startswith(b"Exif\x00\x00"):
        buf = buf[6:]
    if len(buf) < 8:
        info.errors.append("EXIF block too short")
        return info
    if buf[:2] == b"II":
        end = "<"
    elif buf[:2] == b"MM":
        end = ">"
    else:
        info.errors.append("EXIF block has no TIFF byte-order mark")
        return info
    magic = struct.unpack(end + "H", buf[2:4])[0]
    if magic == 43:
        info.errors.append("BigTIFF structure not inspected")
        return info
    if magic != 42:
        info.errors.append(f"bad TIFF magic {magic}")
        return info
    seen: set[int] = set()

    def read_ifd(offset: int) -> tuple[dict[int, Any], int]:
        tags: dict[int, Any] = {}
        if offset in seen or offset < 8 or offset + 2 > len(buf):
            if offset:
                info.errors.append(f"bad IFD offset {offset}")
            return tags, 0
        seen.add(offset)
        count = struct.unpack(end + "H", buf[offset:offset + 2])[0]
        if count > _MAX_IFD_ENTRIES:
            info.errors.append(f"IFD at {offset} claims {count} entries")
            return tags, 0
        pos = offset + 2
        for _ in range(count):
            if pos + 12 > len(buf):
                info.errors.append("IFD entry beyond end of data")
                return tags, 0
            tag, typ, n = struct.unpack(end + "HHI", buf[pos:pos + 8])
            raw = buf[pos + 8:pos + 12]
            value: Any = None
            size = _TYPE_SIZES.get(typ, 0) * n
            if n == 1 and typ == 3:
                value = struct.unpack(end + "H", raw[:2])[0]
            elif n == 1 and typ in (4, 13):
                value = struct.unpack(end + "I", raw)[0]
            elif typ == 2 and size:  # ASCII: keep the length only
                value = ("ascii", n)
            if size > 4:
                off = struct.unpack(end + "I", raw)[0]
                if off + size > len(buf):
                    info.errors.append(f"tag {tag_name(tag)} points beyond end of data")
            tags[tag] = value
            pos += 12
        nxt = struct.unpack(end + "I", buf[pos:pos + 4])[0] if pos + 4 <= len(buf) else 0
        return tags, nxt

    first = struct.unpack(end + "I", buf[4:8])[0]
    info.ifd0, nxt = read_ifd(first)
    info.n_ifds = 1 if info.ifd0 else 0
    for key, attr in ((EXIF_IFD_POINTER, "exif"), (GPS_IFD_POINTER, "gps")):
        ptr = info.ifd0.get(key)
        if isinstance(ptr, int):
            setattr(info, attr, read_ifd(ptr)[0])
    ptr = info.exif.get(INTEROP_IFD_POINTER)
    if isinstance(ptr, int):
        info.interop = read_ifd(ptr)[0]
    if nxt:
        info.ifd1, nxt2 = read_ifd(nxt)
        if info.ifd1:
            info.n_ifds += 1
        length = info.ifd1.get(JPEG_IF_LENGTH)
        if isinstance(length, int):
            info.thumbnail_bytes = length
        elif info.ifd1 and not tiff_file:
            info.thumbnail_bytes = -1  # an uncompressed (strip) thumbnail
        guard = 0
        while nxt2 and guard < 1000:  # count further pages / previews
            _, nxt2 = read_ifd(nxt2)
            info.n_ifds += 1
            guard += 1
    return info


def _exif_is_safe(info: ExifInfo, *, tiff_file: bool) -> bool:
    allowed0 = SAFE_IFD0_TAGS | {ORIENTATION, EXIF_IFD_POINTER}
    ifd0 = set(info.ifd0)
    if tiff_file:
        ifd0 -= TIFF_STRUCTURAL_TAGS | {34675}  # ICC is reported separately
    return (
        ifd0 <= allowed0
        and set(info.exif) <= SAFE_EXIF_TAGS
        and not info.gps
        and not info.interop
        and not info.ifd1
    )


# --------------------------------------------------------------------------
# container walkers


class _Summary:
    def __init__(self, fmt: str | None):
        self.format = fmt
        self.found: set[str] = set()
        self.exif_tags: set[str] = set()
        self.gps_tags: set[str] = set()
        self.orientation: int | None = None
        self.thumbnail_bytes = 0
        self.text_keys: list[str] = []
        self.comments = 0
        self.segments: list[str] = []
        self.trailing_bytes = 0
        self.errors: list[str] = []
        self.exif_safe = True

    def add_exif(self, payload: bytes, *, tiff_file: bool = False) -> None:
        info = parse_exif(payload, tiff_file=tiff_file)
        self.errors.extend(info.errors)
        if tiff_file:
            tags0 = {t for t in info.ifd0 if t not in TIFF_STRUCTURAL_TAGS and t != 34675}
            if tags0 or info.exif:
                self.found.add("exif")
            if info.n_ifds > 1:
                self.found.add("extra-images")
        else:
            self.found.add("exif")
            tags0 = set(info.ifd0)
        self.exif_tags |= {tag_name(t) for t in tags0 if t not in (EXIF_IFD_POINTER, GPS_IFD_POINTER)}
        self.exif_tags |= {tag_name(t) for t in info.exif if t != INTEROP_IFD_POINTER}
        if GPS_IFD_POINTER in info.ifd0:
            self.found.add("gps")
            self.gps_tags |= {tag_name(t, gps=True) for t in info.gps}
        if MAKERNOTE in info.exif:
            self.found.add("makernote")
        if info.ifd1 and not tiff_file:
            self.found.add("thumbnail")
            self.thumbnail_bytes = max(self.thumbnail_bytes, info.thumbnail_bytes)
        if info.orientation is not None:
            self.orientation = info.orientation
        if not _exif_is_safe(info, tiff_file=tiff_file):
            self.exif_safe = False

    def result(self) -> dict:
        found = sorted(self.found)
        identifying = [k for k in found if k not in NON_IDENTIFYING_KINDS]
        if "exif" in identifying and self.exif_safe:
            identifying.remove("exif")
        return {
            "format": self.format,
            "found": found,
            "identifying": identifying,
            "exif_tags": sorted(self.exif_tags),
            "gps_tags": sorted(self.gps_tags),
            "orientation": self.orientation,
            "thumbnail_bytes": self.thumbnail_bytes,
            "text_keys": self.text_keys,
            "comments": self.comments,
            "segments": self.segments,
            "trailing_bytes": self.trailing_bytes,
            "errors": self.errors,
        }


_JPEG_APP_IDS = [
    (b"Exif\x00", "Exif"),
    (b"http://ns.adobe.com/xap/1.0/\x00", "XMP"),
    (b"http://ns.adobe.com/xmp/extension/\x00", "XMP-ext"),
    (b"ICC_PROFILE\x00", "ICC"),
    (b"MPF\x00", "MPF"),
    (b"Photoshop 3.0\x00", "Photoshop"),
    (b"JFIF\x00", "JFIF"),
    (b"JFXX\x00", "JFXX"),
    (b"Adobe", "Adobe"),
    (b"Ducky", "Ducky"),
    (b"JP", "JUMBF"),
    (b"FACEDEID\x00", "facedeid"),
]


def _photoshop_has_iptc(seg: bytes) -> bool:
    pos = len(b"Photoshop 3.0\x00")
    while pos + 12 <= len(seg) and seg[pos:pos + 4] == b"8BIM":
        rid = struct.unpack(">H", seg[pos + 4:pos + 6])[0]
        nlen = seg[pos + 6]
        pos += 7 + nlen + ((nlen + 1) % 2)
        if pos + 4 > len(seg):
            break
        size = struct.unpack(">I", seg[pos:pos + 4])[0]
        if rid == 0x0404:
            return True
        pos += 4 + size + (size % 2)
    return False


def _walk_jpeg(data: bytes, s: _Summary) -> None:
    n = len(data)
    pos = 2
    while pos < n:
        if data[pos] != 0xFF:
            # inside entropy-coded data: find the next real marker
            nxt = data.find(b"\xff", pos)
            if nxt < 0:
                s.errors.append("JPEG ends without EOI")
                return
            pos = nxt
            continue
        if pos + 1 >= n:
            s.errors.append("JPEG ends inside a marker")
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x00 or 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):
            pos += 2  # stuffed byte, restart marker, TEM, stray SOI
            continue
        if marker == 0xD9:  # EOI
            end = pos + 2
            rest = data[end:]
            if rest.strip(b"\x00"):
                s.trailing_bytes = len(rest)
                s.found.add("trailing-data")
            return
        if pos + 4 > n:
            s.errors.append("JPEG ends inside a segment header")
            return
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        seg = data[pos + 4:pos + 2 + length]
        if 0xE0 <= marker <= 0xEF:
            app = marker - 0xE0
            ident = next((name for prefix, name in _JPEG_APP_IDS if seg.startswith(prefix)), "?")
            if app == 11 and ident == "JUMBF":
                ident = "JUMBF"
            elif ident == "JUMBF":
                ident = "?"
            s.segments.append(f"APP{app}:{ident}")
            if ident == "Exif" and app == 1:
                s.add_exif(seg[6:])
            elif ident in ("XMP", "XMP-ext"):
                s.found.add("xmp")
            elif ident == "ICC":
                s.found.add("icc_profile")
            elif ident == "MPF":
                s.found.add("mpf")
                s.found.add("extra-images")
            elif ident == "Ducky":  # Photoshop "Save for Web": quality, may hold copyright text
                s.found.add("photoshop")
            elif ident == "Photoshop":
                s.found.add("photoshop")
                if _photoshop_has_iptc(seg):
                    s.found.add("iptc")
            elif ident == "JFIF":
                s.found.add("dpi")
            elif ident == "JFXX":
                s.found.add("thumbnail")
                s.thumbnail_bytes = max(s.thumbnail_bytes, len(seg))
            elif ident == "JUMBF":
                s.found.add("jumbf")
            elif ident == "facedeid" and app == 15:
                s.found.add("deid-payload")
            elif ident not in ("Adobe",):
                s.found.add("unknown-segment")
        elif marker == 0xFE:
            s.segments.append("COM")
            s.comments += 1
            s.found.add("comment")
        elif marker == 0xDA:  # SOS: entropy-coded data follows
            pos = pos + 2 + length
            continue
        pos += 2 + length
    s.errors.append("JPEG ends without EOI")


_PNG_RENDERING_CHUNKS = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT",
    b"bKGD", b"hIST", b"sPLT", b"cICP", b"mDCv", b"cLLi", b"acTL", b"fcTL", b"fdAT",
}


def _walk_png(data: bytes, s: _Summary) -> None:
    pos = 8
    n = len(data)
    while pos + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if pos + 12 + length > n:
            s.errors.append(f"PNG chunk {ctype!r} truncated")
        name = ctype.decode("latin-1")
        s.segments.append(name)
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            key = body.split(b"\x00", 1)[0].decode("latin-1", "replace")
            s.text_keys.append(key)
            if key == "XML:com.adobe.xmp":
                s.found.add("xmp")
            elif key.lower() in ("comment", "description"):
                s.comments += 1
                s.found.add("comment")
                s.found.add("text")
            else:
                s.found.add("text")
        elif ctype == b"eXIf":
            s.add_exif(body)
        elif ctype == b"iCCP":
            s.found.add("icc_profile")
        elif ctype == b"pHYs":
            s.found.add("dpi")
        elif ctype == b"tIME":
            s.found.add("time")
        elif ctype == b"acTL":
            s.found.add("animation")
        elif ctype in (b"caBX", b"jumb"):
            s.found.add("jumbf")
        elif ctype == b"fdEK" and body.startswith(b"FDEIDKP\x00"):
            s.found.add("deid-payload")
        elif ctype not in _PNG_RENDERING_CHUNKS:
            s.found.add("unknown-segment")
        pos += 12 + length
        if ctype == b"IEND":
            rest = data[pos:]
            if rest.strip(b"\x00"):
                s.trailing_bytes = len(rest)
                s.found.add("trailing-data")
            return
    s.errors.append("PNG ends without IEND")


def png_bad_crc(data: bytes) -> str | None:
    """The type of the first PNG chunk whose CRC does not match (or that is cut
    short), else None. Pillow does not check the CRC of pixel-data chunks."""
    pos = 8
    n = len(data)
    while pos + 8 <= n:
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        ctype = data[pos + 4:pos + 8]
        end = pos + 8 + length
        if end + 4 > n:
            return ctype.decode("latin-1")
        if zlib.crc32(data[pos + 4:end]) != struct.unpack(">I", data[end:end + 4])[0]:
            return ctype.decode("latin-1")
        pos = end + 4
        if ctype == b"IEND":
            break
    return None


def _walk_webp(data: bytes, s: _Summary) -> None:
    riff_end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    pos = 12
    while pos + 8 <= riff_end:
        fourcc, size = struct.unpack("<4sI", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + size]
        name = fourcc.decode("latin-1").strip()
        s.segments.append(name)
        if fourcc == b"EXIF":
            s.add_exif(body)
        elif fourcc == b"XMP ":
            s.found.add("xmp")
        elif fourcc == b"ICCP":
            s.found.add("icc_profile")
        elif fourcc in (b"ANIM", b"ANMF"):
            s.found.add("animation")
        elif fourcc not in (b"VP8 ", b"VP8L", b"VP8X", b"ALPH"):
            s.found.add("unknown-segment")
        pos += 8 + size + (size % 2)
    if len(data) > riff_end:
        s.trailing_bytes = len(data) - riff_end
        s.found.add("trailing-data")


def _walk_tiff(data: bytes, s: _Summary) -> None:
    info = parse_exif(data, tiff_file=True)
    s.add_exif(data, tiff_file=True)
    for tag in info.ifd0:
        if tag not in TIFF_STRUCTURAL_TAGS:
            s.segments.append(f"tag:{tag_name(tag)}")
    if 34675 in info.ifd0:
        s.found.add("icc_profile")
    if 282 in info.ifd0:
        s.found.add("dpi")
    for tag, kind in ((700, "xmp"), (33723, "iptc"), (34377, "photoshop"), (37724, "photoshop")):
        if tag in info.ifd0:
            s.found.add(kind)
    if 330 in info.ifd0:  # SubIFDs: previews / reduced-resolution copies
        s.found.add("extra-images")


def _walk_bmp(data: bytes, s: _Summary) -> None:
    if len(data) < 18:
        s.errors.append("BMP header truncated")
        return
    hsize = struct.unpack("<I", data[14:18])[0]
    if hsize >= 40 and len(data) >= 14 + 40:
        xppm = struct.unpack("<i", data[38:42])[0]
        if xppm > 0:
            s.found.add("dpi")
    if hsize >= 124 and len(data) >= 14 + 124:
        cstype = data[14 + 56:14 + 60]
        if cstype in (b"DEBM", b"MBED"):  # stored little-endian: 'MBED'
            s.found.add("icc_profile")
            s.segments.append("ICC")


def _walk_gif(data: bytes, s: _Summary) -> None:
    n = len(data)
    if n < 13:
        s.errors.append("GIF header truncated")
        return
    flags = data[10]
    pos = 13
    if flags & 0x80:
        pos += 3 * (2 ** ((flags & 7) + 1))
    frames = 0

    def skip_blocks(p: int) -> int:
        while p < n:
            size = data[p]
            p += 1
            if size == 0:
                return p
            p += size
        s.errors.append("GIF ends inside a data block")
        return n

    while pos < n:
        b = data[pos]
        if b == 0x3B:  # trailer
            rest = data[pos + 1:]
            if rest.strip(b"\x00"):
                s.trailing_bytes = len(rest)
                s.found.add("trailing-data")
            break
        if b == 0x21 and pos + 1 < n:
            label = data[pos + 1]
            if label == 0xFE:
                s.segments.append("comment")
                s.comments += 1
                s.found.add("comment")
            elif label == 0xFF and pos + 3 < n:
                size = data[pos + 2]
                app = data[pos + 3:pos + 3 + size].decode("latin-1", "replace")
                s.segments.append(f"app:{app}")
                s.text_keys.append(app)
                if app.startswith("XMP Data"):
                    s.found.add("xmp")
                elif app.startswith(("NETSCAPE2.0", "ANIMEXTS1.0")):
                    s.found.add("animation")
                elif app.startswith("ICCRGBG1"):
                    s.found.add("icc_profile")
                else:
                    s.found.add("unknown-segment")
            pos = skip_blocks(pos + 2)
        elif b == 0x2C:  # image descriptor
            frames += 1
            if pos + 10 > n:
                s.errors.append("GIF ends inside an image descriptor")
                break
            lflags = data[pos + 9]
            pos += 10
            if lflags & 0x80:
                pos += 3 * (2 ** ((lflags & 7) + 1))
            pos = skip_blocks(pos + 1)  # LZW minimum code size byte, then data
        else:
            s.errors.append(f"unexpected GIF block 0x{b:02X}")
            break
    if frames > 1:
        s.found.add("animation")


def sniff_format(data: bytes) -> str | None:
    """The container format from the first bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def metadata_summary(source: str | Path | bytes) -> dict:
    """What metadata a file (path or its bytes) carries; see the module docstring."""
    data = source if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    data = bytes(data)
    fmt = sniff_format(data)
    s = _Summary(fmt)
    walker = {
        "JPEG": _walk_jpeg, "PNG": _walk_png, "WEBP": _walk_webp,
        "TIFF": _walk_tiff, "BMP": _walk_bmp, "GIF": _walk_gif,
    }.get(fmt)
    if walker is None:
        s.errors.append("unknown format")
    else:
        try:
            walker(data, s)
        except (struct.error, IndexError, ValueError) as exc:  # malformed beyond our checks
            s.errors.append(f"parse error: {exc}")
    return s.result()


# --------------------------------------------------------------------------
# what facedeid writes back


def _clean_value(tag: int, value: Any) -> Any:
    """The value if it is a plain, bounded camera value; else None (dropped)."""
    if isinstance(value, str):
        value = value.replace("\x00", "").strip()
        if not value or len(value) > MAX_SAFE_STRING or not value.isprintable():
            return None
        return value
    if isinstance(value, bytes):
        return value if tag == 0x9000 and len(value) == 4 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if type(value).__name__ == "IFDRational":
        try:
            return value if math.isfinite(float(value)) or value.denominator == 0 else None
        except (ZeroDivisionError, ValueError):
            return None
    if isinstance(value, tuple) and 0 < len(value) <= 8:
        items = [_clean_value(tag, v) for v in value]
        if any(v is None or isinstance(v, (str, bytes, tuple)) for v in items):
            return None
        return tuple(items)
    return None


@dataclass(frozen=True)
class SafeExif:
    """EXIF values that passed the allow-list (and value checks)."""

    ifd0: dict[int, Any] = field(default_factory=dict)
    exif: dict[int, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.ifd0 or self.exif)

    def names(self) -> list[str]:
        return sorted(tag_name(t) for t in (*self.ifd0, *self.exif))

    @classmethod
    def from_pillow(cls, exif: Any) -> "SafeExif":
        """Filter a ``PIL.Image.Exif`` through the allow-list."""
        ifd0: dict[int, Any] = {}
        sub: dict[int, Any] = {}
        for tag in SAFE_IFD0_TAGS:
            if tag in exif:
                v = _clean_value(tag, exif[tag])
                if v is not None:
                    ifd0[tag] = v
        try:
            exif_ifd = exif.get_ifd(EXIF_IFD_POINTER)
        except Exception:  # malformed sub-IFD: keep nothing from it
            exif_ifd = {}
        for tag in SAFE_EXIF_TAGS:
            if tag in exif_ifd:
                v = _clean_value(tag, exif_ifd[tag])
                if v is not None:
                    sub[tag] = v
        return cls(ifd0=ifd0, exif=sub)

    def to_bytes(self) -> bytes:
        """A fresh EXIF block (``Exif\\0\\0`` + TIFF) with Orientation = 1."""
        from PIL import Image

        out = Image.Exif()
        out[ORIENTATION] = 1
        for tag, value in sorted(self.ifd0.items()):
            out[tag] = value
        if self.exif:
            ifd = out.get_ifd(EXIF_IFD_POINTER)
            for tag, value in sorted(self.exif.items()):
                ifd[tag] = value
        return out.tobytes()


def icc_color_space(icc: bytes | None) -> str | None:
    """The data colour space of an ICC profile: 'RGB', 'GRAY', 'CMYK' ... or None."""
    if not icc or len(icc) < 128 or icc[36:40] != b"acsp":
        return None
    return icc[16:20].decode("latin-1").strip() or None


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_metadata_chunks(*, icc: bytes | None = None, dpi: tuple[float, float] | None = None,
                        exif: bytes | None = None) -> list[bytes]:
    """``iCCP``, ``pHYs`` and ``eXIf`` chunks for :func:`png_insert_chunks`."""
    chunks = []
    if icc:
        chunks.append(png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if dpi:
        ppm = [max(1, int(round(d / 0.0254))) for d in dpi]
        chunks.append(png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        chunks.append(png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    return chunks


def png_insert_chunks(png: bytes, chunks: list[bytes]) -> bytes:
    """Insert chunks right after IHDR (where iCCP, pHYs and eXIf belong)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:end] + b"".join(chunks) + png[end:]
