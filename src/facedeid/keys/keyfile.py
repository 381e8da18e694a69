"""Where keys come from: key files, face keys, passphrases.

* **Master key file** (``facedeid keygen -o KEYFILE``): exactly 32 random bytes,
  created with mode 0600; an existing file is never overwritten.
* **Face key file** (``facedeid keygen --derive IMAGE --face ID``): the key of one
  face (or video track) of one payload, for an investigator::

      "FDEIDFK1" | payload_id 16 | kind u8 | unit u32 | key 32      (61 bytes)

* **Passphrase**: from a file (``--passphrase-file``, first line), an environment
  variable named by ``--passphrase-env``, or a prompt (``--ask-passphrase``);
  never from the command line. The master key is scrypt(passphrase) with a random
  salt and the cost stored in each payload.

No object here shows key bytes or the passphrase in its ``repr``, and no message
ever holds them.
"""

from __future__ import annotations

import os
import secrets
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .crypto import KEY_LEN, scrypt_master, unit_key
from .errors import KeyFileError, WrongKeyError
from .payload import ID_LEN, KINDS, SALT_LEN, Header, ScryptParams

FACE_KEY_MAGIC = b"FDEIDFK1"
FACE_KEY_LEN = len(FACE_KEY_MAGIC) + ID_LEN + 1 + 4 + KEY_LEN
#: scrypt cost of new payloads: N = 2**17, r = 8, p = 1 (128 MiB, about 0.4 s here).
DEFAULT_SCRYPT = (17, 8, 1)
#: Shorter passphrases are accepted with a warning.
MIN_PASSPHRASE_CHARS = 12
_MAX_PASSPHRASE_BYTES = 4096


@dataclass(eq=False, repr=False)
class MasterKey:
    """A master key: the bytes of a key file, or a passphrase (derived per payload).

    Create with :meth:`from_key_file`, :meth:`from_bytes` or :meth:`from_passphrase`.
    A passphrase key draws one random salt when first used for writing and reuses
    it for the whole run (one scrypt per run, not per image); every payload
    stores the salt and the cost.
    """

    source: str                                   # "key file" | "passphrase"
    _key: bytes | None = None
    _passphrase: bytes | None = None
    scrypt: tuple[int, int, int] = DEFAULT_SCRYPT
    _salt: bytes | None = None
    _cache: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"MasterKey(source={self.source!r}, <redacted>)"

    @classmethod
    def from_bytes(cls, key: bytes) -> "MasterKey":
        if len(key) != KEY_LEN:
            raise KeyFileError(f"a master key has {KEY_LEN} bytes, got {len(key)}")
        return cls(source="key file", _key=bytes(key))

    @classmethod
    def from_key_file(cls, path: str | Path) -> "MasterKey":
        key = load_key(path)
        if not isinstance(key, MasterKey):
            raise KeyFileError(f"{path}: this is a face key (one face of one image); "
                               "writing a payload needs the master key file")
        return key

    @classmethod
    def from_passphrase(cls, passphrase: str | bytes, *, scrypt: tuple[int, int, int] = DEFAULT_SCRYPT
                        ) -> "MasterKey":
        raw = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
        if not raw:
            raise KeyFileError("the passphrase is empty")
        if len(raw) > _MAX_PASSPHRASE_BYTES:
            raise KeyFileError(f"the passphrase is longer than {_MAX_PASSPHRASE_BYTES} bytes")
        ScryptParams(scrypt[0], scrypt[1], scrypt[2], b"\0" * SALT_LEN).check()
        return cls(source="passphrase", _passphrase=raw, scrypt=tuple(scrypt))

    @property
    def is_passphrase(self) -> bool:
        return self._passphrase is not None

    def new_kdf(self) -> ScryptParams | None:
        """The KDF block for a new payload (None for a key file)."""
        if not self.is_passphrase:
            return None
        if self._salt is None:
            self._salt = secrets.token_bytes(SALT_LEN)
        return ScryptParams(self.scrypt[0], self.scrypt[1], self.scrypt[2], self._salt)

    def master_for(self, header: Header) -> bytes:
        """The 32-byte master key of a payload with this header."""
        if not self.is_passphrase:
            if header.kdf is not None:
                raise WrongKeyError("this payload was written with a passphrase, not a key file: "
                                    "give --passphrase-file, --passphrase-env or --ask-passphrase")
            return self._key  # type: ignore[return-value]
        if header.kdf is None:
            raise WrongKeyError("this payload was written with a key file, not a passphrase: "
                                "give --key-file")
        k = (header.kdf.log2_n, header.kdf.r, header.kdf.p, header.kdf.salt)
        if k not in self._cache:
            self._cache[k] = scrypt_master(self._passphrase, header.kdf)  # type: ignore[arg-type]
        return self._cache[k]

    def unit_key(self, header: Header, unit: int) -> bytes:
        return unit_key(self.master_for(header), header.payload_id, header.kind, unit)


@dataclass(frozen=True, eq=False, repr=False)
class FaceKey:
    """The key of one unit (face or track) of one payload."""

    payload_id: bytes
    kind: int
    unit: int
    key: bytes
    source: str = "face key"

    def __repr__(self) -> str:
        return f"FaceKey(unit={self.unit}, <redacted>)"

    def to_bytes(self) -> bytes:
        return FACE_KEY_MAGIC + self.payload_id + struct.pack(">BI", self.kind, self.unit) + self.key

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "face key") -> "FaceKey":
        if len(data) != FACE_KEY_LEN or not data.startswith(FACE_KEY_MAGIC):
            raise KeyFileError(f"{name}: not a facedeid face key file")
        pos = len(FACE_KEY_MAGIC)
        pid = data[pos:pos + ID_LEN]
        kind, unit = struct.unpack(">BI", data[pos + ID_LEN:pos + ID_LEN + 5])
        if kind not in KINDS:
            raise KeyFileError(f"{name}: not a facedeid face key file (bad kind)")
        return cls(payload_id=pid, kind=kind, unit=unit, key=data[pos + ID_LEN + 5:])


# ---------------------------------------------------------------- files
def _read_small(path: str | Path, limit: int, what: str) -> bytes:
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read {what}: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: {what} is not a regular file")
    if st.st_size > limit:
        raise KeyFileError(f"{path}: too large for a {what} ({st.st_size} bytes)")
    if st.st_mode & 0o077:
        import logging

        logging.getLogger("facedeid").warning(
            "%s: %s is readable by other users (mode %o); chmod 600 it", path, what,
            stat.S_IMODE(st.st_mode))
    try:
        return p.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read {what}: {exc.strerror or type(exc).__name__}") from None


def load_key(path: str | Path) -> MasterKey | FaceKey:
    """A master key file (32 raw bytes) or a face key file, told apart by content."""
    data = _read_small(path, 4096, "key file")
    if len(data) == KEY_LEN:
        return MasterKey.from_bytes(data)
    if data.startswith(FACE_KEY_MAGIC):
        return FaceKey.from_bytes(data, str(path))
    raise KeyFileError(f"{path}: not a facedeid key file (a master key file holds {KEY_LEN} "
                       f"raw bytes from `facedeid keygen`; this file has {len(data)})")


def _create_exclusive(path: str | Path, data: bytes, what: str) -> Path:
    """Create ``path`` with mode 0600; refuse when it exists (never overwrite a key)."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        raise KeyFileError(f"{path}: exists already; a key file is never overwritten "
                           "(choose another name, or delete the old key deliberately)")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: exists already; a key file is never overwritten") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create {what}: {exc.strerror or type(exc).__name__}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(p, 0o600)
    except BaseException:
        try:
            p.unlink()
        except OSError:
            pass
        raise
    return p


def generate_key_file(path: str | Path) -> Path:
    """Write a new random 256-bit master key to ``path`` (mode 0600, never overwrites)."""
    return _create_exclusive(path, secrets.token_bytes(KEY_LEN), "key file")


def write_face_key(path: str | Path, key: FaceKey) -> Path:
    """Write a face key file (mode 0600, never overwrites)."""
    return _create_exclusive(path, key.to_bytes(), "face key file")


# ---------------------------------------------------------------- passphrases
def read_passphrase_file(path: str | Path) -> bytes:
    """The first line of a passphrase file (its line ending removed)."""
    data = _read_small(path, _MAX_PASSPHRASE_BYTES + 2, "passphrase file")
    line = data.split(b"\n", 1)[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        raise KeyFileError(f"{path}: the passphrase file's first line is empty")
    return line


def passphrase_from_env(name: str) -> bytes:
    """The passphrase held by environment variable ``name``."""
    value = os.environ.get(name)
    if not value:
        raise KeyFileError(f"environment variable {name} is not set or empty")
    return value.encode("utf-8")


def prompt_passphrase(confirm: bool) -> bytes:
    """Ask on the terminal (no echo); ``confirm`` asks twice."""
    import getpass

    first = getpass.getpass("facedeid passphrase: ")
    if confirm and getpass.getpass("facedeid passphrase (again): ") != first:
        raise KeyFileError("the two passphrases differ")
    if not first:
        raise KeyFileError("the passphrase is empty")
    return first.encode("utf-8")


def weak_passphrase(passphrase: bytes) -> bool:
    """True when shorter than :data:`MIN_PASSPHRASE_CHARS` characters."""
    return len(passphrase.decode("utf-8", "replace")) < MIN_PASSPHRASE_CHARS


__all__ = ["MasterKey", "FaceKey", "DEFAULT_SCRYPT", "load_key", "generate_key_file",
           "write_face_key", "read_passphrase_file", "passphrase_from_env", "prompt_passphrase",
           "weak_passphrase"]
