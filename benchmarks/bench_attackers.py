"""Clean verification accuracy and speed of the re-identification attackers.

    .venv/bin/python -m benchmarks.bench_attackers [--pairs N] [--attackers dlib,sface,facenet]

Data: LFW View 1 ``pairsDevTrain.txt`` (the first N same-person and the first
N different-person pairs; N=1100 is all of them). For each attacker:

* ``aligned``: ``embed_at`` at the landmarks the attackers' YuNet finds on the
  (clean) image;
* ``naive``: ``embed_naive`` (the attacker's own detection). On clean images
  both modes see the same landmarks, so they must agree; they differ once an
  image is de-identified. A failure to acquire counts as "not the same person".

Accuracy is at the attacker's default threshold; ``best_accuracy`` (oracle
threshold on the same pairs) and ROC AUC are given for context. Embeddings are
cached (``facedeid.evaluate.cache``), so a rerun or an interrupted run resumes;
speed is timed separately, uncached, on ``--speed-images`` images.

Writes ``benchmarks/results/attackers.json`` and ``attackers.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import md_table, require_data, set_threads, write_results


def read_pairs(path: Path, n: int | None = None) -> list[tuple[Path, Path, bool]]:
    """``(image_a, image_b, same_person)`` from an LFW pairs file (first n of each kind)."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    count = int(lines[0][0])
    root = path.parent / "images"

    def img(name: str, idx: str) -> Path:
        return root / name / f"{name}_{int(idx):04d}.jpg"

    same = [(img(p[0], p[1]), img(p[0], p[2]), True) for p in lines[1:1 + count]]
    diff = [(img(p[0], p[1]), img(p[2], p[3]), False) for p in lines[1 + count:1 + 2 * count]]
    n = count if n is None else min(n, count)
    return same[:n] + diff[:n]


def roc_auc(dist: np.ndarray, same: np.ndarray) -> float:
    """P(distance of a random different pair > that of a random same pair)."""
    pos, neg = dist[same], dist[~same]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    r_neg = ranks[len(pos):].sum()
    return float((r_neg - len(neg) * (len(neg) + 1) / 2) / (len(pos) * len(neg)))


def verification(attacker, emb: dict, pairs, threshold: float | None = None) -> dict:
    thr = attacker.threshold if threshold is None else threshold
    same = np.array([s for *_, s in pairs])
    dist = np.full(len(pairs), np.inf)
    fta = 0
    for i, (a, b, _) in enumerate(pairs):
        ea, eb = emb[a], emb[b]
        if ea is None or eb is None:
            fta += 1
            continue
        dist[i] = attacker.pair_distance(ea, eb)[0]
    pred = dist <= thr
    finite = np.isfinite(dist)
    cand = np.unique(dist[finite])
    best_acc, best_thr = 0.0, float("nan")
    if len(cand):
        accs = [(np.sum((dist <= t) == same)) / len(pairs) for t in cand]
        j = int(np.argmax(accs))
        nxt = cand[j + 1] if j + 1 < len(cand) else cand[j]
        best_acc, best_thr = float(accs[j]), float((cand[j] + nxt) / 2)
    return {
        "accuracy": float(np.mean(pred == same)),
        "tar": float(np.mean(pred[same])),              # same-person pairs matched
        "far": float(np.mean(pred[~same])),             # different-person pairs matched
        "threshold": float(thr),
        "best_accuracy": best_acc,
        "best_threshold": best_thr,
        "auc": roc_auc(np.where(finite, dist, 1e9), same),
        "pairs_with_fta": int(fta),
    }


def embed_all(attacker, images, rgb, landmarks, cache, mode: str) -> dict:
    from facedeid.evaluate.cache import make_key

    keys = {p: make_key(attacker, digest, mode, landmarks.get(p) if mode == "aligned" else None)
            for p, digest in images.items()
            if mode == "naive" or landmarks.get(p) is not None}
    hits = cache.get_many(keys.values()) if cache is not None else {}
    out = {p: hits[k] for p, k in keys.items() if k in hits}
    todo = [p for p in keys if p not in out]
    for i in range(0, len(todo), 64):
        chunk = todo[i:i + 64]
        if mode == "aligned":
            vecs = list(attacker.embed_at_many([rgb(p) for p in chunk],
                                               [landmarks[p] for p in chunk]))
        else:
            vecs = [attacker.embed_naive(rgb(p)) for p in chunk]
        out.update(zip(chunk, vecs))
        if cache is not None:
            cache.put_many([(keys[p], v) for p, v in zip(chunk, vecs)])
    for p in images:  # aligned with no landmarks: the original had no face found
        out.setdefault(p, None)
    return out


def speed(attacker, imgs: list[np.ndarray], lms: list[np.ndarray]) -> dict:
    """Embeddings per second (wall clock) and CPU seconds per embedding (all
    threads; less sensitive to other load on the machine)."""
    attacker.embed_at(imgs[0], lms[0])  # warm-up (model load excluded)
    n = len(imgs)

    def run(fn) -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        fn()
        return n / (time.perf_counter() - w), (time.process_time() - c) / n * 1000

    single, single_cpu = run(lambda: [attacker.embed_at(im, lm) for im, lm in zip(imgs, lms)])
    batched, batched_cpu = run(lambda: attacker.embed_at_many(imgs, lms))
    naive, naive_cpu = run(lambda: [attacker.embed_naive(im) for im in imgs])
    return {"images": n,
            "aligned_per_s": single, "aligned_batched_per_s": batched, "naive_per_s": naive,
            "aligned_cpu_ms": single_cpu, "aligned_batched_cpu_ms": batched_cpu,
            "naive_cpu_ms": naive_cpu,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=1100,
                    help="same-person and different-person pairs each (default: all 1100)")
    ap.add_argument("--attackers", default="dlib,sface,facenet")
    ap.add_argument("--speed-images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-cache", action="store_true", help="recompute every embedding")
    args = ap.parse_args(argv)

    set_threads(args.threads)
    from facedeid.evaluate.attackers import get_attacker
    from facedeid.evaluate.attackers.detection import attacker_landmarks5
    from facedeid.evaluate.cache import EmbeddingCache, file_digest, read_rgb

    pairs = read_pairs(require_data("lfw", "pairsDevTrain.txt"), args.pairs)
    paths = sorted({p for a, b, _ in pairs for p in (a, b)})
    print(f"{len(pairs)} pairs, {len(paths)} images")
    images = {p: file_digest(p) for p in paths}
    _rgb: dict[Path, np.ndarray] = {}

    def rgb(p: Path) -> np.ndarray:
        if p not in _rgb:
            _rgb[p] = read_rgb(p)
        return _rgb[p]

    t = time.perf_counter()
    landmarks = {p: attacker_landmarks5(rgb(p)) for p in paths}
    det_s = time.perf_counter() - t
    det_fta = sum(v is None for v in landmarks.values())
    print(f"YuNet: {len(paths) / det_s:.1f} images/s, {det_fta} without a face")

    cache = None if args.no_cache else EmbeddingCache()
    results: dict = {}
    speed_paths = paths[:args.speed_images]
    speed_paths = [p for p in speed_paths if landmarks[p] is not None]
    rows = []
    for name in [a.strip() for a in args.attackers.split(",") if a.strip()]:
        att = get_attacker(name, threads=args.threads) if name == "facenet" else get_attacker(name)
        t = time.perf_counter()
        att.embed_at(rgb(speed_paths[0]), landmarks[speed_paths[0]])
        load_s = time.perf_counter() - t
        entry: dict = {"metric": att.metric, "threshold": att.threshold, "dim": att.dim,
                       "first_call_s": load_s}
        for mode in ("aligned", "naive"):
            t = time.perf_counter()
            emb = embed_all(att, images, rgb, landmarks, cache, mode)
            entry[mode] = verification(att, emb, pairs)
            entry[mode]["wall_s"] = time.perf_counter() - t
        entry["speed"] = speed(att, [rgb(p) for p in speed_paths],
                               [landmarks[p] for p in speed_paths])
        results[name] = entry
        s, al, nv = entry["speed"], entry["aligned"], entry["naive"]
        print(f"{name}: aligned acc {al['accuracy']:.4f} (best {al['best_accuracy']:.4f} "
              f"@ {al['best_threshold']:.3f}, AUC {al['auc']:.4f}); naive acc "
              f"{nv['accuracy']:.4f}; {s['aligned_per_s']:.1f} emb/s "
              f"({s['aligned_batched_per_s']:.1f} batched, {s['naive_per_s']:.1f} naive; "
              f"{s['aligned_cpu_ms']:.0f} CPU-ms/emb; load {s['load_average_1min']:.1f})")
        rows.append([name, f"{att.metric} <= {att.threshold:.3f}", f"{al['accuracy']:.4f}",
                     f"{nv['accuracy']:.4f}",
                     f"{al['best_accuracy']:.4f} @ {al['best_threshold']:.3f}",
                     f"{al['auc']:.4f}", f"{s['aligned_per_s']:.1f}",
                     f"{s['aligned_batched_per_s']:.1f}", f"{s['naive_per_s']:.1f}",
                     f"{s['aligned_cpu_ms']:.0f}"])

    payload = {
        "config": {"pairs_per_class": len(pairs) // 2, "images": len(paths),
                   "threads": args.threads, "speed_images": len(speed_paths),
                   "cache": not args.no_cache},
        "detection": {"images_per_s": len(paths) / det_s, "no_face": det_fta},
        "attackers": results,
    }
    md = (f"LFW View 1 DevTrain, {len(pairs) // 2} + {len(pairs) // 2} pairs, "
          f"{args.threads} threads\n\n" + md_table(
              ["attacker", "match rule", "acc aligned", "acc naive", "best acc @ thr", "AUC",
               "emb/s", "emb/s batched", "naive/s", "CPU-ms/emb"], rows))
    out = write_results("bench_attackers", payload, md,
                        packages=["facedeid", "numpy", "opencv-python-headless", "onnxruntime",
                                  "dlib-bin"])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
