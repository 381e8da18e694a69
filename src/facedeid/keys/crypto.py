"""Key derivation and authenticated encryption (all from ``cryptography``).

Key hierarchy (``docs/KEYS.md``)::

    master   = the 32 bytes of a key file, or scrypt(passphrase, salt, N, r, p)
    unit key = HKDF-SHA256(master, salt=payload_id,
                           info="facedeid/keys/v1/unit" | kind u8 | unit u32)   (one face / track)
    enc key  = HKDF-Expand(unit key, "enc")     AES-256-GCM key of the unit's entries
    mac key  = HKDF-Expand(unit key, "mac")     HMAC-SHA256 key of the unit's trailer tag
    kcv      = HKDF-Expand(unit key, "kcv")[:16] key check value (says "wrong key" apart
                                                  from "tampered")
    master mac = HKDF-SHA256(master, salt=payload_id, info="facedeid/keys/v1/master-mac")

A unit key opens one face (or one video track) of one payload and nothing else:
it is bound to the payload's random id, so it is useless on any other image.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import TamperError
from .payload import KCV_LEN, ScryptParams

KEY_LEN = 32
_INFO = b"facedeid/keys/v1/"


def scrypt_master(passphrase: bytes, params: ScryptParams) -> bytes:
    """The 32-byte master key of a passphrase (scrypt, parameters checked first)."""
    params.check()
    kdf = Scrypt(salt=params.salt, length=KEY_LEN, n=1 << params.log2_n, r=params.r, p=params.p)
    return kdf.derive(passphrase)


def unit_key(master: bytes, payload_id: bytes, kind: int, unit: int) -> bytes:
    """The key of one unit (face id or track id) of one payload."""
    info = _INFO + b"unit" + struct.pack(">BI", kind, unit)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=payload_id, info=info).derive(master)


def master_mac_key(master: bytes, payload_id: bytes) -> bytes:
    """The key of the payload-wide authentication tag (master-key holders only)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=payload_id,
                info=_INFO + b"master-mac").derive(master)


def _expand(key: bytes, label: bytes) -> bytes:
    return HKDFExpand(algorithm=hashes.SHA256(), length=KEY_LEN, info=_INFO + label).derive(key)


class UnitKeys:
    """The encryption key, MAC key and key check value of one unit key."""

    __slots__ = ("enc", "mac", "kcv")

    def __init__(self, key: bytes):
        self.enc = _expand(key, b"enc")
        self.mac = _expand(key, b"mac")
        self.kcv = _expand(key, b"kcv")[:KCV_LEN]

    def __repr__(self) -> str:  # never show key bytes
        return "UnitKeys(<redacted>)"


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over the length-prefixed parts (unambiguous concatenation)."""
    h = hmac.new(key, digestmod=hashlib.sha256)
    for p in parts:
        h.update(struct.pack(">Q", len(p)))
        h.update(p)
    return h.digest()


def same(a: bytes, b: bytes) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a, b)


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM; returns ciphertext with the 16-byte tag appended."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, what: str) -> bytes:
    """AES-256-GCM decryption; :class:`TamperError` naming ``what`` when authentication fails."""
    try:
        return AESGCM(key).decrypt(nonce, bytes(ciphertext), aad)
    except InvalidTag:
        raise TamperError(f"{what}: authentication failed: the payload was modified or damaged") from None


__all__ = ["KEY_LEN", "scrypt_master", "unit_key", "master_mac_key", "UnitKeys", "mac", "same",
           "encrypt", "decrypt"]
