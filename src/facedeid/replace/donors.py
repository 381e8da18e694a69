"""Donor faces that belong to nobody, and the choice of a donor for each target face.

A :class:`Donor` is an RGB face image with its 68 landmarks in that image's
pixels.  Three sources (see docs/REPLACE.md):

``averaged`` (default)
    the pool of k-averaged faces shipped in the face model
    (:mod:`facedeid.facemodel`): each is the k-Same-M average of at least k
    distinct LFW people (shape-free texture on the mean shape), so it is nobody's
    face.  Built by ``tools/build_face_model.py`` from people who are **not** in the
    evaluation pairs.
``photos``
    ``--donors DIR``: consented photos a user supplies; each is detected,
    landmarked and aligned (one face per photo: the largest).
``gan``
    (optional, torch extra) synthetic 64x64 faces of the ``gan-face-generate``
    DCGAN (trained on DigiFace-1M, synthetic people; research terms).

Choosing a donor (:func:`rank_donors`).  For a target face the donors are
ranked by

1. **identity dissimilarity** (a hard filter): the attacker's embedding distance
   from the donor to the target *and to every other face in the image* must be
   above the attacker's threshold times ``1 + margin``.  Donors failing it are
   ranked after all others (used only if nothing passes).
2. **pose and shape similarity**: the mean distance of the two faces' 68
   landmarks after a similarity alignment (Procrustes), in units of the
   inter-ocular distance: a donor whose face has the same yaw, roll and
   expression warps with less distortion.  Averaged donors all have the mean
   shape, so for them this term is constant.
3. **a random draw** (``rng``, from ``--seed`` and the face's index, or its track
   id in video) breaks ties among donors of similar shape: ``score = shape
   distance + jitter * u`` with ``u`` uniform in [0, 1).  Different people get
   different draws, hence different donors (diverse), and one video track gets
   the same draw in every frame, hence the same donor.

:func:`assign_donors` ranks donors for all faces of one image and makes the
first choices distinct across faces while the pool allows it.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import FaceDeidError, InputError

log = logging.getLogger(__name__)

SOURCES = ("averaged", "photos", "gan")
PHOTO_ALIGN_SIZE = 256
"""Side of the aligned crop kept for each donor photo (pixels)."""
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True, eq=False)
class Donor:
    """One donor face.

    Attributes:
        name: a label for audits and figures (``avg-03``, the file name, ``gan-7``).
        image: RGB uint8 face image (the face fills most of it).
        landmarks: ``(68, 2)`` points of the face in ``image`` pixels.
        source: ``averaged``, ``photos`` or ``gan``.
        k: how many distinct people an averaged donor averages (None otherwise).
        shape: the donor's own 68-point geometry in ``image`` pixels, when it differs
            from ``landmarks`` (an averaged donor's texture lies on the mean shape,
            its geometry is the average of its people's shapes); None: ``landmarks``.
    """

    name: str
    image: np.ndarray
    landmarks: np.ndarray
    source: str
    k: int | None = None
    shape: np.ndarray | None = None

    @property
    def geometry(self) -> np.ndarray:
        """The donor's proportions (``shape``, else ``landmarks``)."""
        return self.landmarks if self.shape is None else self.shape

    def landmarks5(self) -> np.ndarray:
        """The 5 points (facedeid order) derived from the 68: eye centres, nose tip, mouth corners."""
        return landmarks5_from_68(self.landmarks)


def landmarks5_from_68(lm68: np.ndarray) -> np.ndarray:
    """``(5, 2)`` points in facedeid order from 68 iBUG points.

    Eye centres (mean of each eye's 6 points; the one with the smaller x first),
    nose tip (30), mouth corners (48, 54; smaller x first).
    """
    p = np.asarray(lm68, np.float64)
    e1, e2 = p[36:42].mean(axis=0), p[42:48].mean(axis=0)
    m1, m2 = p[48], p[54]
    if e1[0] > e2[0]:
        e1, e2 = e2, e1
    if m1[0] > m2[0]:
        m1, m2 = m2, m1
    return np.stack([e1, e2, p[30], m1, m2])


def inter_ocular(lm68: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45)."""
    p = np.asarray(lm68, np.float64)
    return float(np.hypot(*(p[45] - p[36])))


def shape_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance of two 68-point shapes after similarity alignment of ``a`` onto ``b``,
    over ``b``'s inter-ocular distance (0 = same shape and pose)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - ca, b - cb
    # least-squares similarity (complex-number form): b0 ~ s R a0
    za = a0[:, 0] + 1j * a0[:, 1]
    zb = b0[:, 0] + 1j * b0[:, 1]
    denom = float((np.abs(za) ** 2).sum())
    if denom <= 0:
        return math.inf
    coef = (np.conj(za) * zb).sum() / denom
    fit = coef * za
    err = np.abs(fit - zb).mean()
    return float(err / max(inter_ocular(b), 1e-9))


@dataclass(eq=False)
class DonorPool:
    """A set of donors plus, lazily, their embeddings per attacker.

    Attributes:
        donors: the donors.
        source: where they came from (``averaged``, ``photos``, ``gan``).
        description: one line for audits and docs.
    """

    donors: tuple[Donor, ...]
    source: str
    description: str = ""
    _emb: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.donors:
            raise FaceDeidError(f"the donor pool ({self.source}) is empty")

    def __len__(self) -> int:
        return len(self.donors)

    def embeddings(self, attacker) -> np.ndarray:
        """``(n, dim)`` embeddings of every donor by ``attacker`` (computed once)."""
        key = attacker.cache_tag
        if key not in self._emb:
            self._emb[key] = np.asarray(attacker.embed_at_many(
                [d.image for d in self.donors], [d.landmarks5() for d in self.donors]), np.float64)
        return self._emb[key]


# --------------------------------------------------------------------------- sources
def averaged_donors(model_path: str | Path | None = None) -> DonorPool:
    """The k-averaged faces of the face model's pool (each the average of >= k people).

    Each donor's image is the pool entry's shape-free texture (on the mean shape,
    landmarks :func:`~facedeid.landmarks.align.canonical_landmarks`); its geometry
    is the entry's average shape.

    Raises:
        ModelNotFoundError: the face model (or its pool of averages) is missing.
    """
    from ..facemodel import load_face_model
    from ..landmarks.align import canonical_landmarks

    model = load_face_model(model_path)
    textures, people, shapes = model.require("pool_texture", "pool_people", "pool_shape")
    size = int(textures.shape[1])
    lm = canonical_landmarks(size, model)
    donors = []
    for i, (tex, k, shp) in enumerate(zip(textures, people, shapes)):
        img = np.asarray(tex)
        if img.dtype != np.uint8:
            img = np.clip(np.rint(np.asarray(img, np.float32) * 255.0), 0, 255).astype(np.uint8)
        donors.append(Donor(name=f"avg-{i:02d}", image=np.ascontiguousarray(img), landmarks=lm,
                            source="averaged", k=int(k),
                            shape=np.asarray(shp, np.float64) * size - 0.5))
    return DonorPool(tuple(donors), "averaged",
                     f"{len(donors)} k-averaged faces (each >= {int(np.min(people))} people) "
                     f"from {model.path.name}")


def donor_from_photo(rgb: np.ndarray, name: str, detector=None, predictor=None,
                     size: int = PHOTO_ALIGN_SIZE) -> Donor:
    """A donor from one photo: its largest face, aligned to the canonical frame at ``size``.

    Raises:
        InputError: no face (or no landmarks) in the photo.
    """
    from ..detect import get_detector
    from ..landmarks.align import align_face
    from ..landmarks.dlib68 import Dlib68Predictor

    detector = detector or get_detector("default")
    predictor = predictor or Dlib68Predictor()
    faces = detector.detect(rgb)
    if not faces:
        raise InputError(f"{name}: no face found in the donor photo")
    face = max(faces, key=lambda f: f.area)
    try:
        lm = np.asarray(predictor.predict(rgb, face), np.float64)
    except Exception as exc:
        raise InputError(f"{name}: no 68-point landmarks on the donor face ({exc})") from None
    aligned = align_face(rgb, lm, size)
    return Donor(name=name, image=np.ascontiguousarray(aligned.image),
                 landmarks=np.asarray(aligned.landmarks, np.float64), source="photos")


def photo_donors(folder: str | Path) -> DonorPool:
    """Donors from every image of ``folder`` (not recursive, sorted by name).

    Photos without a usable face are skipped with a warning; none usable is an error.

    Raises:
        InputError: the folder does not exist or has no usable donor photo.
    """
    from ..io.images import read_image
    from ..imageops import to_rgb8

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"donor folder not found: {root}")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise InputError(f"{root}: no donor photos ({', '.join(sorted(PHOTO_SUFFIXES))})")
    donors, skipped = [], []
    for f in files:
        try:
            donors.append(donor_from_photo(to_rgb8(read_image(f).pixels), f.name))
        except InputError as exc:
            skipped.append(str(exc))
            log.warning("donor skipped: %s", exc)
    if not donors:
        raise InputError(f"{root}: no usable donor photo ({'; '.join(skipped)})")
    return DonorPool(tuple(donors), "photos", f"{len(donors)} donor photos from {root}")


def gan_donors(n: int = 24, seed: int = 0) -> DonorPool:
    """``n`` synthetic faces from the ``gan-face-generate`` DCGAN (needs torch; see docs/REPLACE.md)."""
    from .gan import generate_gan_donors

    return generate_gan_donors(n, seed)


@functools.lru_cache(maxsize=8)
def _load_pool(source: str, path: str | None) -> DonorPool:
    if source == "averaged":
        return averaged_donors(path)
    if source == "photos":
        return photo_donors(path)
    if source == "gan":
        return gan_donors()
    raise ValueError(f"unknown donor source '{source}'; choose one of: {', '.join(SOURCES)}")


def load_pool(donors: str | Path | None) -> DonorPool:
    """The donor pool named by the ``donors`` parameter (loaded once per process).

    ``None``/``"averaged"``: the face model's k-averaged faces; ``"gan"``: synthetic
    GAN faces; anything else: a folder of consented donor photos.
    """
    if donors is None or str(donors) in ("", "averaged"):
        return _load_pool("averaged", None)
    if str(donors) == "gan":
        return _load_pool("gan", None)
    return _load_pool("photos", str(Path(donors).expanduser().resolve()))


# --------------------------------------------------------------------------- choice
@dataclass(frozen=True)
class Ranking:
    """Donors for one target, best first, and why.

    Attributes:
        order: donor indices, best first.
        eligible: per donor, whether it passed the identity filter.
        min_distance: per donor, its smallest attacker distance (over the attacker's
            threshold) to the target or anyone else in the image (``inf`` without embeddings).
        shape: per donor, the shape/pose distance (inter-ocular units).
    """

    order: tuple[int, ...]
    eligible: np.ndarray
    min_distance: np.ndarray
    shape: np.ndarray


def rank_donors(pool: DonorPool, target_landmarks: np.ndarray | None, rng: np.random.Generator,
                *, judges: Sequence[tuple[object, np.ndarray | None, Sequence[np.ndarray]]] = (),
                margin: float = 0.1, jitter: float = 0.15) -> Ranking:
    """Rank the donors of ``pool`` for one target face (see the module docstring).

    Args:
        pool: the donors.
        target_landmarks: the target's 68 points (None: shape term 0).
        rng: the face's random generator (one ``u`` per donor is drawn from it).
        judges: ``(attacker, target_embedding, other_embeddings)`` per attacker that
            judges identity; a donor must pass every one (none: no filter).
        margin: a donor passes when every distance > ``threshold * (1 + margin)``.
        jitter: weight of the random draw against the shape distance.

    ``min_distance`` in the result is the smallest distance over judges, each
    divided by its attacker's threshold (> 1 means "no match").
    """
    n = len(pool)
    u = rng.random(n)
    shape = np.zeros(n)
    if target_landmarks is not None:
        shape = np.array([shape_distance(d.landmarks, target_landmarks) for d in pool.donors])
    min_d = np.full(n, np.inf)
    for attacker, target_embedding, others in judges:
        refs = [e for e in [target_embedding, *others] if e is not None]
        if not refs:
            continue
        d = attacker.distance(pool.embeddings(attacker), np.stack(refs)).min(axis=1)
        min_d = np.minimum(min_d, d / attacker.threshold)
    eligible = min_d > 1.0 + margin
    score = shape + jitter * u
    order = sorted(range(n), key=lambda i: (not eligible[i], score[i]))
    return Ranking(tuple(order), eligible, min_d, shape)


def assign_donors(rankings: Sequence[Ranking]) -> list[tuple[int, ...]]:
    """Per face, its donor order with first choices made distinct across faces.

    Faces are served in order; each takes its best eligible donor not yet taken by
    an earlier face (when the pool is too small, donors repeat).  The rest of each
    face's order follows (for retries).
    """
    taken: set[int] = set()
    out = []
    for r in rankings:
        first = next((i for i in r.order if i not in taken and r.eligible[i]), None)
        if first is None:
            first = next((i for i in r.order if i not in taken), r.order[0])
        taken.add(first)
        out.append((first,) + tuple(i for i in r.order if i != first))
    return out


__all__ = [
    "SOURCES", "Donor", "DonorPool", "Ranking", "landmarks5_from_68", "inter_ocular",
    "shape_distance", "averaged_donors", "donor_from_photo", "photo_donors", "gan_donors",
    "load_pool", "rank_donors", "assign_donors",
]
