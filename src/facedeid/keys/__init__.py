"""Reversible de-identification: the original face pixels, encrypted, travel with the output.

>>> from facedeid.keys import MasterKey, generate_key_file            # doctest: +SKIP
>>> generate_key_file("case.key")                                      # 32 random bytes, mode 0600
>>> key = MasterKey.from_key_file("case.key")
>>> written, info = write_reversible_image("out.png", result, loaded, key)
>>> pixels, report = recover_image("out.png", key, dst="back.png")
>>> report.exact                                                        # "pixel-exact" | "regions"

Modules: :mod:`~facedeid.keys.payload` (binary format, strict parser),
:mod:`~facedeid.keys.crypto` (scrypt, HKDF, AES-256-GCM),
:mod:`~facedeid.keys.keyfile` (key files, face keys, passphrases),
:mod:`~facedeid.keys.pixels` (ownership, lossless packing, digests),
:mod:`~facedeid.keys.seal` (writing and opening payloads),
:mod:`~facedeid.keys.embed` (PNG chunk, JPEG APP15, sidecar),
:mod:`~facedeid.keys.image` and :mod:`~facedeid.keys.video` (the two media).
The format, key hierarchy and threat model are in ``docs/KEYS.md``.
"""

from .errors import KeyFileError, PayloadError, TamperError, WrongKeyError
from .keyfile import (
    FaceKey,
    MasterKey,
    generate_key_file,
    load_key,
    passphrase_from_env,
    prompt_passphrase,
    read_passphrase_file,
    write_face_key,
)
from .payload import parse_payload

__all__ = [
    "KeyFileError", "PayloadError", "TamperError", "WrongKeyError",
    "MasterKey", "FaceKey", "generate_key_file", "load_key", "write_face_key",
    "read_passphrase_file", "passphrase_from_env", "prompt_passphrase", "parse_payload",
]
