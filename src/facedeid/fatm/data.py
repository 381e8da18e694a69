"""Training data of the FATM: aligned real faces, and the same faces with each donor swapped in.

Seed 004 trains one decoder per *face set* -- many images of one consented
donor in many poses, expressions and lightings.  Our donors are nobody (k-averaged
faces, :mod:`facedeid.replace.donors`), and one averaged face is a single image,
so each donor's face set is **made by stage 1**: every real training face with
that donor swapped in by ``--method replace``'s own steps (the donor warped to the
face's landmarks, colour- and light-matched, blended).  A donor's set therefore
shows the donor's face with the poses, expressions and lighting of the real
faces; the decoder learns to draw that donor from the code of any face.  The
real faces form one more set (decoder ``real``): it teaches the shared encoder
what real faces look like (it is never used to de-identify).

Which real faces.  LFW (``$FACEDEID_DATA/lfw``), every identity **not** named in
``pairsDevTrain.txt`` (the evaluation pairs), first images in sorted order, at
most ``limit``: the model never sees a person of the evaluation pairs.

Frame.  Faces are aligned to the canonical 64x64 frame
(:func:`facedeid.landmarks.align.align_face`) and stored on a 72x72 canvas (4 px
margin) so that training can take random 64x64 crops (seed 004: "input face
regions that are slightly larger than 64x64, and then select randomly cropped
64x64 face regions").
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SIZE = 64
MARGIN = 4
CANVAS = SIZE + 2 * MARGIN
TRAIN_SWAP = {"region": "face_outline", "blend": "laplacian", "color": 1.0, "shading": True,
              "smooth": 0.08, "scale": 1.15, "reshape": 1.0, "keep_mouth": True}
"""Stage 1's settings that make the donors' face sets (fixed here, not taken from
``replace``'s defaults, so that retraining gives the same data when those change)."""


@dataclass
class FaceSets:
    """``images[s]``: ``(N, 72, 72, 3)`` uint8 canvases of face set ``s`` (``names[s]``)."""

    names: list[str]
    images: list[np.ndarray]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.names)


def pair_identities(pairs_file: Path) -> set[str]:
    """Every identity named in an LFW pairs file."""
    names: set[str] = set()
    if not pairs_file.is_file():
        return names
    for line in pairs_file.read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            names.add(parts[0])
        elif len(parts) == 4:
            names.update((parts[0], parts[2]))
    return names


def training_images(lfw: Path, limit: int | None = None, per_person: int = 2) -> list[Path]:
    """Up to ``per_person`` images (sorted) of every LFW identity not in the pairs file, sorted;
    the first ``limit``."""
    exclude = pair_identities(lfw / "pairsDevTrain.txt")
    out: list[Path] = []
    for person in sorted(p for p in (lfw / "images").iterdir() if p.is_dir()):
        if person.name in exclude:
            continue
        files = sorted(f for f in person.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
        out.extend(files[:per_person])
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


def canvas_matrix(landmarks68: np.ndarray) -> np.ndarray:
    """2x3 matrix: image -> the 72x72 canvas whose central 64x64 is the canonical frame."""
    from ..landmarks.align import canonical_landmarks, fit_matrix

    m = fit_matrix(np.asarray(landmarks68, np.float64), canonical_landmarks(SIZE), "similarity")
    m = m.copy()
    m[:, 2] += MARGIN
    return m


def _landmarks(paths: list[Path], cache: Path | None) -> tuple[list[Path], np.ndarray]:
    """68 points of the central face of each image (images without one are dropped), cached."""
    from ..detect import get_detector
    from ..evaluate.datasets import load_rgb
    from ..landmarks.dlib68 import Dlib68Predictor

    key = hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]
    f = None if cache is None else cache / f"fatm_landmarks_{key}.npz"
    if f is not None and f.is_file():
        z = np.load(f, allow_pickle=False)
        return [p for p, k in zip(paths, z["keep"]) if k], z["landmarks"]
    det, pred = get_detector("default"), Dlib68Predictor()
    keep = np.zeros(len(paths), bool)
    pts = []
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        rgb = load_rgb(path)
        faces = det.detect(rgb)
        if faces:
            c = np.array([rgb.shape[1] / 2, rgb.shape[0] / 2])
            face = min(faces, key=lambda fc: (np.hypot(*(np.asarray(fc.center) - c))
                                              > 0.2 * min(rgb.shape[:2]), -fc.area))
            try:
                pts.append(pred.predict(rgb, face))
                keep[i] = True
            except Exception:  # no landmarks: the image is not used
                pass
        if (i + 1) % 200 == 0:
            log.info("landmarks %d/%d (%.0f s)", i + 1, len(paths), time.perf_counter() - t0)
    lm = np.asarray(pts, np.float64).reshape(-1, 68, 2)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, keep=keep, landmarks=lm)
    return [p for p, k in zip(paths, keep) if k], lm


def build_face_sets(lfw: Path, donors, limit: int | None = 800, cache: Path | None = None,
                    settings=None) -> FaceSets:
    """The real set and one stage-1 set per donor (see the module docstring).

    Args:
        lfw: the LFW folder (``images/``, ``pairsDevTrain.txt``).
        donors: the :class:`~facedeid.replace.donors.Donor` objects that get decoders.
        limit: at most this many real faces.
        cache: folder for the landmark cache (None: no cache).
        settings: stage 1's :class:`~facedeid.replace.swap.SwapSettings` (default :data:`TRAIN_SWAP`).
    """
    import cv2

    from ..evaluate.datasets import load_rgb
    from ..landmarks.align import transform_points
    from ..replace.swap import SwapSettings, replace_with_donor

    settings = settings or SwapSettings(**TRAIN_SWAP)
    paths, lms = _landmarks(training_images(lfw, limit), cache)
    if not paths:
        raise ValueError(f"no usable training faces under {lfw}")
    real = np.empty((len(paths), CANVAS, CANVAS, 3), np.uint8)
    sets = [np.empty_like(real) for _ in donors]
    t0 = time.perf_counter()
    for i, (path, lm) in enumerate(zip(paths, lms)):
        m = canvas_matrix(lm)
        rgb = load_rgb(path)
        real[i] = cv2.warpAffine(rgb, m, (CANVAS, CANVAS), flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_REPLICATE)
        lm_c = transform_points(m, lm)
        for s, donor in enumerate(donors):
            sets[s][i] = replace_with_donor(real[i], lm_c, donor, settings)
        if (i + 1) % 200 == 0:
            log.info("face sets %d/%d (%.0f s)", i + 1, len(paths), time.perf_counter() - t0)
    return FaceSets(["real"] + [d.name for d in donors], [real] + sets,
                    [str(p) for p in paths])


__all__ = ["SIZE", "MARGIN", "CANVAS", "TRAIN_SWAP", "FaceSets", "pair_identities", "training_images",
           "canvas_matrix", "build_face_sets"]
