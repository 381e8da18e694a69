"""The payload container: a small versioned binary format, and its strict parser.

Layout (all integers big-endian; see ``docs/KEYS.md`` for the full specification)::

    header   MAGIC "FDEIDKP\\0" | version u8 (=1) | kind u8 (1 image, 2 video)
             | method_len u8 | method (ASCII) | kdf u8 (0 key file, 1 scrypt)
             | [scrypt: log2_n u8 | r u8 | p u8 | salt 16 bytes]
             | payload_id 16 bytes (random) | width u32 | height u32 | channels u8 | bits u8
    entry*   0x45 ('E') | unit u32 | frame u32 | x0 u32 | y0 u32 | x1 u32 | y1 u32
             | digest 32 | nonce 12 | ct_len u32 | ciphertext (ct_len bytes, GCM tag included)
    trailer  0x54 ('T') | n_units u32 | n_units x (unit u32 | n_entries u32 | kcv 16 | tag 32)
             | binding 32 | master_tag 32 | END "FDEIDEND"

Nothing may follow ``END``. The parser (:func:`parse_payload`) checks every length
against the bytes that remain *before* slicing, bounds every count and size, and
raises :class:`~facedeid.keys.errors.PayloadError` (one line) for anything else:
it never allocates more than a small constant times the input size, never loops
more than the input allows, and never raises another exception type.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from .errors import PayloadError

MAGIC = b"FDEIDKP\x00"
END = b"FDEIDEND"
VERSION = 1
KIND_IMAGE = 1
KIND_VIDEO = 2
KINDS = {KIND_IMAGE: "image", KIND_VIDEO: "video"}
KDF_KEYFILE = 0
KDF_SCRYPT = 1
#: The unit id of the whole-image check entry (an encrypted digest of the original picture).
IMAGE_UNIT = 0xFFFFFFFF

ID_LEN = 16
SALT_LEN = 16
DIGEST_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16           # AES-GCM tag, part of the ciphertext
KCV_LEN = 16
MAC_LEN = 32

MAX_SIDE = 1 << 20
MAX_PIXELS = 1 << 31
MAX_METHOD_LEN = 64
#: scrypt bounds accepted from a payload: memory 128 * r * 2**log2_n <= 1 GiB, and
#: work N * r * p <= 2**25 (32 x the default), so a crafted payload cannot make a
#: reader allocate or compute without bound.
SCRYPT_MIN_LOG2_N, SCRYPT_MAX_LOG2_N = 10, 20
SCRYPT_MAX_R, SCRYPT_MAX_P = 32, 16
SCRYPT_MAX_MEMORY = 1 << 30
SCRYPT_MAX_WORK = 1 << 25

_METHOD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$")
_ENTRY = struct.Struct(">IIIIII")          # unit, frame, x0, y0, x1, y1
_ENTRY_FIXED = 1 + _ENTRY.size + DIGEST_LEN
_ENTRY_MIN = _ENTRY_FIXED + NONCE_LEN + 4 + TAG_LEN
_UNIT = struct.Struct(">II")
_UNIT_LEN = _UNIT.size + KCV_LEN + MAC_LEN
#: Inner-format overhead allowed on top of the raw pixel bytes of a region (headers,
#: zlib's worst-case expansion, the packed mask, padding).
_CT_SLACK = 4096


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters and salt (stored in the header)."""

    log2_n: int
    r: int
    p: int
    salt: bytes

    @property
    def memory_bytes(self) -> int:
        return 128 * self.r * (1 << self.log2_n)

    def check(self) -> None:
        """Raise PayloadError when outside the accepted bounds."""
        if not SCRYPT_MIN_LOG2_N <= self.log2_n <= SCRYPT_MAX_LOG2_N:
            raise PayloadError(f"scrypt cost 2**{self.log2_n} outside 2**{SCRYPT_MIN_LOG2_N}"
                               f"..2**{SCRYPT_MAX_LOG2_N}")
        if not (1 <= self.r <= SCRYPT_MAX_R and 1 <= self.p <= SCRYPT_MAX_P):
            raise PayloadError(f"scrypt parameters r={self.r}, p={self.p} out of range")
        if self.memory_bytes > SCRYPT_MAX_MEMORY or (1 << self.log2_n) * self.r * self.p > SCRYPT_MAX_WORK:
            raise PayloadError("scrypt parameters ask for too much memory or work")
        if len(self.salt) != SALT_LEN:
            raise PayloadError("scrypt salt has the wrong length")


@dataclass(frozen=True)
class Header:
    """What the payload says about itself (plain text, authenticated)."""

    kind: int
    method: str
    payload_id: bytes
    width: int
    height: int
    channels: int
    bits: int
    kdf: ScryptParams | None = None

    def to_bytes(self) -> bytes:
        m = self.method.encode("ascii")
        out = bytearray(MAGIC)
        out += struct.pack(">BBB", VERSION, self.kind, len(m)) + m
        if self.kdf is None:
            out += bytes([KDF_KEYFILE])
        else:
            out += struct.pack(">BBBB", KDF_SCRYPT, self.kdf.log2_n, self.kdf.r, self.kdf.p) + self.kdf.salt
        out += self.payload_id
        out += struct.pack(">IIBB", self.width, self.height, self.channels, self.bits)
        return bytes(out)

    def check(self) -> None:
        if self.kind not in KINDS:
            raise PayloadError(f"unknown payload kind {self.kind}")
        if not (1 <= len(self.method) <= MAX_METHOD_LEN and _METHOD_RE.match(self.method)):
            raise PayloadError("bad method name in payload header")
        if len(self.payload_id) != ID_LEN:
            raise PayloadError("bad payload id")
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE
                and self.width * self.height <= MAX_PIXELS):
            raise PayloadError(f"bad picture size {self.width}x{self.height} in payload header")
        if self.channels not in (1, 3, 4) or self.bits not in (8, 16):
            raise PayloadError(f"bad pixel layout ({self.channels} channels, {self.bits} bits)")
        if self.kdf is not None:
            self.kdf.check()


@dataclass(frozen=True)
class Entry:
    """One encrypted region: one face of an image, or one track in one video frame."""

    unit: int
    frame: int
    bbox: tuple[int, int, int, int]
    digest: bytes
    nonce: bytes
    ciphertext: bytes | memoryview

    def fixed_bytes(self) -> bytes:
        """The record up to the digest (the AEAD's associated data, with the header hash)."""
        return b"E" + _ENTRY.pack(self.unit, self.frame, *self.bbox) + self.digest

    def to_bytes(self) -> bytes:
        return self.fixed_bytes() + self.nonce + struct.pack(">I", len(self.ciphertext)) + bytes(self.ciphertext)


@dataclass(frozen=True)
class UnitInfo:
    """Per unit (face or track): entry count, key check value, authentication tag."""

    unit: int
    n_entries: int
    kcv: bytes
    tag: bytes

    def to_bytes(self) -> bytes:
        return _UNIT.pack(self.unit, self.n_entries) + self.kcv + self.tag


@dataclass(frozen=True)
class Trailer:
    units: tuple[UnitInfo, ...]
    binding: bytes
    master_tag: bytes

    def body_bytes(self) -> bytes:
        """The trailer up to (not including) the master tag."""
        return (b"T" + struct.pack(">I", len(self.units)) + b"".join(u.to_bytes() for u in self.units)
                + self.binding)

    def to_bytes(self) -> bytes:
        return self.body_bytes() + self.master_tag + END


@dataclass
class Payload:
    """A parsed payload (see :func:`parse_payload`)."""

    header: Header
    header_bytes: bytes
    entries: list[Entry]
    trailer: Trailer
    size: int = 0
    units: dict[int, UnitInfo] = field(default_factory=dict)

    def entries_of(self, unit: int) -> list[Entry]:
        return [e for e in self.entries if e.unit == unit]

    @property
    def face_units(self) -> list[int]:
        """Unit ids of faces/tracks (the whole-image check excluded), sorted."""
        return sorted(u for u in self.units if u != IMAGE_UNIT)


def max_ciphertext_len(bbox: tuple[int, int, int, int], channels: int, bits: int) -> int:
    """The largest ciphertext a region of ``bbox`` can need (bounded before reading it)."""
    x0, y0, x1, y1 = bbox
    area = (x1 - x0) * (y1 - y0)
    raw = area * channels * (bits // 8)
    return raw + raw // 100 + area // 8 + _CT_SLACK + TAG_LEN


class _Reader:
    """Bounds-checked cursor over a buffer."""

    def __init__(self, data: memoryview):
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.left:
            raise PayloadError(f"truncated payload (ends inside the {what})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def unpack(self, st: struct.Struct, what: str) -> tuple:
        return st.unpack(self.take(st.size, what))


_U32 = struct.Struct(">I")
_HDR_TAIL = struct.Struct(">IIBB")


def _parse_header(r: _Reader) -> Header:
    if bytes(r.take(len(MAGIC), "magic")) != MAGIC:
        raise PayloadError("not a facedeid payload (bad magic)")
    version = r.u8("header")
    if version != VERSION:
        raise PayloadError(f"unsupported payload version {version} (this facedeid reads version {VERSION})")
    kind = r.u8("header")
    mlen = r.u8("header")
    if not 1 <= mlen <= MAX_METHOD_LEN:
        raise PayloadError("bad method name length in payload header")
    raw_method = bytes(r.take(mlen, "header"))
    try:
        method = raw_method.decode("ascii")
    except UnicodeDecodeError:
        raise PayloadError("bad method name in payload header") from None
    kdf_id = r.u8("header")
    kdf = None
    if kdf_id == KDF_SCRYPT:
        log2_n, rr, p = r.u8("header"), r.u8("header"), r.u8("header")
        kdf = ScryptParams(log2_n, rr, p, bytes(r.take(SALT_LEN, "header")))
    elif kdf_id != KDF_KEYFILE:
        raise PayloadError(f"unknown key derivation {kdf_id} in payload header")
    payload_id = bytes(r.take(ID_LEN, "header"))
    width, height, channels, bits = r.unpack(_HDR_TAIL, "header")
    header = Header(kind=kind, method=method, payload_id=payload_id, width=width, height=height,
                    channels=channels, bits=bits, kdf=kdf)
    header.check()
    return header


def parse_payload(data: bytes | bytearray | memoryview, *, max_entries: int = 50_000_000) -> Payload:
    """Parse and check a payload's structure (no key needed; nothing is decrypted).

    Raises:
        PayloadError: bad magic or version, truncated, an impossible size, count
            or box, duplicated entries, units that do not match the entries, or
            bytes after the end marker.
    """
    try:
        view = memoryview(data).cast("B")
    except (TypeError, ValueError):
        raise PayloadError("payload is not a byte string") from None
    r = _Reader(view)
    header = _parse_header(r)
    header_bytes = bytes(view[:r.pos])
    entries: list[Entry] = []
    counts: dict[int, int] = {}
    seen: set[tuple[int, int]] = set()
    last_frame = 0
    while True:
        tag = r.u8("entries")
        if tag == 0x54:  # 'T'
            break
        if tag != 0x45:  # 'E'
            raise PayloadError(f"bad record type 0x{tag:02x} at byte {r.pos - 1}")
        if len(entries) >= max_entries:
            raise PayloadError("too many entries")
        unit, frame, x0, y0, x1, y1 = r.unpack(_ENTRY, "entry")
        if not (0 <= x0 < x1 <= header.width and 0 <= y0 < y1 <= header.height):
            raise PayloadError(f"entry for unit {unit} has a box outside the picture")
        if header.kind == KIND_IMAGE and frame != 0:
            raise PayloadError("image payload with a frame number")
        if frame < last_frame:
            raise PayloadError("entries out of frame order")
        last_frame = frame
        if (unit, frame) in seen:
            raise PayloadError(f"unit {unit} appears twice in frame {frame}")
        seen.add((unit, frame))
        digest = bytes(r.take(DIGEST_LEN, "entry"))
        nonce = bytes(r.take(NONCE_LEN, "entry"))
        (ct_len,) = r.unpack(_U32, "entry")
        limit = max_ciphertext_len((x0, y0, x1, y1), header.channels, header.bits)
        if not TAG_LEN <= ct_len <= limit:
            raise PayloadError(f"entry for unit {unit} has an impossible length {ct_len}")
        ct = r.take(ct_len, "entry ciphertext")
        entries.append(Entry(unit, frame, (x0, y0, x1, y1), digest, nonce, ct))
        counts[unit] = counts.get(unit, 0) + 1
    (n_units,) = r.unpack(_U32, "trailer")
    if n_units != len(counts):
        raise PayloadError(f"trailer lists {n_units} unit(s), the entries hold {len(counts)}")
    if n_units * _UNIT_LEN > r.left:
        raise PayloadError("truncated payload (ends inside the trailer)")
    units: list[UnitInfo] = []
    by_unit: dict[int, UnitInfo] = {}
    for _ in range(n_units):
        unit, n = r.unpack(_UNIT, "trailer")
        kcv = bytes(r.take(KCV_LEN, "trailer"))
        tag_ = bytes(r.take(MAC_LEN, "trailer"))
        if unit in by_unit:
            raise PayloadError(f"unit {unit} listed twice in the trailer")
        if counts.get(unit) != n:
            raise PayloadError(f"trailer and entries disagree on unit {unit}")
        info = UnitInfo(unit, n, kcv, tag_)
        units.append(info)
        by_unit[unit] = info
    binding = bytes(r.take(DIGEST_LEN, "trailer"))
    master_tag = bytes(r.take(MAC_LEN, "trailer"))
    if bytes(r.take(len(END), "end marker")) != END:
        raise PayloadError("payload end marker missing (damaged or truncated)")
    if r.left:
        raise PayloadError(f"{r.left} unexpected byte(s) after the payload end marker")
    trailer = Trailer(tuple(units), binding, master_tag)
    return Payload(header=header, header_bytes=header_bytes, entries=entries, trailer=trailer,
                   size=len(view), units=by_unit)


__all__ = [
    "MAGIC", "END", "VERSION", "KIND_IMAGE", "KIND_VIDEO", "KINDS", "IMAGE_UNIT",
    "ScryptParams", "Header", "Entry", "UnitInfo", "Trailer", "Payload",
    "parse_payload", "max_ciphertext_len",
]
