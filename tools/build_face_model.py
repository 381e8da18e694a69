"""Build ``src/facedeid/data/face_model.npz`` (mean shape, eigenfaces) from LFW.

    python tools/build_face_model.py [--data DIR] [--out FILE] [--size 64] [--components 100]

Reproducible: the same LFW folder gives the same model (images are taken in
sorted order, no randomness; the only inputs are the images, the pinned
detector and the pinned 68-point predictor).  See docs/MODELS.md ("Face
model") for provenance and docs/AVERAGING.md for what each artefact is.

Which faces.  LFW View 1 *DevTrain* (``$FACEDEID_DATA/lfw``).  Every identity
named in ``pairsDevTrain.txt`` is **excluded**, so the evaluation pairs
(`facedeid evaluate --pairs pairsDevTrain.txt`) never contain a person the
model was built from; of each remaining identity only its first image (sorted
file name) is used, so every face in the model is a distinct person.

What ships.  Only aggregate statistics over all those people: the mean
68-point shape, the mean shape-free texture, the leading principal components
and their variances.  No individual's face, landmarks or coefficients are
written.  :func:`component_dominance` measures, for every component, the
largest share of its variance that one single person contributes; the build
fails if any exceeds ``--max-dominance`` (so no component is "one person's
face"), and the value is written into the model's metadata.

The script is modular - one function per artefact - so that other artefacts
(e.g. the pool of k-averaged faces of the k-Same methods) can be added by a
function that takes the same per-face arrays (:class:`FaceSet`) and returns
named arrays for :func:`write_model`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "facedeid" / "data" / "face_model.npz"
MODEL_FORMAT = "facedeid-face-model/1"


# ------------------------------------------------------------------ selection
def pair_identities(pairs_file: Path) -> set[str]:
    """Every identity named in an LFW pairs file."""
    names: set[str] = set()
    for line in pairs_file.read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            names.add(parts[0])
        elif len(parts) == 4:
            names.update((parts[0], parts[2]))
    return names


def select_images(images_root: Path, exclude: set[str], per_person: int = 1) -> list[Path]:
    """The first ``per_person`` images (sorted) of every identity not in ``exclude``, sorted."""
    out = []
    for person in sorted(p for p in images_root.iterdir() if p.is_dir()):
        if person.name in exclude:
            continue
        files = sorted(f for f in person.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
        out.extend(files[:per_person])
    return out


# ------------------------------------------------------------------ landmarks
@dataclass
class FaceSet:
    """Per-face arrays of the selected images (never written to the model).

    ``paths[i]`` has 68-point ``landmarks[i]`` in its own pixels.
    """

    paths: list[Path]
    landmarks: np.ndarray  # (N, 68, 2)


def central_face(faces, width: int, height: int):
    """The face an LFW image is about: the largest among those near the centre."""
    if not faces:
        return None
    c = np.array([width / 2, height / 2])

    def key(f):
        d = np.hypot(*(np.asarray(f.center) - c))
        return (d > 0.2 * min(width, height), -f.area)

    return min(faces, key=key)


def detect_landmarks(paths: list[Path], cache: Path | None = None, log=print) -> FaceSet:
    """68-point landmarks of the central face of each image (images without one dropped).

    Uses the project's default detector and the dlib 68-point predictor;
    results are cached in ``cache`` (an ``.npz`` keyed by the file list).
    """
    from facedeid.detect import get_detector
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.landmarks.dlib68 import Dlib68Predictor

    key = hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]
    if cache is not None:
        f = cache / f"landmarks_{key}.npz"
        if f.is_file():
            z = np.load(f, allow_pickle=False)
            keep = z["keep"]
            return FaceSet([p for p, k in zip(paths, keep) if k], z["landmarks"])
    det = get_detector("default")
    pred = Dlib68Predictor()
    keep = np.zeros(len(paths), bool)
    pts = []
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        rgb = load_rgb(path)
        face = central_face(det.detect(rgb), rgb.shape[1], rgb.shape[0])
        if face is not None:
            pts.append(pred.predict(rgb, face))
            keep[i] = True
        if log and (i + 1) % 250 == 0:
            log(f"  landmarks {i + 1}/{len(paths)} ({time.perf_counter() - t0:.0f} s)")
    lm = np.asarray(pts, np.float64).reshape(-1, 68, 2)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"landmarks_{key}.npz", keep=keep, landmarks=lm)
    return FaceSet([p for p, k in zip(paths, keep) if k], lm)


# ------------------------------------------------------------------ mean shape
def procrustes_mean(shapes: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Generalised Procrustes mean of ``(N, 68, 2)`` shapes (similarity-aligned, unit size).

    Returns a centred shape of unit RMS radius, rotated so that the eye
    centres are level (the subject's right eye, points 36-41, on the left).
    """
    from facedeid.landmarks.align import similarity_matrix, transform_points

    def normalise(s):
        s = s - s.mean(axis=0)
        return s / np.sqrt((s ** 2).sum(axis=1).mean())

    ref = normalise(shapes[0])
    for _ in range(iterations):
        aligned = np.stack([transform_points(similarity_matrix(s, ref), s) for s in shapes])
        new = normalise(aligned.mean(axis=0))
        # keep the eyes level so the reference does not drift in rotation
        eye_r, eye_l = new[36:42].mean(axis=0), new[42:48].mean(axis=0)
        ang = np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0])
        ca, sa = np.cos(-ang), np.sin(-ang)
        new = new @ np.array([[ca, sa], [-sa, ca]])
        if np.abs(new - ref).max() < 1e-9:
            ref = new
            break
        ref = new
    return ref


def mean_shape_unit(shapes: np.ndarray) -> dict[str, np.ndarray]:
    """Artefact ``mean_shape``: the Procrustes mean placed in the unit frame.

    See :func:`facedeid.landmarks.align.place_in_frame` for the placement
    (margins); ``canonical_landmarks(size) = mean_shape * size``.
    """
    from facedeid.landmarks.align import place_in_frame

    return {"mean_shape": place_in_frame(procrustes_mean(shapes))}


# ------------------------------------------------------------------ eigenfaces
def shape_free_textures(faces: FaceSet, mean_shape: np.ndarray, size: int, log=print) -> np.ndarray:
    """``(N, size, size, 3)`` float32 textures in [0, 1], each warped to the mean shape."""
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.landmarks.align import shape_free

    out = np.empty((len(faces.paths), size, size, 3), np.float32)
    for i, (path, lm) in enumerate(zip(faces.paths, faces.landmarks)):
        out[i] = shape_free(load_rgb(path), lm, size, mean_shape=mean_shape * size) / 255.0
        if log and (i + 1) % 500 == 0:
            log(f"  textures {i + 1}/{len(faces.paths)}")
    return out


def pca(data: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of ``(N, D)`` rows: mean, components ``(K, D)``, variances, coefficients.

    Components are orthonormal rows, sorted by decreasing variance; their
    signs are fixed (largest-magnitude entry positive) so builds are identical.
    """
    x = np.asarray(data, np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    # N << D: eigen-decompose the N x N Gram matrix (Turk and Pentland's trick)
    gram = xc @ xc.T
    w, v = np.linalg.eigh(gram)
    order = np.argsort(w)[::-1][:n_components]
    w, v = np.maximum(w[order], 0.0), v[:, order]
    comps = (xc.T @ v) / np.sqrt(np.maximum(w, 1e-12))
    comps = comps.T
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    comps *= signs[:, None]
    coeffs = xc @ comps.T
    var = w / (len(x) - 1)
    return mean, comps, var, coeffs


def component_dominance(coeffs: np.ndarray) -> np.ndarray:
    """Per component: the largest share of its variance that one training face contributes.

    ``max_i c_ik^2 / sum_i c_ik^2``.  1/N means evenly spread; 1 would mean the
    component is one person's face.
    """
    sq = np.asarray(coeffs, np.float64) ** 2
    return sq.max(axis=0) / np.maximum(sq.sum(axis=0), 1e-300)


def eigenfaces(textures: np.ndarray, n_components: int, max_dominance: float,
               log=print) -> tuple[dict[str, np.ndarray], dict]:
    """Artefact ``texture_*``: mean texture and principal components (float16).

    Returns the arrays and metadata (explained variance, dominance).
    Raises ``SystemExit`` if a component is dominated by one face.
    """
    n, h, w, c = textures.shape
    if n_components >= n // 5:
        raise SystemExit(f"{n_components} components from {n} faces: use at most {n // 5 - 1}")
    mean, comps, var, coeffs = pca(textures.reshape(n, -1), n_components)
    total = float(((textures.reshape(n, -1) - mean) ** 2).sum() / (n - 1))
    dom = component_dominance(coeffs)
    if dom.max() > max_dominance:
        raise SystemExit(f"component {int(dom.argmax())} has {dom.max():.3f} of its variance "
                         f"from one face (limit {max_dominance}): use fewer components")
    norms = np.sqrt((coeffs ** 2).sum(axis=1))
    meta = {
        "n_faces": int(n), "texture_size": int(h), "n_components": int(n_components),
        "explained_variance_ratio": float(var.sum() / total),
        "max_dominance": float(dom.max()), "mean_dominance": float(dom.mean()),
        "coefficient_norm_median": float(np.median(norms)),
        "coefficient_norm_p10_p90": [float(np.percentile(norms, 10)), float(np.percentile(norms, 90))],
    }
    if log:
        log(f"  eigenfaces: {n_components} components explain {meta['explained_variance_ratio']:.3f} "
            f"of the variance; max single-face share of a component {dom.max():.4f}")
    arrays = {
        "texture_mean": mean.reshape(h, w, c).astype(np.float16),
        "texture_components": comps.reshape(n_components, h, w, c).astype(np.float16),
        "texture_variances": var.astype(np.float32),
    }
    return arrays, meta


# ------------------------------------------------------------------ k-Same pool
def ksame_pool(faces: FaceSet, textures: np.ndarray, mean_shape: np.ndarray, k: int,
               max_entries: int | None, log=print) -> tuple[dict[str, np.ndarray], dict]:
    """Artefact ``pool_*``: faces that are each the average of >= ``k`` distinct people.

    Formed by the k-Same grouping itself over the model's faces (one per person);
    see :mod:`facedeid.ksame.pool`.  Used by the k-Same methods when a photo or
    folder holds fewer than k people and no gallery is given.
    """
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.ksame.pool import build_pool, pool_encodings

    aligned, shapes = pool_encodings(lambda i: load_rgb(faces.paths[i]), faces.landmarks,
                                     mean_shape, textures.shape[1], log=log)
    arrays, meta = build_pool(textures, aligned, shapes, [p.parent.name for p in faces.paths],
                              k=k, max_entries=max_entries)
    if log:
        log(f"  k-Same pool: {meta['n_entries']} faces, each the average of >= {k} people "
            f"({meta['n_people']} people in all)")
    return arrays, meta


def membership_signal(train_textures: np.ndarray, heldout_textures: np.ndarray,
                      mean: np.ndarray, comps: np.ndarray) -> dict:
    """How well the shipped eigenfaces tell a training face from a new one.

    The privacy risk of shipping principal components is membership
    inference: a training face is reconstructed slightly better than a new
    one.  Returns the mean reconstruction residual (RMS, [0, 1] scale) of both
    sets and the AUC of the best attacker that thresholds the residual (0.5 =
    chance, 1 = certain).
    """
    def resid(t):
        x = t.reshape(len(t), -1).astype(np.float64) - mean
        r = x - (x @ comps.T) @ comps
        return np.sqrt((r ** 2).mean(axis=1))

    a, b = resid(train_textures), resid(heldout_textures)
    allv = np.concatenate([a, b])
    ranks = np.empty(len(allv))
    ranks[np.argsort(allv, kind="mergesort")] = np.arange(1, len(allv) + 1)
    auc = (ranks[len(a):].sum() - len(b) * (len(b) + 1) / 2) / (len(a) * len(b))
    return {"membership_auc": float(auc), "residual_train": float(a.mean()),
            "residual_heldout": float(b.mean()), "n_train_checked": len(a), "n_heldout": len(b)}


def heldout_images(images_root: Path, pair_names: set[str], n: int) -> list[Path]:
    """First image of the first ``n`` pair identities (sorted): people the model never saw."""
    out = []
    for name in sorted(pair_names)[:n]:
        files = sorted((images_root / name).glob("*.jpg"))
        if files:
            out.append(files[0])
    return out


# ------------------------------------------------------------------ writing
def write_model(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write the model atomically (compressed npz with a JSON ``meta`` entry)."""
    from facedeid.io.atomic import atomic_output

    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


def main(argv: list[str] | None = None) -> int:
    from facedeid.config import cache_dir, data_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default: FACEDEID_DATA)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--size", type=int, default=64, help="shape-free texture size in pixels")
    ap.add_argument("--components", type=int, default=100)
    ap.add_argument("--max-dominance", type=float, default=0.05)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N images (testing)")
    ap.add_argument("--heldout", type=int, default=300,
                    help="evaluation-pair people used to measure the membership signal")
    ap.add_argument("--pool-k", type=int, default=10,
                    help="k-Same pool: people averaged into each pool face (default 10)")
    ap.add_argument("--pool-size", type=int, default=100,
                    help="k-Same pool: faces kept (default 100; 0 = no pool)")
    args = ap.parse_args(argv)

    lfw = (args.data or data_dir()) / "lfw"
    exclude = pair_identities(lfw / "pairsDevTrain.txt")
    paths = select_images(lfw / "images", exclude)[: args.limit]
    print(f"{len(paths)} images (one per identity, {len(exclude)} pair identities excluded)")
    faces = detect_landmarks(paths, cache=cache_dir() / "face_model")
    print(f"{len(faces.paths)} faces with landmarks")

    arrays: dict[str, np.ndarray] = {}
    arrays.update(mean_shape_unit(faces.landmarks))
    textures = shape_free_textures(faces, arrays["mean_shape"], args.size)
    tex_arrays, tex_meta = eigenfaces(textures, args.components, args.max_dominance)
    arrays.update(tex_arrays)
    # privacy check: membership inference from the shipped components (recorded, not shipped data)
    held = detect_landmarks(heldout_images(lfw / "images", exclude, args.heldout),
                            cache=cache_dir() / "face_model")
    n = len(held.paths)
    mean = tex_arrays["texture_mean"].astype(np.float64).reshape(-1)
    comps = tex_arrays["texture_components"].astype(np.float64).reshape(args.components, -1)
    comps = np.linalg.qr(comps.T)[0].T
    tex_meta.update(membership_signal(textures[:: max(1, len(textures) // n)][:n],
                                      shape_free_textures(held, arrays["mean_shape"], args.size),
                                      mean, comps))
    print(f"  membership AUC {tex_meta['membership_auc']:.3f} (0.5 = chance)")
    pool_meta = None
    if args.pool_size > 0:
        pool_arrays, pool_meta = ksame_pool(faces, textures, arrays["mean_shape"], args.pool_k,
                                            args.pool_size)
        arrays.update(pool_arrays)
    meta = {
        "format": MODEL_FORMAT,
        "source": "LFW View 1 DevTrain, deep-funneled (umass-vis-lfw @ 2a620cd8)",
        "selection": "first image of every identity not named in pairsDevTrain.txt",
        "n_images_selected": len(paths), "n_faces": len(faces.paths),
        "detector": "facedeid default (yunet-tiled)", "landmarks": "dlib 68-point (iBUG 300-W)",
        "command": "python tools/build_face_model.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        **tex_meta,
        **({"pool": pool_meta} if pool_meta else {}),
    }
    write_model(args.out, arrays, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
