"""On-disk cache of attacker embeddings (embeddings of originals are computed
once per machine, and an interrupted evaluation resumes where it stopped).

A key is ``(image digest, attacker tag, mode, landmarks)``:

* image digest: sha256 of the file's bytes, or of an array's dtype, shape and
  bytes (so a re-encoded or edited image never hits a stale entry);
* attacker tag: ``Attacker.cache_tag`` (name + version of its preprocessing);
* mode: ``"naive"`` (attacker's own detection) or ``"aligned"`` (given landmarks);
* landmarks: rounded to 0.01 px, only for ``"aligned"``.

The value is a float32 vector, or a failure-to-acquire marker (naive mode found
no face), returned as ``None``. A miss returns :data:`MISSING`.

Storage is one SQLite file (``cache_dir()/embeddings.sqlite`` by default) in WAL
mode: many processes/threads may read while one writes; each ``put`` is its own
committed transaction, so a killed run keeps everything it finished. A file that
is not a valid database is moved aside (``*.corrupt``) and a fresh cache started.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

import numpy as np

MODES = ("naive", "aligned")
ImageLike = Union[str, os.PathLike, np.ndarray]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


@dataclass(frozen=True)
class CacheKey:
    image: str
    attacker: str
    mode: str
    landmarks: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def __str__(self) -> str:
        return f"{self.image}|{self.attacker}|{self.mode}|{self.landmarks}"


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "file:" + h.hexdigest()


def array_digest(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return "arr:" + h.hexdigest()


def image_digest(image: ImageLike) -> str:
    """Digest of an image file (its bytes) or array (dtype, shape, bytes)."""
    if isinstance(image, np.ndarray):
        return array_digest(image)
    return file_digest(image)


def landmarks_token(landmarks: np.ndarray | None) -> str:
    if landmarks is None:
        return ""
    pts = np.asarray(landmarks, np.float64).reshape(-1)
    return ",".join(f"{v:.2f}" for v in np.round(pts, 2) + 0.0)  # +0.0: no "-0.00"


def make_key(attacker, image: ImageLike | str, mode: str,
             landmarks: np.ndarray | None = None) -> CacheKey:
    """Key for ``attacker`` (instance or tag string) on ``image`` (path, array
    or an existing digest string starting with ``file:``/``arr:``)."""
    tag = attacker if isinstance(attacker, str) else attacker.cache_tag
    if isinstance(image, str) and image.startswith(("file:", "arr:")):
        digest = image
    else:
        digest = image_digest(image)
    if mode == "aligned" and landmarks is None:
        raise ValueError("aligned mode needs landmarks")
    return CacheKey(digest, tag, mode, landmarks_token(landmarks) if mode == "aligned" else "")


class EmbeddingCache:
    """Persistent ``CacheKey -> vector | None`` map (see module docstring)."""

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 60.0):
        if path is None:
            from ..config import cache_dir

            path = cache_dir() / "embeddings.sqlite"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = float(timeout)
        self._local = threading.local()
        self._open_lock = threading.Lock()
        self._conn()  # create / validate now, so errors surface early

    # connection handling ----------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = %d" % int(self.timeout * 1000))
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:  # e.g. another process holds a lock: keep default
            pass
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " k TEXT PRIMARY KEY, dim INTEGER NOT NULL, vec BLOB, created REAL)")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        with self._open_lock:
            try:
                conn = self._connect()
                conn.execute("SELECT count(*) FROM embeddings LIMIT 1").fetchone()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                aside = self.path.with_name(f"{self.path.name}.{int(time.time())}.corrupt")
                warnings.warn(f"embedding cache {self.path} is unreadable ({exc}); "
                              f"moved to {aside.name} and starting a new one", stacklevel=3)
                for suffix in ("", "-wal", "-shm"):
                    p = Path(str(self.path) + suffix)
                    if p.exists():
                        os.replace(p, Path(str(aside) + suffix))
                conn = self._connect()
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # access ---------------------------------------------------------------------
    @staticmethod
    def _decode(dim: int, blob: bytes | None) -> np.ndarray | None:
        if blob is None:
            return None
        vec = np.frombuffer(blob, dtype="<f4")
        if vec.size != dim:
            raise ValueError("corrupt cache entry")
        return vec.astype(np.float32)

    def get(self, key: CacheKey, default=MISSING):
        """The vector, ``None`` for a cached failure to acquire, else ``default``."""
        row = self._conn().execute(
            "SELECT dim, vec FROM embeddings WHERE k = ?", (str(key),)).fetchone()
        if row is None:
            return default
        try:
            return self._decode(*row)
        except ValueError:
            return default

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, np.ndarray | None]:
        """Hits only (misses are absent from the result)."""
        keys = list(keys)
        out: dict[CacheKey, np.ndarray | None] = {}
        by_str = {str(k): k for k in keys}
        conn = self._conn()
        names = list(by_str)
        for i in range(0, len(names), 500):
            chunk = names[i:i + 500]
            rows = conn.execute(
                f"SELECT k, dim, vec FROM embeddings WHERE k IN ({','.join('?' * len(chunk))})",
                chunk).fetchall()
            for k, dim, blob in rows:
                try:
                    out[by_str[k]] = self._decode(dim, blob)
                except ValueError:
                    pass
        return out

    def put(self, key: CacheKey, vec: np.ndarray | None) -> None:
        self.put_many([(key, vec)])

    def put_many(self, items: Iterable[tuple[CacheKey, np.ndarray | None]]) -> None:
        rows = []
        now = time.time()
        for key, vec in items:
            if vec is None:
                rows.append((str(key), 0, None, now))
            else:
                v = np.asarray(vec, dtype="<f4").reshape(-1)
                if not np.all(np.isfinite(v)):
                    raise ValueError(f"refusing to cache a non-finite embedding for {key}")
                rows.append((str(key), int(v.size), v.tobytes(), now))
        if not rows:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def __contains__(self, key: CacheKey) -> bool:
        return self._conn().execute(
            "SELECT 1 FROM embeddings WHERE k = ?", (str(key),)).fetchone() is not None

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM embeddings").fetchone()[0])

    def clear(self) -> None:
        self._conn().execute("DELETE FROM embeddings")


_default_cache: EmbeddingCache | None = None
_default_lock = threading.Lock()


def default_cache() -> EmbeddingCache:
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            _default_cache = EmbeddingCache()
        return _default_cache


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 array of an image file (EXIF orientation applied)."""
    import cv2

    from ..errors import InputError

    bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def cached_embed(attacker, image: ImageLike, mode: str = "naive",
                 landmarks: np.ndarray | None = None,
                 cache: EmbeddingCache | None = None) -> np.ndarray | None:
    """``attacker``'s embedding of ``image`` (path or RGB array), from the cache
    when present. ``mode="naive"`` uses the attacker's own detection (``None``
    on failure to acquire, which is cached too); ``mode="aligned"`` embeds at
    ``landmarks``."""
    cache = cache if cache is not None else default_cache()
    key = make_key(attacker, image, mode, landmarks)
    hit = cache.get(key)
    if hit is not MISSING:
        return hit
    rgb = image if isinstance(image, np.ndarray) else read_rgb(image)
    vec = attacker.embed_naive(rgb) if mode == "naive" else attacker.embed_at(rgb, landmarks)
    cache.put(key, vec)
    return vec
