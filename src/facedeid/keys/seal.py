"""Writing (:class:`Sealer`) and opening (:class:`Opener`) payloads.

Every entry is AES-256-GCM encrypted under its unit's key, with associated data
``SHA-256(header) | entry record up to the digest`` (unit, frame, box, digest of
the de-identified pixels): a ciphertext moved to another entry, header or image
fails. Each unit's trailer tag (HMAC under the unit's MAC key) covers the header
hash, the number of the unit's entries, the hash of all of them, and the binding
(video: digest of the video stream): entries cannot be removed, reordered or
replayed. The master tag covers everything (header, every entry, the trailer).
"""

from __future__ import annotations

import hashlib
import io
import secrets
import struct
from typing import BinaryIO

from .crypto import UnitKeys, decrypt, encrypt, mac, master_mac_key, same, unit_key
from .errors import PayloadError, TamperError, WrongKeyError
from .keyfile import FaceKey, MasterKey
from .payload import (
    DIGEST_LEN,
    END,
    ID_LEN,
    NONCE_LEN,
    Entry,
    Header,
    Payload,
    Trailer,
    UnitInfo,
    max_ciphertext_len,
)

ZERO_DIGEST = b"\0" * DIGEST_LEN


def _entry_hash_update(h, entry: Entry) -> None:
    h.update(entry.fixed_bytes())
    h.update(entry.nonce)
    h.update(struct.pack(">I", len(entry.ciphertext)))
    h.update(entry.ciphertext)


def _unit_tag(keys: UnitKeys, header_hash: bytes, unit: int, n: int, entries_hash: bytes,
              binding: bytes) -> bytes:
    return mac(keys.mac, b"unit", header_hash, struct.pack(">II", unit, n), entries_hash, binding)


def _master_tag(key: bytes, header_hash: bytes, all_hash: bytes, trailer_body: bytes) -> bytes:
    return mac(key, b"master", header_hash, all_hash, trailer_body)


class Sealer:
    """Build a payload entry by entry; entries go to ``sink`` as they come (video).

    Args:
        key: the master key (key file or passphrase).
        kind: :data:`~facedeid.keys.payload.KIND_IMAGE` or ``KIND_VIDEO``.
        method: the de-identification method's name (stored in the header).
        width, height, channels, bits: the original picture's layout.
        sink: where the payload bytes go (default: memory; :meth:`finish` returns them).
    """

    def __init__(self, key: MasterKey, *, kind: int, method: str, width: int, height: int,
                 channels: int, bits: int, sink: BinaryIO | None = None):
        self.header = Header(kind=kind, method=method, payload_id=secrets.token_bytes(ID_LEN),
                             width=int(width), height=int(height), channels=int(channels),
                             bits=int(bits), kdf=key.new_kdf())
        try:
            self.header.check()
        except PayloadError as exc:
            raise ValueError(str(exc)) from None
        self.header_bytes = self.header.to_bytes()
        self.header_hash = hashlib.sha256(self.header_bytes).digest()
        self._master = key.master_for(self.header)
        self._own_sink = sink is None
        self.sink: BinaryIO = io.BytesIO() if sink is None else sink
        self.sink.write(self.header_bytes)
        self.size = len(self.header_bytes)
        self._units: dict[int, tuple[UnitKeys, list]] = {}
        self._all = hashlib.sha256()
        self.n_entries = 0

    def _keys(self, unit: int) -> tuple[UnitKeys, list]:
        if unit not in self._units:
            k = UnitKeys(unit_key(self._master, self.header.payload_id, self.header.kind, unit))
            self._units[unit] = (k, [0, hashlib.sha256()])
        return self._units[unit]

    def add(self, unit: int, frame: int, bbox: tuple[int, int, int, int], digest: bytes,
            plaintext: bytes) -> int:
        """Encrypt one region's plaintext; returns the entry's size in bytes."""
        if len(digest) != DIGEST_LEN:
            raise ValueError("digest must be 32 bytes")
        keys, state = self._keys(int(unit))
        bbox = tuple(int(v) for v in bbox)
        nonce = secrets.token_bytes(NONCE_LEN)
        fixed = Entry(int(unit), int(frame), bbox, digest, nonce, b"").fixed_bytes()
        ct = encrypt(keys.enc, nonce, plaintext, self.header_hash + fixed)
        if len(ct) > max_ciphertext_len(bbox, self.header.channels, self.header.bits):
            raise ValueError(f"region of unit {unit} is larger than its box allows")
        entry = Entry(int(unit), int(frame), bbox, digest, nonce, ct)
        record = entry.to_bytes()
        self.sink.write(record)
        self._all.update(record)
        state[0] += 1
        state[1].update(record)
        self.size += len(record)
        self.n_entries += 1
        return len(record)

    def finish(self, binding: bytes = ZERO_DIGEST) -> bytes | None:
        """Write the trailer; the whole payload when the sink is the Sealer's own."""
        if len(binding) != DIGEST_LEN:
            raise ValueError("binding must be 32 bytes")
        units = []
        for unit in sorted(self._units):
            keys, (n, h) = self._units[unit]
            tag = _unit_tag(keys, self.header_hash, unit, n, h.digest(), binding)
            units.append(UnitInfo(unit, n, keys.kcv, tag))
        body = Trailer(tuple(units), binding, b"").body_bytes()
        mkey = master_mac_key(self._master, self.header.payload_id)
        tail = body + _master_tag(mkey, self.header_hash, self._all.digest(), body) + END
        self.sink.write(tail)
        self.size += len(tail)
        if self._own_sink:
            return self.sink.getvalue()  # type: ignore[attr-defined]
        return None


class Opener:
    """Check a key against a parsed payload and decrypt the entries it opens.

    On creation: the key check values say whether the key fits at all
    (:class:`WrongKeyError` otherwise); then every opened unit's tag is checked,
    and with the master key the payload-wide tag (:class:`TamperError` when
    anything was modified). ``binding`` (video) must match the trailer's.

    Attributes:
        units: unit ids this key opens (sorted).
        master: True when opened with the master key (every unit).
    """

    def __init__(self, payload: Payload, key: MasterKey | FaceKey, name: str):
        self.payload = payload
        self.name = name
        header = payload.header
        self.header_hash = hashlib.sha256(payload.header_bytes).digest()
        self.master = isinstance(key, MasterKey)
        if isinstance(key, FaceKey):
            if key.payload_id != header.payload_id or key.kind != header.kind:
                raise WrongKeyError(f"{name}: this face key belongs to another "
                                    f"{'video' if key.kind == 2 else 'image'}'s payload")
            if key.unit not in payload.units:
                raise WrongKeyError(f"{name}: the payload has no face {key.unit}")
            candidates = {key.unit: UnitKeys(key.key)}
            master = None
        else:
            master = key.master_for(header)
            candidates = {u: UnitKeys(unit_key(master, header.payload_id, header.kind, u))
                          for u in payload.units}
        self._keys = {u: k for u, k in candidates.items() if same(k.kcv, payload.units[u].kcv)}
        n_faces = len(payload.face_units)
        if not self._keys:
            what = "face key" if not self.master else f"{key.source}"
            raise WrongKeyError(f"{name}: wrong {what}: it opens none of the {n_faces} face(s) "
                                "in this payload")
        if self.master and len(self._keys) != len(candidates):
            raise TamperError(f"{name}: the payload was modified (key check values do not match)")
        hashes = {u: hashlib.sha256() for u in self._keys}
        all_hash = hashlib.sha256() if self.master else None
        for entry in payload.entries:
            h = hashes.get(entry.unit)
            if h is not None:
                _entry_hash_update(h, entry)
            if all_hash is not None:
                _entry_hash_update(all_hash, entry)
        binding = payload.trailer.binding
        for u, keys in self._keys.items():
            info = payload.units[u]
            tag = _unit_tag(keys, self.header_hash, u, info.n_entries, hashes[u].digest(), binding)
            if not same(tag, info.tag):
                raise TamperError(f"{name}: {_unit_name(u)}: the payload was modified or damaged "
                                  "(authentication failed)")
        if master is not None:
            mkey = master_mac_key(master, header.payload_id)
            body = payload.trailer.body_bytes()
            if not same(_master_tag(mkey, self.header_hash, all_hash.digest(), body),  # type: ignore[union-attr]
                        payload.trailer.master_tag):
                raise TamperError(f"{name}: the payload was modified or damaged (authentication failed)")
        self.units = sorted(self._keys)

    def opens(self, unit: int) -> bool:
        return unit in self._keys

    def open(self, entry: Entry) -> bytes:
        """The plaintext of one entry (:class:`TamperError` if it fails authentication)."""
        keys = self._keys.get(entry.unit)
        if keys is None:
            raise WrongKeyError(f"{self.name}: this key does not open {_unit_name(entry.unit)}")
        return decrypt(keys.enc, entry.nonce, entry.ciphertext, self.header_hash + entry.fixed_bytes(),
                       f"{self.name}: {_unit_name(entry.unit)}")

    def __repr__(self) -> str:
        return f"Opener(units={self.units}, <redacted>)"


def _unit_name(unit: int) -> str:
    return "the whole-image check" if unit == 0xFFFFFFFF else f"face {unit}"


__all__ = ["Sealer", "Opener", "ZERO_DIGEST"]
