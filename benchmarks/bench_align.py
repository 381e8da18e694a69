"""Alignment accuracy and speed: similarity/affine align, warp back, piecewise-affine (shape-free) warps.

    .venv/bin/python -m benchmarks.bench_align [--faces 100]

On the first ``--faces`` LFW images of the evaluation identities (pairsDevTrain
people; none of them is in the face model), with their 68 points (default
detector + dlib):

* **round trip, points**: small white discs drawn on the landmarks are located
  (intensity centroid) after ``align_face`` -> ``warp_back`` and after
  ``shape_free`` -> ``warp_texture_to``; the distance to the landmark is the
  geometric error of the two warps (pixels of the original image);
* **round trip, pixels**: mean absolute difference inside seed 004's mask
  after the two warps (interpolation loss only);
* **speed** (one thread, CPU time of this process, so other jobs on the shared
  machine do not inflate it): ``align_face`` and ``warp_back`` at 128 px,
  ``shape_free`` and ``warp_texture_to`` at 64 and 128 px, ``landmark_mask``,
  and scikit-image's ``PiecewiseAffineTransform`` (estimate + warp, 128 px) for
  comparison.

Writes ``benchmarks/results/align.json`` and ``align.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import md_table, require_data, set_threads, write_results

MARKS = [0, 16, 36, 45, 30, 48, 54, 8]  # far apart (a brow tip is ~9 px from an eye corner)


def eval_faces(lfw: Path, n: int):
    from facedeid.detect import get_detector
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.landmarks.dlib68 import Dlib68Predictor

    names = []
    for line in (lfw / "pairsDevTrain.txt").read_text().splitlines()[1:]:
        p = line.split()
        if len(p) == 3 and p[0] not in names:
            names.append(p[0])
    det, pred = get_detector("default"), Dlib68Predictor()
    out = []
    for name in names:
        path = sorted((lfw / "images" / name).glob("*.jpg"))[0]
        rgb = load_rgb(path)
        faces = det.detect(rgb)
        if not faces:
            continue
        h, w = rgb.shape[:2]
        face = min(faces, key=lambda f: np.hypot(f.center[0] - w / 2, f.center[1] - h / 2))
        out.append((rgb, pred.predict(rgb, face)))
        if len(out) >= n:
            break
    return out


def mark(rgb, pts, radius=2):
    out = (rgb // 3).copy()
    for x, y in pts:
        cv2.circle(out, (int(round(x * 8)), int(round(y * 8))), radius * 8, (255, 255, 255), -1,
                   lineType=cv2.LINE_AA, shift=3)
    return out


def find(img, guess, win=6):
    g = img.astype(np.float64).mean(axis=2)
    x0, y0 = int(round(guess[0])), int(round(guess[1]))
    sub = g[y0 - win:y0 + win + 1, x0 - win:x0 + win + 1]
    wgt = np.clip(sub - 140, 0, None)
    ys, xs = np.mgrid[y0 - win:y0 + win + 1, x0 - win:x0 + win + 1]
    if wgt.sum() == 0:
        return np.array([np.inf, np.inf])
    return np.array([(wgt * xs).sum() / wgt.sum(), (wgt * ys).sum() / wgt.sum()])


def separable(lm, min_px: float = 10.0) -> list[int]:
    """The marks at least ``min_px`` from every other mark (closer discs merge and bias the centroid)."""
    p = lm[MARKS]
    d = np.hypot(*(p[:, None] - p[None, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    return [i for i, m in zip(MARKS, d.min(axis=1)) if m >= min_px]


def round_trips(faces) -> dict:
    from facedeid.landmarks.align import align_face, landmark_mask, shape_free, warp_back, warp_texture_to

    res = {"similarity": [], "affine": [], "piecewise_affine": []}
    pix = {k: [] for k in res}
    for rgb, lm in faces:
        marked = mark(rgb, lm[MARKS])
        inside = landmark_mask(lm, rgb.shape[:2], smooth=0) > 0
        for tr in ("similarity", "affine"):
            al = align_face(marked, lm, 256, tr)
            back = warp_back(al.image, al.matrix, rgb.shape[:2])
            res[tr] += [float(np.hypot(*(find(back, lm[i]) - lm[i]))) for i in separable(lm)]
            b2 = warp_back(align_face(rgb, lm, 256, tr).image, al.matrix, rgb.shape[:2])
            pix[tr].append(float(np.abs(b2.astype(float) - rgb)[inside].mean()))
        back = warp_texture_to(shape_free(marked, lm, 256), lm, rgb.shape[:2])
        res["piecewise_affine"] += [float(np.hypot(*(find(back, lm[i]) - lm[i]))) for i in separable(lm)]
        b2 = warp_texture_to(shape_free(rgb, lm, 256), lm, rgb.shape[:2])
        pix["piecewise_affine"].append(float(np.abs(b2.astype(float) - rgb)[inside].mean()))
    return {k: {"n_points": len(v), "points_px_mean": float(np.mean(v)), "points_px_p99": float(np.percentile(v, 99)),
                "points_px_max": float(np.max(v)), "share_within_1px": float(np.mean(np.array(v) < 1.0)),
                "pixels_mae_inside_mask": float(np.mean(pix[k]))}
            for k, v in res.items()}


def speed(faces, repeat: int = 3) -> dict:
    from skimage.transform import PiecewiseAffineTransform, warp

    from facedeid.landmarks.align import (align_face, canonical_landmarks, landmark_mask, shape_free,
                                          warp_back, warp_texture_to)

    def ms(fn):
        fn(faces[0])
        ts = []
        for f in faces:
            t0 = time.process_time()  # CPU time: the shared machine's load does not inflate it
            for _ in range(repeat):
                fn(f)
            ts.append((time.process_time() - t0) / repeat)
        return 1000 * statistics.median(ts)

    canon = canonical_landmarks(128)
    tex64 = {id(f): shape_free(f[0], f[1], 64) for f in faces}
    tex128 = {id(f): shape_free(f[0], f[1], 128) for f in faces}
    al = {id(f): align_face(f[0], f[1], 128) for f in faces}

    def skimage_paw(f):
        tf = PiecewiseAffineTransform.from_estimate(canon, f[1]) \
            if hasattr(PiecewiseAffineTransform, "from_estimate") else None
        if tf is None:
            tf = PiecewiseAffineTransform()
            tf.estimate(canon, f[1])
        return warp(f[0], tf, output_shape=(128, 128))

    return {
        "align_face_128": ms(lambda f: align_face(f[0], f[1], 128)),
        "warp_back_128": ms(lambda f: warp_back(al[id(f)].image, al[id(f)].matrix, f[0].shape[:2])),
        "shape_free_64": ms(lambda f: shape_free(f[0], f[1], 64)),
        "shape_free_128": ms(lambda f: shape_free(f[0], f[1], 128)),
        "warp_texture_to_64": ms(lambda f: warp_texture_to(tex64[id(f)], f[1], f[0].shape[:2])),
        "warp_texture_to_128": ms(lambda f: warp_texture_to(tex128[id(f)], f[1], f[0].shape[:2])),
        "landmark_mask": ms(lambda f: landmark_mask(f[1], f[0].shape[:2])),
        "skimage_piecewise_affine_128": ms(skimage_paw),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--speed-faces", type=int, default=20)
    args = ap.parse_args(argv)
    set_threads(1)
    lfw = require_data("lfw")
    faces = eval_faces(lfw, args.faces)
    rt = round_trips(faces)
    sp = speed(faces[: args.speed_faces])
    rows = [[k, v["n_points"], v["points_px_mean"], v["points_px_p99"], v["points_px_max"], 100 * v["share_within_1px"],
             v["pixels_mae_inside_mask"]] for k, v in rt.items()]
    md = (f"# Alignment round trips and speed ({len(faces)} LFW faces, 250x250)\n\n"
          "`python -m benchmarks.bench_align`. Points: discs drawn on 8 landmarks (jaw ends, outer eye "
          "corners, nose tip, mouth corners, chin; a mark within 10 px of another is skipped, as the two "
          "discs merge) located after the warp and its inverse (256 px frame); "
          "pixels: mean absolute difference inside seed 004's mask (8-bit levels).\n\n"
          + md_table(["warp", "points", "point error mean px", "p99 px", "max px", "% within 1 px",
                      "pixel MAE inside mask"], rows)
          + "\nSpeed, one thread, median CPU ms per face:\n\n"
          + md_table(["step", "ms"], [[k, v] for k, v in sp.items()]))
    write_results("bench_align", {"n_faces": len(faces), "round_trip": rt, "ms": sp}, md,
                  packages=["facedeid", "numpy", "opencv-python-headless", "scikit-image", "scipy"])
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
