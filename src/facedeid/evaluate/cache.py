"""Everything ``facedeid evaluate`` (and the attacker benchmark) caches on disk.

Two SQLite files, one implementation (:class:`SQLiteFile`: WAL mode, a
connection per thread and process, one committed transaction per write, an
unreadable file moved aside as ``*.corrupt`` and a fresh one started):

* :class:`EmbeddingCache` (``embeddings.sqlite``): attacker embeddings of
  *image files*, shared by every tool of the project. A key is
  ``(image digest, attacker tag, mode, landmarks)``:

  - image digest: sha256 of the file's bytes, or of an array's dtype, shape and
    bytes (so a re-encoded or edited image never hits a stale entry);
  - attacker tag: ``Attacker.cache_tag`` (name + version of its preprocessing);
  - mode: ``"naive"`` (attacker's own detection) or ``"aligned"`` (given landmarks);
  - landmarks: rounded to 0.01 px, only for ``"aligned"``.

  The value is a float32 vector, or a failure-to-acquire marker (naive mode
  found no face), returned as ``None``. A miss returns :data:`MISSING`.
* :class:`RunStore` (``store.sqlite``): the other intermediates of a run, as
  tagged values (float32 vector, failure to acquire, or JSON).

:class:`RunCache` is an evaluation run's view of both: which entry holds an
original's faces, 68-point landmarks and template landmarks, its embeddings,
and a de-identified image's embeddings and utility numbers. Its keys name
everything the value depends on (image digest, detector configuration, method
configuration, attacker tag, :data:`CACHE_VERSION`), so a finished chunk is
never recomputed and a changed setting never reads a stale value.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np

MODES = ("naive", "aligned")
#: bump to invalidate every cached intermediate of evaluation runs
CACHE_VERSION = "1"
ImageLike = Union[str, os.PathLike, np.ndarray]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


# =================================================================== digests and keys
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


def attacker_tag(att) -> str:
    """The cache tag of an attacker (its ``cache_tag``, else name + class)."""
    tag = getattr(att, "cache_tag", None)
    return str(tag) if tag else f"{att.name}-{type(att).__qualname__}"


def config_digest(obj: Any, n: int = 16) -> str:
    """Short stable hash of a JSON-able configuration (cache key component)."""
    from .results import json_safe

    return hashlib.sha1(json.dumps(json_safe(obj), sort_keys=True).encode()).hexdigest()[:n]


# =================================================================== SQLite files
class SQLiteFile:
    """One SQLite table ``(k TEXT PRIMARY KEY, ...)`` in one file, safe to share.

    WAL mode: many processes/threads read while one writes. A connection per
    thread and per process (connections do not survive ``fork``). Each write is
    one committed transaction, so a killed run keeps everything it finished. A
    file that is not a valid database is moved aside (``*.corrupt``) with a
    warning and a fresh one started (everything in it can be recomputed).
    """

    table = ""
    schema = ""

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = float(timeout)
        self._local = threading.local()
        self._open_lock = threading.Lock()
        self._conn()  # create / validate now, so errors surface early

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = %d" % int(self.timeout * 1000))
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:  # e.g. another process holds a lock: keep default
            pass
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({self.schema})")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        with self._open_lock:
            try:
                conn = self._connect()
                conn.execute(f"SELECT count(*) FROM {self.table} LIMIT 1").fetchone()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                aside = self.path.with_name(f"{self.path.name}.{int(time.time())}.corrupt")
                warnings.warn(f"cache {self.path} is unreadable ({exc}); "
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

    def _select(self, columns: str, keys: Iterable[str]) -> Iterator[tuple]:
        """Rows ``(k, *columns)`` of the keys present (500 keys per query)."""
        names = list(dict.fromkeys(keys))
        conn = self._conn()
        for i in range(0, len(names), 500):
            chunk = names[i:i + 500]
            yield from conn.execute(
                f"SELECT k{', ' + columns if columns else ''} FROM {self.table} "
                f"WHERE k IN ({','.join('?' * len(chunk))})", chunk)

    def _write(self, rows: Sequence[tuple]) -> None:
        """``INSERT OR REPLACE`` the rows in one transaction."""
        if not rows:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES "
                             f"({','.join('?' * len(rows[0]))})", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def has_many(self, keys: Iterable[str]) -> set[str]:
        """The keys present."""
        return {row[0] for row in self._select("", (str(k) for k in keys))}

    def __contains__(self, key) -> bool:
        return bool(self.has_many([str(key)]))

    def __len__(self) -> int:
        return int(self._conn().execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])

    def clear(self) -> None:
        self._conn().execute(f"DELETE FROM {self.table}")


class EmbeddingCache(SQLiteFile):
    """Persistent ``CacheKey -> vector | None`` map (see the module docstring)."""

    table = "embeddings"
    schema = "k TEXT PRIMARY KEY, dim INTEGER NOT NULL, vec BLOB, created REAL"

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 60.0):
        if path is None:
            from ..config import cache_dir

            path = cache_dir() / "embeddings.sqlite"
        super().__init__(path, timeout)

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
        return self.get_many([key]).get(key, default)

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, np.ndarray | None]:
        """Hits only (misses, and unreadable entries, are absent from the result)."""
        by_str = {str(k): k for k in keys}
        out: dict[CacheKey, np.ndarray | None] = {}
        for k, dim, blob in self._select("dim, vec", by_str):
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
        self._write(rows)


class RunStore(SQLiteFile):
    """Persistent ``str -> value`` map; a value is a float32 vector, ``None``
    (failure to acquire) or anything JSON can hold (stored tagged: ``V``, ``N``, ``J``)."""

    table = "kv"
    schema = "k TEXT PRIMARY KEY, v BLOB NOT NULL"

    @staticmethod
    def encode(value: Any) -> bytes:
        if value is None:
            return b"N"
        if isinstance(value, np.ndarray):
            return b"V" + np.ascontiguousarray(value, dtype=np.float32).ravel().tobytes()
        from .results import json_safe

        return b"J" + json.dumps(json_safe(value), separators=(",", ":")).encode()

    @staticmethod
    def decode(blob: bytes) -> Any:
        tag, body = bytes(blob[:1]), bytes(blob[1:])
        if tag == b"N":
            return None
        if tag == b"V":
            return np.frombuffer(body, dtype=np.float32).copy()
        if tag == b"J":
            return json.loads(body.decode())
        raise ValueError(f"corrupt cache entry (tag {tag!r})")

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Hits only; unreadable entries count as misses."""
        out: dict[str, Any] = {}
        for k, v in self._select("v", keys):
            try:
                out[k] = self.decode(v)
            except (ValueError, UnicodeDecodeError):
                pass
        return out

    def put_many(self, items: dict[str, Any]) -> None:
        self._write([(k, self.encode(v)) for k, v in items.items()])


# =================================================================== one run's entries
class RunCache:
    """The cached intermediates of an evaluation run, in ``folder``.

    Originals: their info (faces found by the project's detector, 68-point
    landmarks, template landmarks and where they came from) in the run store,
    their embeddings in the shared :class:`EmbeddingCache` (mode ``naive``, and
    ``aligned`` at the template landmarks), so that every tool reuses them.
    De-identified images: embeddings and utility numbers in the run store,
    keyed by the method configuration's digest ``mkey``.

    Args:
        folder: holds ``store.sqlite`` and ``embeddings.sqlite``.
        det_key: digest of the detector configuration (part of the originals' keys).
        tags: attacker cache tags, in the run's attacker order (index ``ai``).
    """

    def __init__(self, folder: str | os.PathLike, det_key: str, tags: Sequence[str]):
        folder = Path(folder)
        self.det = det_key
        self.tags = list(tags)
        self.store = RunStore(folder / "store.sqlite")
        self.embeddings = EmbeddingCache(folder / "embeddings.sqlite")

    def close(self) -> None:
        self.store.close()
        self.embeddings.close()

    # ---- keys (their text is the on-disk format: changing it drops every cache)
    def _info_keys(self, dg: str) -> tuple[str, str, str]:
        return tuple(f"o|{dg}|{what}|{self.det}|{CACHE_VERSION}"  # type: ignore[return-value]
                     for what in ("faces", "lm68", "tmpl"))

    def _emb_key(self, ai: int, dg: str, mode: str, tmpl) -> CacheKey | None:
        if mode == "naive":
            return make_key(self.tags[ai], dg, "naive")
        return None if tmpl is None else make_key(self.tags[ai], dg, "aligned", np.asarray(tmpl))

    @staticmethod
    def deid_key(mkey: str, dg: str, tag: str, mode: str) -> str:
        return f"d|{mkey}|{dg}|emb|{tag}|{mode}"

    @staticmethod
    def util_key(mkey: str, dg: str) -> str:
        return f"d|{mkey}|{dg}|util|2"      # 2: per-face fallback counts

    # ---- originals
    def load_originals(self, dgs: Sequence[str]) -> list[dict | None]:
        """Per digest ``{"faces", "lm68", "tmpl", "tmpl_source"}``, or ``None`` if not cached."""
        got = self.store.get_many(k for dg in dgs for k in self._info_keys(dg))
        out: list[dict | None] = []
        for dg in dgs:
            kf, kl, kt = self._info_keys(dg)
            if not all(k in got for k in (kf, kl, kt)):
                out.append(None)
                continue
            out.append({"faces": got[kf], "lm68": got[kl]["lm68"], "tmpl": got[kt]["pts"],
                        "tmpl_source": got[kt]["source"]})
        return out

    def missing_embeddings(self, dg: str, info: dict, alignments: Sequence[str]) -> list[list]:
        """``[[attacker_index, mode], ...]`` of an original not in the embedding cache."""
        wanted = {}
        for ai in range(len(self.tags)):
            for mode in alignments:
                key = self._emb_key(ai, dg, mode, info["tmpl"])
                if key is not None:
                    wanted[key] = [ai, mode]
        got = self.embeddings.get_many(list(wanted))
        return [v for k, v in wanted.items() if k not in got]

    def put_originals(self, done: Sequence[tuple[str, dict]]) -> None:
        """Store finished originals ``(digest, worker result)``: embeddings first,
        then the info of those computed now (``result["new"]``)."""
        rows, items = [], {}
        for dg, r in done:
            for (ai, mode), v in r["emb"].items():
                key = self._emb_key(ai, dg, mode, r["tmpl"])
                if key is not None:
                    rows.append((key, v))
            if r.get("new"):
                kf, kl, kt = self._info_keys(dg)
                items.update({kf: r["faces"], kl: {"lm68": r["lm68"]},
                              kt: {"pts": r["tmpl"], "source": r["tmpl_source"]}})
        self.embeddings.put_many(rows)
        self.store.put_many(items)

    def original_vectors(self, ai: int, mode: str, dgs: Sequence[str],
                         infos: Sequence[dict]) -> list[np.ndarray | None]:
        keys = [self._emb_key(ai, dg, mode, info["tmpl"]) for dg, info in zip(dgs, infos)]
        got = self.embeddings.get_many([k for k in keys if k is not None])
        return [None if k is None else got.get(k) for k in keys]

    # ---- de-identified
    def deid_missing(self, mkey: str, wanted: Sequence[tuple[str, bool]],
                     alignments: Sequence[str]) -> dict[str, tuple[list[list], bool]]:
        """What is not cached of the de-identified images ``wanted = [(digest, needs
        utility), ...]``: ``{digest: ([[attacker_index, mode], ...], utility missing)}``
        for the digests with something missing (so a run that adds an attacker, or
        whose attacker's version changed, computes only that attacker)."""
        keys = {}
        for dg, util in wanted:
            emb = {self.deid_key(mkey, dg, t, m): [ai, m]
                   for ai, t in enumerate(self.tags) for m in alignments}
            keys[dg] = (emb, self.util_key(mkey, dg) if util else None)
        have = self.store.has_many(k for emb, uk in keys.values()
                                   for k in list(emb) + ([uk] if uk else []))
        out = {}
        for dg, (emb, uk) in keys.items():
            need = [v for k, v in emb.items() if k not in have]
            util_missing = uk is not None and uk not in have
            if need or util_missing:
                out[dg] = (need, util_missing)
        return out

    def put_deidentified(self, mkey: str, done: Sequence[tuple[str, dict]]) -> None:
        items: dict[str, Any] = {}
        for dg, r in done:
            for (ai, mode), v in r["emb"].items():
                items[self.deid_key(mkey, dg, self.tags[ai], mode)] = v
            if r.get("util") is not None:
                items[self.util_key(mkey, dg)] = r["util"]
        self.store.put_many(items)

    def deid_vectors(self, mkey: str, ai: int, mode: str, dgs: Sequence[str],
                     rows: Iterable[int]) -> list[np.ndarray | None]:
        """Embeddings of the de-identified images ``rows`` (others, and FTA, are ``None``)."""
        wanted = {int(i) for i in rows}
        keys = [self.deid_key(mkey, dg, self.tags[ai], mode) if i in wanted else None
                for i, dg in enumerate(dgs)]
        got = self.store.get_many(k for k in keys if k is not None)
        return [got.get(k) if k is not None else None for k in keys]

    def load_utility(self, mkey: str, dgs: Sequence[str]) -> list[dict]:
        got = self.store.get_many(self.util_key(mkey, dg) for dg in dgs)
        return [got[self.util_key(mkey, dg)] for dg in dgs if self.util_key(mkey, dg) in got]


# =================================================================== convenience
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
