"""Reversible mode (issue 6): recovery exactness, overhead, leakage; seed 000 side by side.

    .venv/bin/python -m benchmarks.bench_keys [--images 200] [--slow-images 40]
        [--video-frames 60] [--slow-video-frames 15] [--pairs 100] [--seed000-images 200]

Four parts, one master key file (raw 256-bit) throughout:

1. **Images**: LFW (deep-funneled, 250x250 JPEG): the first image of ``--images``
   identities (seeded sample). Faces are detected once (default detector + 68
   points) and given to every registered method (``seed=0``). Each result is
   written plainly and with ``--reversible`` as PNG and as JPEG (quality 95),
   and recovered with the master key. Per method and format: bit-exact
   images, bit-exact face regions, PSNR (whole image; inside the regions),
   payload bytes per face, extra ms per face to write reversibly (reversible
   write minus plain write: pack + decode-for-binding + encrypt + embed) and ms
   per face to recover (read, verify, decrypt, restore; writing the recovered
   PNG excluded). Methods slower than 0.3 s per image run on ``--slow-images``
   images (said in the table).
2. **Video**: ``video/short_hamilton_clip.mp4``, first ``--video-frames`` frames
   (``--slow-video-frames`` for slow methods), faces detected and tracked once
   (detections replayed for every method). Each method writes H.264 ``.mkv``
   (payload as attachment) and FFV1 RGB ``.mkv`` (``--codec ffv1 --pix-fmt
   bgr0``); recovery with the master key is compared with the decoded source.
3. **Leakage**: ``facedeid.evaluate`` (``pairs`` and ``self`` scenarios, attacker
   SFace, ``--pairs`` LFW View 1 pairs, blur and pixelate) run twice with the
   de-identified images going through a file: once written plainly, once with
   ``--reversible``. The decoded pixels and every number must be identical.
4. **Seed 000** (``modified-averaging``, its own recoverable formula): recovery
   error with the right key, and what an attacker learns (SFace, template
   alignment at the original's landmarks, ``self`` match: de-identified or
   recovered face vs its own original), for the seed's public key ``mean`` and
   for a secret key (an aligned face of a person outside the set, the attacker
   guessing ``mean``), side by side with the keyed mode.

Writes ``benchmarks/results/keys.json`` and ``keys.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import md_table, require_data, set_threads, write_results

SLOW_S = 0.3


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    maxv = 65535.0 if max(a.max(initial=0), b.max(initial=0)) > 255 else 255.0
    d = (a - b) ** 2
    if mask is not None:
        d = d[mask]
    mse = float(d.mean()) if d.size else 0.0
    return float("inf") if mse == 0 else 10 * np.log10(maxv ** 2 / mse)


def fmt_psnr(values: list[float]) -> str:
    finite = [v for v in values if np.isfinite(v)]
    if not values:
        return "-"
    if not finite:
        return "inf (exact)"
    return f"{np.mean(finite):.1f}" + (f" ({len(values) - len(finite)} exact)" if len(finite) < len(values) else "")


def lfw_subset(root: Path, n: int, seed: int = 0) -> list[Path]:
    people = sorted(p for p in (root / "lfw" / "images").iterdir() if p.is_dir())
    rng = random.Random(seed)
    rng.shuffle(people)
    out = []
    for person in people:
        first = sorted(person.glob("*.jpg"))
        if first:
            out.append(first[0])
        if len(out) == n:
            break
    return out


def union_mask(result, shape) -> np.ndarray:
    from facedeid.keys.image import face_regions
    from facedeid.keys.pixels import ownership

    h, w = shape[:2]
    regions = face_regions(result.record["faces"], result.faces, h, w)
    m = np.zeros((h, w), bool)
    for (_, _, (x0, y0, x1, y1)), own in zip(regions, ownership([(r[1], r[2]) for r in regions], h, w)):
        m[y0:y1, x0:x1] |= own
    return m


# ---------------------------------------------------------------- part 1: images
def bench_images(paths: list[Path], faces: list, key, tmp: Path, slow_images: int,
                 methods: list[str] | None = None) -> dict[str, Any]:
    from facedeid.io.images import read_image, write_image
    from facedeid.keys.image import recover_image, write_reversible_image
    from facedeid.methods import METHODS
    from facedeid.pipeline import Anonymizer

    loaded_all = [read_image(p) for p in paths]
    out: dict[str, Any] = {}
    for method in (methods or METHODS.names()):
        anon = Anonymizer(method, seed=0)
        try:
            anon.anonymize(loaded_all[0].pixels, faces=faces[0])       # warm-up: models load here
            t0 = time.perf_counter()
            probe = [anon.anonymize(loaded_all[i].pixels, faces=faces[i])
                     for i in range(1, min(4, len(paths)))]
            per_image = (time.perf_counter() - t0) / max(1, len(probe))
        except Exception as exc:  # noqa: BLE001 - a method that cannot run here is reported
            out[method] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  {method}: cannot run: {exc}", flush=True)
            continue
        n = len(paths) if per_image <= SLOW_S else min(slow_images, len(paths))
        stats = {f: {"n_images": 0, "n_faces": 0, "exact": 0, "regions_exact": 0, "psnr": [],
                     "psnr_regions": [], "payload_bytes": [], "extra_ms": [], "diff_ms": [], "recover_ms": [],
                     "pack_ms": [], "decode_ms": [], "encrypt_ms": [], "same_pixels_as_plain": 0,
                     "verified": 0} for f in ("png", "jpg")}
        t_method = time.perf_counter()
        for i in range(n):
            loaded = loaded_all[i]
            res = anon.anonymize(loaded.pixels, faces=faces[i])
            nf = sum(1 for r in res.record["faces"] if r.get("painted"))
            if nf == 0:
                continue
            regions = union_mask(res, loaded.pixels.shape)
            for f, s in stats.items():
                plain, rev = tmp / f"plain.{f}", tmp / f"rev.{f}"
                t0 = time.perf_counter()
                write_image(plain, res.image, like=loaded)
                t1 = time.perf_counter()
                _, info = write_reversible_image(rev, res, loaded, key)
                t2 = time.perf_counter()
                pix, rep = recover_image(rev, key)
                t3 = time.perf_counter()
                orig = loaded.pixels
                s["n_images"] += 1
                s["n_faces"] += nf
                s["exact"] += int(np.array_equal(pix, orig))
                s["verified"] += int(rep.verified)
                s["regions_exact"] += int(np.array_equal(pix[regions], orig[regions]))
                s["psnr"].append(psnr(pix, orig))
                s["psnr_regions"].append(psnr(pix, orig, regions))
                s["payload_bytes"].append(info.payload_bytes / nf)
                s["extra_ms"].append(1000 * sum(info.seconds.get(k, 0.0)
                                                for k in ("pack", "decode", "encrypt")) / nf)
                s["diff_ms"].append(1000 * ((t2 - t1) - (t1 - t0)) / nf)
                s["recover_ms"].append(1000 * (t3 - t2) / nf)
                for k in ("pack", "decode", "encrypt"):
                    s[f"{k}_ms"].append(1000 * info.seconds.get(k, 0.0) / nf)
                s["same_pixels_as_plain"] += int(np.array_equal(read_image(plain).pixels,
                                                                read_image(rev).pixels))
        summary = {"per_image_anonymize_s": round(per_image, 4), "images_run": n,
                   "seconds": round(time.perf_counter() - t_method, 1)}
        for f, s in stats.items():
            summary[f] = {
                "n_images": s["n_images"], "n_faces": s["n_faces"], "bit_exact_images": s["exact"],
                "verified_pixel_exact": s["verified"], "bit_exact_regions": s["regions_exact"],
                "psnr_mean_finite": fmt_psnr(s["psnr"]), "psnr_regions": fmt_psnr(s["psnr_regions"]),
                "payload_bytes_per_face_mean": round(float(np.mean(s["payload_bytes"])), 1) if s["n_images"] else None,
                "payload_bytes_per_face_median": round(float(np.median(s["payload_bytes"])), 1) if s["n_images"] else None,
                "extra_write_ms_per_face_median": round(float(np.median(s["extra_ms"])), 2) if s["n_images"] else None,
                "write_time_difference_ms_per_face_median": round(float(np.median(s["diff_ms"])), 2)
                if s["n_images"] else None,
                "recover_ms_per_face_median": round(float(np.median(s["recover_ms"])), 2) if s["n_images"] else None,
                "pack_ms_per_face_median": round(float(np.median(s["pack_ms"])), 2) if s["n_images"] else None,
                "decode_ms_per_face_median": round(float(np.median(s["decode_ms"])), 2) if s["n_images"] else None,
                "encrypt_ms_per_face_median": round(float(np.median(s["encrypt_ms"])), 2) if s["n_images"] else None,
                "decoded_pixels_identical_to_plain_output": s["same_pixels_as_plain"],
            }
        out[method] = summary
        print(f"  {method}: {n} images, png exact {summary['png']['bit_exact_images']}/"
              f"{summary['png']['n_images']}, jpg regions exact {summary['jpg']['bit_exact_regions']}/"
              f"{summary['jpg']['n_images']} ({summary['seconds']} s)", flush=True)
    return out


# ---------------------------------------------------------------- part 2: video
class ReplayDetector:
    """Records the real detector's faces per frame (by content) and replays them."""

    def __init__(self, real):
        self.real = real
        self.name = getattr(real, "name", "replay")
        self.threshold = getattr(real, "threshold", None)
        self.seen: dict[str, list] = {}

    def detect(self, rgb):
        k = hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest()
        if k not in self.seen:
            self.seen[k] = self.real.detect(rgb)
        return list(self.seen[k])

    def __repr__(self) -> str:
        return f"ReplayDetector({self.real!r})"


def decode_frames(path: Path, n: int | None = None) -> list[np.ndarray]:
    from facedeid.io.video import VideoReader, orient

    frames = []
    with VideoReader(str(path), copy_types=()) as r:
        rot = r.info().rotation
        for kind, item in r.items():
            if kind == "frame":
                frames.append(orient(item.image, rot))
                if n is not None and len(frames) == n:
                    break
    return frames


def owned_masks(path: Path, key) -> dict[int, np.ndarray]:
    """Union of the owned pixels per frame, decrypted with the master key."""
    from facedeid.keys.payload import IMAGE_UNIT
    from facedeid.keys.pixels import unpack_region
    from facedeid.keys.video import open_video_payload

    payload, _, opener = open_video_payload(path, key)
    h, w = payload.header.height, payload.header.width
    out: dict[int, np.ndarray] = {}
    for e in payload.entries:
        if e.unit == IMAGE_UNIT:
            continue
        x0, y0, x1, y1 = e.bbox
        own, _ = unpack_region(opener.open(e), y1 - y0, x1 - x0, 3, 8)
        m = out.setdefault(e.frame, np.zeros((h, w), bool))
        m[y0:y1, x0:x1] |= own
    return out


def bench_video(clip: Path, key, tmp: Path, frames: int, slow_frames: int, slow: set[str],
                methods: list[str] | None = None) -> dict[str, Any]:
    from facedeid.keys.video import anonymize_video_reversible, recover_video
    from facedeid.methods import METHODS
    from facedeid.pipeline import Anonymizer
    from facedeid.video import anonymize_video

    detector = ReplayDetector(Anonymizer("blur").detector)
    originals = decode_frames(clip, frames)
    out: dict[str, Any] = {"clip": clip.name, "frames": frames}
    for method in (methods or METHODS.names()):
        n = slow_frames if method in slow else frames
        row: dict[str, Any] = {"frames": n}
        for label, kw in (("h264", {}), ("ffv1_rgb", {"codec": "ffv1", "pix_fmt": "bgr0"})):
            anon = Anonymizer(method, seed=0)
            anon._detector = detector
            dst = tmp / f"v_{label}.mkv"
            plain = tmp / f"p_{label}.mkv"
            for p in (dst, plain):
                if p.exists():
                    p.unlink()
            try:
                t0 = time.perf_counter()
                anonymize_video(clip, plain, anon, progress=False, max_frames=n, **kw)
                t1 = time.perf_counter()
                summary, info = anonymize_video_reversible(clip, dst, anon, key, progress=False,
                                                           max_frames=n, **kw)
                t2 = time.perf_counter()
                rep = recover_video(dst, key, dst=tmp / "back.mkv")
                t3 = time.perf_counter()
            except Exception as exc:  # noqa: BLE001 - reported, the others go on
                row[label] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            back = decode_frames(tmp / "back.mkv")
            masks = owned_masks(dst, key)
            entries = rep.extra["entries_restored"]
            region_mismatch = 0
            psnrs, rpsnrs = [], []
            for k, (o, b) in enumerate(zip(originals[:n], back)):
                psnrs.append(psnr(b, o))
                m = masks.get(k)
                if m is not None and m.any():
                    region_mismatch += int(not np.array_equal(b[m], o[m]))
                    rpsnrs.append(psnr(b, o, m))
            plain_frames = decode_frames(plain)
            rev_frames = decode_frames(dst)
            row[label] = {
                "frames_written": summary.frames, "tracks": summary.tracks, "entries": entries,
                "frames_with_faces": summary.frames_with_faces,
                "recovered_frames_bit_exact": sum(int(np.array_equal(b, o)) for o, b in zip(originals[:n], back)),
                "verified_exact_frames": rep.extra.get("frames_exact"),
                "frames_with_region_mismatch": region_mismatch,
                "psnr_frames": fmt_psnr(psnrs), "psnr_regions": fmt_psnr(rpsnrs),
                "payload_bytes": info.payload_bytes,
                "payload_bytes_per_entry": round(info.payload_bytes / max(1, entries), 1),
                "where": info.where,
                "extra_ms_per_entry": round(1000 * (info.seconds["encrypt"] + info.seconds["bind"])
                                            / max(1, entries), 2),
                "write_time_difference_ms_per_entry": round(1000 * ((t2 - t1) - (t1 - t0)) / max(1, entries), 2),
                "encrypt_ms_per_entry": round(1000 * info.seconds["encrypt"] / max(1, entries), 2),
                "recover_ms_per_entry": round(1000 * (t3 - t2) / max(1, entries), 2),
                "decoded_frames_identical_to_plain_output": sum(
                    int(np.array_equal(a, b)) for a, b in zip(plain_frames, rev_frames)),
                "exact": rep.exact,
            }
        out[method] = row
        print(f"  video {method}: " + ", ".join(
            f"{k}: {v.get('recovered_frames_bit_exact', v.get('error'))}/{n} exact frames"
            for k, v in row.items() if isinstance(v, dict)), flush=True)
    return out


# ---------------------------------------------------------------- part 3: leakage through evaluate
class FileRoundTrip:
    """Wraps an evaluation Anonymizer: its output goes through a file (plain or reversible)."""

    def __init__(self, inner, mode: str, tmp: Path, key, log: dict):
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "tmp", tmp)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "log", log)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        setattr(self.inner, name, value)

    def anonymize(self, rgb, faces=None, **kwargs):
        from facedeid.io.images import read_image, write_image
        from facedeid.keys.image import write_reversible_image

        res = self.inner.anonymize(rgb, faces=faces, **kwargs)
        src, out = self.tmp / "eval_src.png", self.tmp / f"eval_{self.mode}.png"
        for p in (src, out):
            if p.exists():
                p.unlink()
        write_image(src, rgb)
        loaded = read_image(src)
        if self.mode == "reversible":
            write_reversible_image(out, res, loaded, self.key)
        else:
            write_image(out, res.image, like=loaded)
        decoded = read_image(out).pixels
        tag = hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()[:16] + self.inner.method.name
        self.log[tag] = hashlib.sha256(decoded.tobytes()).hexdigest()
        res.image = decoded
        return res


def bench_leakage(data: Path, key, tmp: Path, pairs: int) -> dict[str, Any]:
    import facedeid.evaluate.worker as W
    from facedeid.evaluate import EvaluationConfig, run_evaluation

    original = W.Worker._anonymizer
    runs: dict[str, Any] = {}
    logs: dict[str, dict] = {}
    try:
        for mode in ("plain", "reversible"):
            logs[mode] = {}

            def patched(self, spec, _mode=mode):
                return FileRoundTrip(original(self, spec), _mode, tmp, key, logs[_mode])

            W.Worker._anonymizer = patched
            t0 = time.perf_counter()
            res = run_evaluation(EvaluationConfig(
                data=str(data), methods=["blur", "pixelate"], attackers=["sface"],
                scenarios=["pairs", "self"], limit_pairs=pairs, workers=1, cache=False, fresh=True,
                utility=False, output=None, seed=0))
            runs[mode] = {"records": [r.to_dict(False) for r in res.records],
                          "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        W.Worker._anonymizer = original

    def strip(rec: dict) -> dict:
        return {k: v for k, v in rec.items() if k not in ("timing", "seconds")}

    a = [strip(r) for r in runs["plain"]["records"]]
    b = [strip(r) for r in runs["reversible"]["records"]]
    same_pixels = sum(1 for k, v in logs["plain"].items() if logs["reversible"].get(k) == v)
    table = []
    for r in runs["reversible"]["records"]:
        m = r.get("metrics", {})
        table.append({"method": r.get("method"), "params": r.get("params"), "attacker": r.get("attacker"),
                      "alignment": r.get("alignment"), "scenario": r.get("scenario"),
                      **{k: m.get(k) for k in ("accuracy", "accuracy_before", "deid_rate", "tar", "eer",
                                               "auc") if k in m}})
    return {"pairs": pairs, "attacker": "sface", "methods": ["blur", "pixelate"],
            "scenarios": ["pairs", "self"], "records_identical": a == b, "n_records": len(a),
            "images_compared": len(logs["plain"]), "decoded_pixels_identical": same_pixels,
            "seconds": {k: v["seconds"] for k, v in runs.items()}, "reversible_metrics": table}


# ---------------------------------------------------------------- part 4: seed 000 vs keyed mode
def bench_seed000(paths: list[Path], faces: list, key, tmp: Path, data: Path) -> dict[str, Any]:
    from facedeid.evaluate.attackers import get_attacker
    from facedeid.io.images import read_image, write_image
    from facedeid.keys.image import recover_image, write_reversible_image
    from facedeid.methods import METHODS
    from facedeid.pipeline import Anonymizer

    if "modified-averaging" not in METHODS:
        return {"error": "method modified-averaging is not registered"}
    from facedeid.methods.seed_formulas import aligned_key_from_photo, recover_face

    att = get_attacker("sface")
    # a secret key: an aligned face of a person outside the evaluated set
    used = {p.parent.name for p in paths}
    outsider = next(p for p in lfw_subset(data, 10_000, seed=1) if p.parent.name not in used)
    o = read_image(outsider).pixels
    det = Anonymizer("blur")
    of = det.add_landmarks(o, det.detect(o))
    secret = tmp / "secret_key.png"
    write_image(secret, aligned_key_from_photo(o, of[0].landmarks68))

    def match(a_img, b_img, lm5) -> tuple[float, bool]:
        e = att.embed_at_many([a_img, b_img], [lm5, lm5])
        d = float(att.distance(e[0], e[1])[0, 0])
        return d, d <= att.threshold

    configs = {"seed000 key=mean (public, the seed's default)": "mean",
               "seed000 secret key (attacker guesses mean)": str(secret)}
    rows: dict[str, dict] = {}
    for label, k in configs.items():
        rows[label] = {"n": 0, "psnr_legit": [], "psnr_attacker": [], "match_deid": 0,
                       "match_legit": 0, "match_attacker": 0}
    rows["keyed mode (blur, --reversible)"] = {"n": 0, "psnr_legit": [], "psnr_attacker": [],
                                               "match_deid": 0, "match_legit": 0, "match_attacker": 0}
    for i, path in enumerate(paths):
        loaded = read_image(path)
        fs = [f for f in faces[i] if f.landmarks68 is not None and f.landmarks5 is not None]
        if len(fs) != 1:
            continue
        face = fs[0]
        orig = loaded.pixels
        lm5 = np.asarray(face.landmarks5)
        for label, k in configs.items():
            anon = Anonymizer("modified-averaging", seed=0, key=k)
            res = anon.anonymize(orig, faces=[face])
            mask = union_mask(res, orig.shape)
            out = tmp / "s0.png"
            write_image(out, res.image, like=loaded)
            deid = read_image(out).pixels
            legit = np.clip(np.rint(recover_face(deid, face.landmarks68, key=k)), 0, 255).astype(np.uint8)
            guess = legit if k == "mean" else np.clip(np.rint(recover_face(deid, face.landmarks68, key="mean")),
                                                      0, 255).astype(np.uint8)
            r = rows[label]
            r["n"] += 1
            r["psnr_legit"].append(psnr(legit, orig, mask))
            r["psnr_attacker"].append(psnr(guess, orig, mask))
            r["match_deid"] += int(match(deid, orig, lm5)[1])
            r["match_legit"] += int(match(legit, orig, lm5)[1])
            r["match_attacker"] += int(match(guess, orig, lm5)[1])
        res = Anonymizer("blur", seed=0).anonymize(orig, faces=[face])
        mask = union_mask(res, orig.shape)
        write_reversible_image(tmp / "k.png", res, loaded, key)
        deid = read_image(tmp / "k.png").pixels
        legit, _ = recover_image(tmp / "k.png", key)
        r = rows["keyed mode (blur, --reversible)"]
        r["n"] += 1
        r["psnr_legit"].append(psnr(legit, orig, mask))
        r["psnr_attacker"].append(psnr(deid, orig, mask))      # without the key: the payload gives nothing
        r["match_deid"] += int(match(deid, orig, lm5)[1])
        r["match_legit"] += int(match(legit, orig, lm5)[1])
        r["match_attacker"] += int(match(deid, orig, lm5)[1])
    out = {}
    for label, r in rows.items():
        n = max(1, r["n"])
        out[label] = {"n_faces": r["n"], "psnr_regions_legit": fmt_psnr(r["psnr_legit"]),
                      "psnr_regions_attacker": fmt_psnr(r["psnr_attacker"]),
                      "sface_self_match_deid": round(r["match_deid"] / n, 4),
                      "sface_self_match_legit_recovery": round(r["match_legit"] / n, 4),
                      "sface_self_match_attacker": round(r["match_attacker"] / n, 4)}
    return out


# ---------------------------------------------------------------- main
def markdown(res: dict[str, Any], args) -> str:
    lines = ["# Reversible mode (issue 6)", "",
             f"`python -m benchmarks.bench_keys --images {args.images} --slow-images {args.slow_images} "
             f"--video-frames {args.video_frames} --slow-video-frames {args.slow_video_frames} "
             f"--pairs {args.pairs} --seed000-images {args.seed000_images}`", "",
             "Master key from a key file (256-bit); AES-256-GCM, HKDF-SHA256 per face. "
             "LFW deep-funneled 250x250 JPEG inputs (the original = the decoded JPEG). "
             f"Machine load average (1 min) {res['load_average_start'][0]:.1f} at the start, "
             f"{res['load_average_end'][0]:.1f} at the end, on 2 cores shared with other jobs: "
             "times are upper bounds, medians per face.", ""]
    if res.get("config_of_kept_parts"):
        lines += ["Images and video re-run with `--only images,video` (timing reported from inside the "
                  "writer); the leakage and seed 000 parts are kept from the full run before it "
                  "(same code for those parts)." + (
                      f" Methods {res['config']['methods']} were added afterwards with `--only "
                      f"images,video --methods {res['config']['methods']}` (same images, same clip)."
                      if res.get("config", {}).get("methods") else ""), ""]
    lines += [
             "## Images: recovery with the master key", ""]
    rows = []
    for m, s in res["images"].items():
        if "error" in s:
            rows.append([m, "-", "cannot run: " + s["error"][:80]] + ["-"] * 8)
            continue
        for f in ("png", "jpg"):
            x = s[f]
            rows.append([m if f == "png" else "", f, x["n_images"],
                         f"{x['bit_exact_images']}/{x['n_images']}",
                         f"{x['bit_exact_regions']}/{x['n_images']}", x["psnr_mean_finite"],
                         x["payload_bytes_per_face_median"], x["extra_write_ms_per_face_median"],
                         x["encrypt_ms_per_face_median"], x["recover_ms_per_face_median"],
                         f"{x['decoded_pixels_identical_to_plain_output']}/{x['n_images']}"])
    lines.append(md_table(["method", "format", "images", "bit-exact image", "bit-exact regions",
                           "PSNR image dB", "payload B/face (median)", "extra write ms/face",
                           "of which encrypt ms/face", "recover ms/face", "same pixels as plain"], rows))
    lines += ["", "Extra write time = packing the original regions + decoding the encoded output "
              "once (to bind each face to the pixels a reader will see; per image, divided by its "
              "faces) + encryption, timed inside the writer; embedding is a byte copy. "
              "`recover` = read, decode, verify, decrypt and restore (writing the PNG excluded)."]
    lines += ["", "PSNR over the whole image is the mean over images that are not bit-exact "
              "(JPEG: the lossy pixels outside the faces); inside the regions every recovery is bit-exact.",
              "", "## Video: " + res["video"].get("clip", "?"), ""]
    rows = []
    for m, row in res["video"].items():
        if not isinstance(row, dict):
            continue
        for label in ("h264", "ffv1_rgb"):
            v = row.get(label)
            if v is None:
                continue
            if "error" in v:
                rows.append([m, label, row["frames"], "error: " + v["error"][:60]] + ["-"] * 6)
                continue
            rows.append([m if label == "h264" else "", label, row["frames"],
                         f"{v['recovered_frames_bit_exact']}/{v['frames_written']}",
                         f"{v['frames_written'] - v['frames_with_region_mismatch']}/{v['frames_written']}",
                         v["psnr_frames"], v["entries"], v["payload_bytes_per_entry"],
                         v["extra_ms_per_entry"], v["recover_ms_per_entry"],
                         f"{v['decoded_frames_identical_to_plain_output']}/{v['frames_written']}"])
    lines.append(md_table(["method", "codec", "frames", "bit-exact frames", "frames exact in regions",
                           "PSNR frames dB", "track-frame entries", "payload B/entry",
                           "extra write ms/entry", "recover ms/entry", "same frames as plain"], rows))
    lines += ["", "Extra write time = packing and encrypting each track's region per frame (timed in "
              "the recorder) + hashing the video stream and attaching/writing the payload, per entry. "
              "Recovery re-encodes the whole clip as FFV1 RGB, so its time per entry includes that. "
              "H.264 frames are never bit-exact outside the faces (lossy); inside they always are."]
    lk = res["leakage"]
    lines += ["", "## Leakage: `facedeid evaluate` on plain vs reversible outputs", "",
              f"{lk['pairs']} LFW View 1 pairs, attacker {lk['attacker']}, scenarios "
              f"{', '.join(lk['scenarios'])}, methods {', '.join(lk['methods'])}, seed 0; the "
              "de-identified image of each run goes through a PNG file (plain / with payload) and is decoded.",
              "",
              f"* decoded de-identified pixels identical: {lk['decoded_pixels_identical']}/{lk['images_compared']}",
              f"* all {lk['n_records']} result records identical: **{lk['records_identical']}**", ""]
    rows = [[r["method"], json.dumps(r["params"]), r["alignment"], r["scenario"],
             r.get("accuracy", r.get("deid_rate", "-")), r.get("accuracy_before", "-")]
            for r in lk["reversible_metrics"]]
    lines.append(md_table(["method", "params", "alignment", "scenario", "accuracy / deid_rate",
                           "accuracy before"], rows))
    lines += ["", "## Seed 000's recoverable formula vs the keyed mode", "",
              "SFace, template-aligned at the original's landmarks; `self match` = the face is matched to "
              "its own original at SFace's threshold. PSNR inside the painted region. The attacker of "
              "seed 000 knows the formula (published) and the landmarks (audit record); with the secret "
              "key it guesses the public mean face. The keyed-mode attacker has the output and the "
              "payload but no key.", ""]
    rows = [[k, v["n_faces"], v["psnr_regions_legit"], v["psnr_regions_attacker"], v["sface_self_match_deid"],
             v["sface_self_match_legit_recovery"], v["sface_self_match_attacker"]]
            for k, v in res["seed000"].items() if isinstance(v, dict)]
    lines.append(md_table(["mode", "faces", "PSNR recovered (key holder)", "PSNR recovered (attacker)",
                           "self match de-identified", "self match key holder", "self match attacker"], rows))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--slow-images", type=int, default=40)
    ap.add_argument("--video-frames", type=int, default=60)
    ap.add_argument("--slow-video-frames", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--seed000-images", type=int, default=200)
    ap.add_argument("--only", default=None, help="comma list of parts: images,video,leakage,seed000")
    ap.add_argument("--methods", default=None,
                    help="comma list of methods for images/video (merged into the existing results)")
    args = ap.parse_args(argv)
    set_threads(1)
    data = require_data("lfw").parent
    clip = require_data("video", "short_hamilton_clip.mp4")
    from facedeid.keys import MasterKey
    from facedeid.pipeline import Anonymizer
    from facedeid.io.images import read_image

    parts = set((args.only or "images,video,leakage,seed000").split(","))
    methods = args.methods.split(",") if args.methods else None
    if methods and not args.only:
        ap.error("--methods adds methods to existing results: give --only images,video too")
    key = MasterKey.from_bytes(os.urandom(32))
    results: dict[str, Any] = {"config": vars(args), "load_average_start": os.getloadavg()}
    previous = Path(__file__).resolve().parent / "results" / "keys.json"
    if args.only and previous.exists():            # keep the parts not re-run
        old = json.loads(previous.read_text())
        results.update({k: v for k, v in old.items() if k in ("images", "video", "leakage", "seed000")})
        results["config_of_kept_parts"] = old.get("config")
    with tempfile.TemporaryDirectory(prefix="bench_keys_") as t:
        tmp = Path(t)
        paths = lfw_subset(data, max(args.images, args.seed000_images))
        det = Anonymizer("blur")
        t0 = time.perf_counter()
        faces = []
        for p in paths:
            px = read_image(p).pixels
            faces.append(det.add_landmarks(px, det.detect(px)))
        results["detection"] = {"images": len(paths), "faces": sum(len(f) for f in faces),
                                "no_face": sum(1 for f in faces if not f),
                                "seconds": round(time.perf_counter() - t0, 1)}
        print(f"detected {results['detection']}", flush=True)
        if "images" in parts:
            new = bench_images(paths[:args.images], faces[:args.images], key, tmp, args.slow_images,
                               methods)
            results["images"] = {**results.get("images", {}), **new} if methods else new
        slow = {m for m, s in results.get("images", {}).items()
                if isinstance(s, dict) and s.get("per_image_anonymize_s", 0) > SLOW_S}
        if "video" in parts:
            new = bench_video(clip, key, tmp, args.video_frames, args.slow_video_frames, slow, methods)
            results["video"] = {**results.get("video", {}), **new} if methods else new
        if "leakage" in parts:
            results["leakage"] = bench_leakage(data, key, tmp, args.pairs)
            print(f"leakage: identical={results['leakage']['records_identical']}", flush=True)
        if "seed000" in parts:
            results["seed000"] = bench_seed000(paths[:args.seed000_images], faces[:args.seed000_images],
                                               key, tmp, data)
            print(json.dumps(results["seed000"], indent=1), flush=True)
    results["load_average_end"] = os.getloadavg()
    have = {k for k in ("images", "video", "leakage", "seed000") if k in results}
    md = markdown(results, args) if have == {"images", "video", "leakage", "seed000"} else None
    out = write_results("bench_keys", results, md,
                        packages=["facedeid", "numpy", "cryptography", "pillow", "av", "onnxruntime"])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
