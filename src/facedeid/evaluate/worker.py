"""The image work of ``facedeid evaluate``: what one process does to a chunk of images.

:class:`Worker` holds one process's models (attackers, the project's detector,
the anonymizers) and does two tasks:

* ``originals``: the faces the project's detector finds (the ones to paint),
  their 68-point landmarks (utility), the *template* landmarks (the attackers'
  detector on the original, else the project detector's subject face) and every
  attacker's embedding of the original, naive and template-aligned;
* ``deidentify``: paint the faces with one method configuration, embed the
  result with every attacker and alignment, measure its utility.

Each image is decoded once per task; the attackers' detection runs once per
image for every attacker that uses it; where an image's naive landmarks are its
template landmarks, one embedding serves both modes. Every stage is timed
(CPU and wall seconds, counts: :class:`StageTimer`).

:class:`Pool` runs chunks in a process pool (``spawn``; one worker = inline).
Each worker process sizes its OpenCV / onnxruntime thread pools to its share of
the CPUs (``threads``), so 2 workers on 2 cores do not fight over 4 threads.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import FaceDeidError, InputError
from . import datasets as D
from .results import ALIGNMENTS
from .utility import image_utility

log = logging.getLogger("facedeid.evaluate")


@dataclass
class WorkerConfig:
    """What every worker process needs (pickled to the pool's processes)."""

    attackers: list[Any]
    alignments: list[str]
    detector: str | None
    detector_threshold: float | None
    shape: str
    mask_scale: float
    feather: float
    seed: int
    landmarks: bool
    threads: int = 1


def resolve_attacker(a: Any):
    """An attacker object from a name (objects pass through)."""
    if not isinstance(a, str):
        return a
    try:
        from .attackers import get_attacker
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise FaceDeidError(f"attackers are not available ({exc})") from None
    return get_attacker(a)


def shares_detection(att) -> bool:
    """True when the attacker's naive mode is the common detector + ``embed_at``."""
    from .attackers.base import Attacker

    return type(att).embed_naive is Attacker.embed_naive


def default_workers(cap: int = 4) -> int:
    """The CPUs this process may use, at most ``cap``."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, cap))


class StageTimer:
    """CPU seconds, wall seconds and item counts per named stage."""

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = {}

    @contextmanager
    def __call__(self, name: str, count: int = 0) -> Iterator[None]:
        c, w = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            s = self.stages.setdefault(name, [0.0, 0.0, 0])
            s[0] += time.process_time() - c
            s[1] += time.perf_counter() - w
            s[2] += count

    def take(self) -> dict[str, list[float]]:
        out, self.stages = self.stages, {}
        return out


def merge_stages(total: dict[str, list[float]], part: dict[str, list[float]]) -> None:
    for name, (cpu, wall, n) in part.items():
        s = total.setdefault(name, [0.0, 0.0, 0])
        s[0] += cpu
        s[1] += wall
        s[2] += n


class Worker:
    """Models of one process: attackers, the project's detector, anonymizers."""

    def __init__(self, cfg: WorkerConfig):
        from ..pipeline import Anonymizer

        self.cfg = cfg
        self.attackers = [resolve_attacker(a) for a in cfg.attackers]
        for att in self.attackers:  # onnxruntime: one pool per worker, sized to its share
            if hasattr(att, "threads") and getattr(att, "threads", None) is None:
                att.threads = cfg.threads
        self.base = Anonymizer(method="blackout", detector=cfg.detector,
                               threshold=cfg.detector_threshold)
        self._anons: dict[str, Any] = {}
        self.timer = StageTimer()

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

    def _load(self, path: str) -> np.ndarray:
        with self.timer("decode", 1):
            return D.load_rgb(path)

    def _landmarks5(self, images: list[np.ndarray]) -> list:
        from .attackers.detection import attacker_landmarks5

        with self.timer("attacker_detection", len(images)):
            return [attacker_landmarks5(im) for im in images]

    def _embed_many(self, att, images: list[np.ndarray], pts: list) -> list:
        idx = [i for i, p in enumerate(pts) if p is not None]
        out: list = [None] * len(images)
        if idx:
            with self.timer(f"embed:{att.name}", len(idx)):
                vecs = att.embed_at_many([images[i] for i in idx],
                                         [np.asarray(pts[i]) for i in idx])
            for i, v in zip(idx, vecs):
                out[i] = _vec(v)
        return out

    def _embed(self, images: list[np.ndarray], own: list | None, tmpl: list,
               need: set[tuple[int, str]] | None = None) -> dict[tuple[int, str], list]:
        """``{(attacker_index, mode): [vec|None per image]}``.

        ``own``: the attackers' detection on these images if already known (else run
        here, once, for every attacker that uses the shared detector); ``tmpl``: the
        template landmarks. Where an attacker's naive landmarks equal the template
        ones, the template embedding is the naive one (not computed twice).
        """
        out: dict[tuple[int, str], list] = {}
        n = len(images)
        det5 = own
        for ai, att in enumerate(self.attackers):
            shared = shares_detection(att)
            if need is not None and not any((ai, m) in need for m in ALIGNMENTS):
                continue
            if "naive" in self.cfg.alignments and (need is None or (ai, "naive") in need
                                                   or (ai, "template") in need and shared):
                if shared:
                    if det5 is None:
                        det5 = self._landmarks5(images)
                    out[(ai, "naive")] = self._embed_many(att, images, det5)
                else:
                    with self.timer(f"embed:{att.name}", n):
                        out[(ai, "naive")] = [_vec(att.embed_naive(im)) for im in images]
            if "template" in self.cfg.alignments and (need is None or (ai, "template") in need):
                if shared and (ai, "naive") in out:
                    same = [det5[i] is not None and tmpl[i] is not None
                            and np.array_equal(np.asarray(det5[i]), np.asarray(tmpl[i]))
                            for i in range(n)]
                    vecs = self._embed_many(att, images, [None if same[i] else tmpl[i]
                                                          for i in range(n)])
                    out[(ai, "template")] = [out[(ai, "naive")][i] if same[i] else vecs[i]
                                             for i in range(n)]
                else:
                    out[(ai, "template")] = self._embed_many(att, images, tmpl)
        return out

    # ---- tasks
    def originals(self, items: list[dict]) -> list[dict]:
        """Per item ``{"path", "info": None | cached info, "need": [[ai, mode], ...]}``:
        the info (faces, 68 points, template landmarks) when not cached, and the
        embeddings listed in ``need`` (all of them when the info is new)."""
        images, results = [], []
        need: set[tuple[int, str]] = set()
        for it in items:
            rgb = self._load(it["path"])
            info = it.get("info")
            if info is None:
                with self.timer("faces", 1):
                    faces = self.base.detect(rgb)
                lm68 = None
                if self.cfg.landmarks:
                    lm68 = []
                    with self.timer("landmarks68", len(faces)):
                        for f in faces:
                            try:
                                lm68.append(self._predict68(rgb, f).tolist())
                            except Exception:  # the predictor cannot handle this face
                                lm68.append(None)
                pts = self._landmarks5([rgb])[0]
                source = "attacker"
                if pts is None:
                    subject = subject_face(faces, rgb.shape[1], rgb.shape[0])
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
        """Per item ``{"path", "digest", "faces", "tmpl", "need", "util", "lm68"}``
        (and ``"batch"`` for dataset methods): the de-identified image's embeddings
        listed in ``need`` (``[[ai, mode], ...]``; absent = all), and its utility
        numbers when ``util``."""
        from ..types import Face

        anon = self._anonymizer(spec)
        origs, deids, results = [], [], []
        for it in items:
            rgb = self._load(it["path"])
            faces = [Face.from_dict(f) for f in it["faces"]]
            anon.seed = (self.cfg.seed * 1_000_003 + int(it["digest"].split(":")[-1][:8], 16)) \
                % (2 ** 32)
            extras = None
            if it.get("batch"):  # a dataset method's group averages, and the landmarks they fit
                extras = it["batch"]["extras"]
                faces = [f if p is None else f.replace(landmarks68=np.asarray(p))
                         for f, p in zip(faces, it["batch"]["lm68"])]
            with self.timer("deidentify", 1):
                res = anon.anonymize(rgb, faces=faces, extras=extras)
            out = np.asarray(res.image)
            if out.shape != rgb.shape or out.dtype != rgb.dtype:
                raise FaceDeidError(f"{it['path']}: method {spec['method']} changed the image "
                                    f"shape or dtype")
            origs.append(rgb)
            deids.append(out)
            recs = res.record.get("faces", [])
            boxes = [tuple(r["region"]["bbox"]) for r in recs if r.get("painted")]
            fallback = [bool(r.get("fallback")) for r in recs] if len(recs) == len(faces) else None
            results.append({"emb": {}, "util": None, "boxes": boxes, "faces": faces,
                            "fallback": fallback})
        tmpl = [None if it["tmpl"] is None else np.asarray(it["tmpl"]) for it in items]
        need = None
        if all(it.get("need") is not None for it in items):
            need = {(int(ai), str(m)) for it in items for ai, m in it["need"]}
        emb = self._embed(deids, None, tmpl, need) if need is None or need else {}
        for (ai, mode), vecs in emb.items():
            for r, v in zip(results, vecs):
                r["emb"][(ai, mode)] = v
        for it, r, rgb, out in zip(items, results, origs, deids):
            faces, boxes, fallback = r.pop("faces"), r.pop("boxes"), r.pop("fallback")
            if it["util"]:
                lm = it.get("lm68")
                with self.timer("utility", 1):
                    r["util"] = image_utility(
                        rgb, out, faces, boxes, detect=self.base.detect,
                        predict68=self._predict68 if self.cfg.landmarks else None,
                        orig_landmarks68=None if lm is None else
                        [None if p is None else np.asarray(p) for p in lm],
                        fallback=fallback)
        return results


def _vec(v) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v, dtype=np.float32).ravel()
    return v if np.all(np.isfinite(v)) and v.size else None


def subject_face(faces, w: int, h: int):
    """The largest, most central face with 5 landmarks (the attackers' subject rule)."""
    cands = [f for f in faces if f.landmarks5 is not None]
    if not cands:
        return None

    def weight(f) -> float:
        cx, cy = f.center
        d2 = ((cx - w / 2) / w) ** 2 + ((cy - h / 2) / h) ** 2
        return f.area * float(np.exp(-d2 / (2 * 0.35 ** 2)))

    return max(cands, key=weight)


# =================================================================== processes
_WORKER: Worker | None = None


def _init_worker(cfg: WorkerConfig, log_level: int) -> None:  # pragma: no cover - subprocess
    global _WORKER
    logging.basicConfig(level=log_level, format="facedeid: %(levelname)s: %(message)s")
    try:
        import cv2

        cv2.setNumThreads(max(1, cfg.threads))
    except Exception:
        pass
    _WORKER = Worker(cfg)


def _run_task(kind: str, payload: Any, items: list) -> Any:  # pragma: no cover - subprocess
    assert _WORKER is not None
    return run_chunk(_WORKER, kind, payload, items)


def run_chunk(worker: Worker, kind: str, payload: Any, items: list) -> tuple[list, dict]:
    """Run a chunk -> ``(results, {"cpu": seconds, "stages": {...}})``; on a bad
    image, report it per item (``{"error": ...}``) instead of failing the chunk."""
    fn = worker.originals if kind == "orig" else (lambda it: worker.deidentify(payload, it))
    cpu = time.process_time()
    worker.timer.take()
    try:
        out = fn(items)
    except InputError:
        out = []
        for it in items:  # find the bad one(s)
            try:
                out.append(fn([it])[0])
            except InputError as exc:
                out.append({"error": str(exc)})
    return out, {"cpu": time.process_time() - cpu, "stages": worker.timer.take()}


class Pool:
    """Runs chunks in a process pool (or inline with one worker), yielding results in any order."""

    def __init__(self, workers: int, wcfg: WorkerConfig):
        self.workers = workers
        self.wcfg = wcfg
        self._inline: Worker | None = None
        self._ex: ProcessPoolExecutor | None = None

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)

    def run(self, kind: str, payload: Any, chunks: list[tuple[Any, list]]):
        """Yields ``(tag, (results, stats))`` per chunk."""
        if self.workers <= 1:
            if self._inline is None:
                self._inline = Worker(self.wcfg)
            for tag, items in chunks:
                yield tag, run_chunk(self._inline, kind, payload, items)
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
