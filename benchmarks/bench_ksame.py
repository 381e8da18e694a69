"""The k-Same family (ksame-pixel, ksame-eigen, ksame-m) against the three attackers, on LFW.

    .venv/bin/python -m benchmarks.bench_ksame [--pairs 200] [--ks 2,5,10,20] [--workers 2]

1. ``facedeid evaluate`` (:func:`facedeid.evaluate.run_evaluation`) on a seeded
   sample of ``--pairs`` pairs of LFW View 1 ``pairsDevTrain.txt`` (half
   same-person). k-Same is a dataset method: the evaluation groups **every
   de-identified image of the sample together** (:mod:`facedeid.evaluate.batch`;
   identities known, so k counts people). Attackers dlib, SFace and FaceNet,
   scenarios naive, parrot, pairs and self, alignments ``--alignments``:
   rank-1, TAR and FAR, pairs accuracy after, self de-identification rate, SSIM
   (whole image), detection kept, landmark NME (mean displacement / inter-ocular
   distance).
2. Per-face time: on ``--time-faces`` LFW photos of people outside the pairs,
   the three steps of a dataset method per face - encode (alignment and
   features), grouping (the set's grouping time / faces) and painting (warp,
   colour, paste); detection and landmarks excluded.
3. The issue's targets, checked on the worst attacker (highest value over
   attackers and alignments).

Writes ``benchmarks/results/ksame.json`` and ``ksame.md`` (``--name bench_ksame_seed1
--seed 1``: ``ksame_seed1.*``, a second sample of pairs drawn with another seed; about 1 pair in 10
is in both samples).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS_DIR, md_table, require_data, set_threads, write_results

TMP = RESULTS_DIR / "tmp" / "ksame"
ATTACKERS = ["dlib", "sface", "facenet"]
SCENARIOS = ["naive", "parrot", "pairs", "self"]
METHODS = ["ksame-pixel", "ksame-eigen", "ksame-m"]


# ------------------------------------------------------------------ 1. evaluation
def evaluate(lfw: Path, ks: list[int], n_pairs: int, alignments: list[str], workers: int,
             seed: int, resume: bool):
    from facedeid.evaluate import EvaluationConfig, run_evaluation

    kk = ",".join(str(k) for k in ks)
    return run_evaluation(EvaluationConfig(
        data=str(lfw.parent), pairs=str(lfw / "pairsDevTrain.txt"),
        methods=[f"{m}:k={kk}" for m in METHODS], attackers=ATTACKERS, scenarios=SCENARIOS,
        alignments=alignments, limit_pairs=n_pairs, workers=workers, seed=seed,
        fresh=not resume, output=str(TMP / "report"), plots=False, progress=False))


def summarise(result) -> list[dict]:
    """One row per method configuration: the numbers the issue asks for, per attacker."""
    d = result.to_dict()
    util = {(u["method"], str(u["params"].get("k"))): u["metrics"] for u in d["utility"]}
    rows: dict[tuple, dict] = {}
    for r in d["records"]:
        key = (r["method"], str(r["params"].get("k")))
        row = rows.setdefault(key, {"method": r["method"], "k": r["params"].get("k"),
                                    "utility": util.get(key, {}), "attackers": {}})
        m = r["metrics"]
        a = row["attackers"].setdefault(r["attacker"], {}).setdefault(r["alignment"], {})
        sc = r["scenario"]
        if sc == "naive":
            a.update(naive_rank1=m.get("rank1"), naive_tar=m.get("tar"), naive_far=m.get("far"),
                     naive_fta=m.get("fta"))
        elif sc == "parrot":
            a.update(parrot_rank1=m.get("rank1"), parrot_tar=m.get("tar"), parrot_far=m.get("far"))
        elif sc == "pairs":
            a.update(pairs_accuracy=m.get("accuracy"), pairs_accuracy_before=m.get("accuracy_before"),
                     pairs_tar=m.get("tar"))
        elif sc == "self":
            a.update(self_deid=m.get("deid_rate"))
    return list(rows.values())


def worst(row: dict, key: str, attacker: str | None = None) -> float | None:
    """The attacker's best (privacy's worst) value of ``key`` over attackers and alignments."""
    vals = [al.get(key) for name, at in row["attackers"].items() if attacker in (None, name)
            for al in at.values()]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return min(vals) if key == "self_deid" else max(vals)


# ------------------------------------------------------------------ 2. time per face
def non_eval_people(lfw: Path, n: int) -> list[Path]:
    """First image of the first ``n`` identities not in pairsDevTrain (sorted names)."""
    names: set[str] = set()
    for line in (lfw / "pairsDevTrain.txt").read_text().splitlines()[1:]:
        p = line.split()
        names.update([p[0]] if len(p) == 3 else [p[0], p[2]] if len(p) == 4 else [])
    out = []
    for d in sorted(x for x in (lfw / "images").iterdir() if x.is_dir() and x.name not in names):
        files = sorted(d.glob("*.jpg"))
        if files:
            out.append(files[0])
        if len(out) >= n:
            break
    return out


def time_methods(images: list[Path], k: int) -> dict[str, dict[str, float]]:
    """Median ms per face of encode / group / paint for each method (k-Same over the images)."""
    from facedeid.batch import assign_extras, encode_image
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.pipeline import Anonymizer

    base = Anonymizer("ksame-m", seed=0)
    rgbs = [load_rgb(p) for p in images]
    faces = [base.add_landmarks(im, base.detect(im)) for im in rgbs]
    out = {}
    for method in METHODS:
        anon = Anonymizer(method, strength=k, seed=0)
        encode_image(anon, rgbs[0], faces[0])  # warm-up: face model, eigenfaces
        t_enc, encs = [], []
        for im, fs in zip(rgbs, faces):
            t0 = time.perf_counter()
            encs.append(encode_image(anon, im, fs))
            t_enc.append((time.perf_counter() - t0) / max(len(fs), 1))
        t0 = time.perf_counter()
        extras = assign_extras(anon, encs)
        n = sum(len(e.faces) for e in encs)
        t_group = (time.perf_counter() - t0) / max(n, 1)
        t_paint = []
        for im, fs, ex in zip(rgbs, faces, extras):
            t0 = time.perf_counter()
            anon.paint(im, fs, extras=ex)
            t_paint.append((time.perf_counter() - t0) / max(len(fs), 1))
        enc_ms, paint_ms = 1000 * statistics.median(t_enc), 1000 * statistics.median(t_paint)
        out[method] = {"encode_ms": enc_ms, "group_ms": 1000 * t_group, "paint_ms": paint_ms,
                       "total_ms": enc_ms + 1000 * t_group + paint_ms, "n_faces": n}
    return out


# ------------------------------------------------------------------ report
def targets(rows: list[dict], kmax: int) -> dict:
    """The issue's targets, each with the measured value and whether it is met."""
    out: dict = {}
    for row in rows:
        if row["method"] == "none" or row["k"] != kmax:
            continue
        for att in ATTACKERS:
            v = worst(row, "parrot_rank1", att)
            out[f"{row['method']} k={kmax}: parrot rank-1 ({att}) <= 1/k"] = {
                "value": v, "limit": 1.0 / kmax, "met": v is not None and v <= 1.0 / kmax + 1e-9}
    for row in rows:
        if row["method"] == "ksame-m":
            u = row["utility"]
            own = u.get("detection_kept_method")
            out[f"ksame-m k={row['k']}: detection kept >= 0.99 (faces ksame-m painted)"] = {
                "value": own, "limit": 0.99, "met": own is not None and own >= 0.99,
                "all_faces": u.get("detection_kept"), "fallback_share": u.get("fallback_share")}
            out[f"ksame-m k={row['k']}: landmark NME < 0.05"] = {
                "value": u.get("landmark_nme"), "limit": 0.05,
                "met": u.get("landmark_nme") is not None and u["landmark_nme"] < 0.05}
    best = [(worst(r, "naive_tar"), r["utility"].get("ssim"), f"{r['method']} k={r['k']}")
            for r in rows if r["method"] != "none"]
    ok = [b for b in best if b[0] is not None and b[1] is not None and b[0] <= 0.05 and b[1] >= 0.90]
    out["an averaging method with naive TAR <= 0.05 and SSIM >= 0.90"] = {
        "value": [b[2] for b in ok] or None, "met": bool(ok),
        "closest": sorted(((b[0], b[1], b[2]) for b in best if b[0] is not None),
                          key=lambda b: (b[0], -(b[1] or 0)))[:3]}
    return out


def markdown(rows: list[dict], times: dict, tg: dict, n_pairs: int, n_images: int,
             alignments: list[str], seconds: float) -> str:
    def f(v, pct=False):
        if v is None:
            return "-"
        return f"{100 * v:.1f}%" if pct else f"{v:.3f}"

    lines = [f"# k-Same family on LFW pairsDevTrain ({n_pairs} pairs, {n_images} images, "
             f"grouped together; alignments {', '.join(alignments)})", "",
             "Worst case over the attackers' alignments; per attacker: dlib / SFace / FaceNet.",
             ""]
    head = ["method", "k", "naive rank-1", "naive TAR", "parrot rank-1", "parrot TAR (FAR)",
            "pairs acc. after", "same pairs matched after", "self de-ID", "SSIM",
            "detection kept: own / all (fallback)", "landmark NME", "ms/face"]
    table = []
    for r in rows:
        per = lambda key, pct=False: " / ".join(f(worst(r, key, a), pct) for a in ATTACKERS)  # noqa: E731
        u = r["utility"]
        t = times.get(r["method"], {}).get("total_ms")
        table.append([r["method"], r["k"] if r["k"] is not None else "-", per("naive_rank1"),
                      per("naive_tar", True), per("parrot_rank1"),
                      per("parrot_tar", True) + " (" + f(worst(r, "parrot_far"), True) + ")",
                      per("pairs_accuracy", True), per("pairs_tar", True),
                      " / ".join(f(worst(r, "self_deid", a), True) for a in ATTACKERS),
                      f(u.get("ssim")),
                      f"{f(u.get('detection_kept_method'), True)} / {f(u.get('detection_kept'), True)}"
                      f" ({f(u.get('fallback_share'), True)})", f(u.get("landmark_nme")),
                      "-" if t is None else f"{t:.0f}"])
    lines.append(md_table(head, table))
    lines += ["", "Per-face time (median ms; encode = alignment + features, group = the set's "
              "grouping / faces, paint = warp + colour + paste; detection and landmarks excluded):",
              ""]
    lines.append(md_table(["method", "encode", "group", "paint", "total"],
                          [[m, t["encode_ms"], t["group_ms"], t["paint_ms"], t["total_ms"]]
                           for m, t in times.items()]))
    lines += ["", "Targets (issue 5):", ""]
    for name, t in tg.items():
        val = t.get("value")
        val = f"{val:.3f}" if isinstance(val, float) else val
        lines.append(f"- {'MET' if t['met'] else 'NOT MET'}: {name} (measured {val}"
                     + (f"; closest {t['closest']}" if "closest" in t and not t["met"] else "") + ")")
    lines += ["", "Detection kept: of the faces the default detector finds in the original, the "
              "share it still finds after de-identification; *own* counts the faces the method "
              "painted itself, *all* adds the faces it handed to the fallback method (blackout "
              "by default: faces too small to average, eye distance < 10 px); the share of "
              "those is in brackets."]
    lines += ["", "\"same pairs matched after\" is seed 004's \"verification accuracy after\" "
              "(its 1,000 pairs are all same-person pairs; it reports 16.5 % with dlib).",
              "", f"Evaluation wall time: {seconds / 60:.1f} min on the shared 2-core machine.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=200, help="pairs evaluated (half same-person)")
    ap.add_argument("--ks", default="2,5,10,20", help="k values (comma-separated)")
    ap.add_argument("--alignments", default="template,naive")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-faces", type=int, default=40)
    ap.add_argument("--resume", action="store_true",
                    help="reuse cached de-identified results (default: recompute them)")
    ap.add_argument("--name", default="bench_ksame",
                    help="results name (default: ksame; e.g. bench_ksame_seed1 for a second sample)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite ksame.md from the saved ksame.json (no measuring)")
    args = ap.parse_args(argv)
    if args.report_only:
        import json

        stem = args.name.removeprefix("bench_")
        saved = json.loads((RESULTS_DIR / f"{stem}.json").read_text())
        c = saved["config"]
        md = markdown(saved["rows"], saved["per_face_ms"], saved["targets"], c["pairs"],
                      saved["n_images"], c["alignments"], saved["evaluation_seconds"])
        (RESULTS_DIR / f"{stem}.md").write_text(md)
        print(md)
        return 0
    set_threads(1)
    lfw = require_data("lfw")
    ks = [int(k) for k in args.ks.split(",")]
    alignments = [a for a in args.alignments.split(",") if a]
    TMP.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = evaluate(lfw, ks, args.pairs, alignments, args.workers, args.seed, args.resume)
    seconds = time.perf_counter() - t0
    rows = summarise(result)
    times = time_methods(non_eval_people(lfw, args.time_faces), min(max(ks), args.time_faces))
    tg = targets(rows, 10 if 10 in ks else max(ks))   # the parrot target is at k = 10
    n_images = result.dataset.get("n_images")
    md = markdown(rows, times, tg, args.pairs, n_images, alignments, seconds)
    write_results(args.name, {
        "config": {"pairs": args.pairs, "ks": ks, "alignments": alignments, "seed": args.seed,
                   "workers": args.workers, "attackers": ATTACKERS, "scenarios": SCENARIOS,
                   "time_faces": args.time_faces},
        "n_images": n_images, "rows": rows, "per_face_ms": times, "targets": tg,
        "evaluation_seconds": seconds, "evaluation_timing": result.timing,
        "notes": result.notes}, md,
        packages=["facedeid", "numpy", "opencv-python-headless", "onnxruntime", "dlib-bin",
                  "scikit-image"])
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
