"""The registered k-Same methods: ``ksame-pixel``, ``ksame-eigen``, ``ksame-m``.

Each is a dataset method (:class:`~facedeid.methods.base.BatchHooks`): the
pipeline encodes every face of the set, :func:`assign` groups them with the
k-Same algorithm (:mod:`.grouping`) and each face is painted with its group's
average (:mod:`.faces`).  Where the set holds fewer than ``k`` people, the faces
are completed from the user's gallery (``gallery``, a folder; see
:mod:`facedeid.batch`) or, without one, painted with the shipped pool of
k-averaged LFW faces.

Parameters (``-p NAME=VALUE``; ``k`` is the strength, ``--k``/``--strength``):

``k``        people averaged into every output (default 10; larger = stronger).
``gallery``  folder of extra faces that may complete groups (default none).
``size``     aligned frame / texture size in pixels (pixel, m; default 128).
``components``  eigenfaces used (eigen; default all of the model's).
``color``    ``none`` / ``mean`` / ``meanstd`` / ``shading``: match the painted face's Lab
             colour statistics to the target's (default ``none`` for pixel,
             ``shading`` for eigen, ``meanstd`` for m); ``shading`` also takes the
             target's low-frequency lightness (its lighting and shadows) over the
             average's texture.
``shading``  (color=shading) Gaussian sigma of that low-pass, x sqrt(mask area) (default 0.2).
``shape_weight``  (m) 0 = the target's own landmarks (default), 1 = the group's average shape.
``region``   ``face_outline`` (jaw line and eyebrows, default) or ``face_hull`` (seed 004's mask).
``forehead`` raise the eyebrow points by this share of the chin-to-brow height (default 0.3;
             0.45 for eigen).
``smooth``   boundary smoothing, Gaussian sigma / sqrt(mask area) (default 0.04).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np

from ..methods.base import BatchHooks, CannotPaint, Method
from ..types import Face
from . import faces as F
from .grouping import count_people, ksame_groups


def _encode(kind: str, rgb: np.ndarray, face: Face, params: dict[str, Any]) -> F.Sample:
    F.check_params(kind, params)
    if face.landmarks68 is None:
        raise CannotPaint("no 68-point landmarks")
    if not F.face_size_ok(face.landmarks68):
        raise CannotPaint(f"face too small to average (eye distance < {F.MIN_IOD:g} px)")
    try:
        return F.encode(kind, rgb, face.landmarks68, params)
    except ValueError as exc:  # degenerate landmarks (coincident or collinear points)
        raise CannotPaint(f"cannot align the face: {exc}") from None


def assign(kind: str, samples: Sequence[F.Sample], params: dict[str, Any],
           identities: Sequence[Any] | None = None,
           gallery: tuple[Sequence[F.Sample], Sequence[Any]] | None = None,
           seed: int = 0) -> list[dict[str, Any]]:
    """k-Same over ``samples`` (plus the gallery's faces as fillers); extras per sample.

    * the set (with the gallery) holds >= k people: k-Same groups; each face gets
      its group's average (``source`` ``set`` or ``set+gallery``);
    * fewer, and no gallery: each face gets the average of the shipped pool's
      nearest k-averaged faces (``source`` ``pool``).

    Raises:
        NotEnoughFacesError: set and gallery together hold fewer than k people.
    """
    F.check_params(kind, params)
    k = int(params["k"])
    n = len(samples)
    if n == 0:
        return []
    ids = list(identities) if identities is not None else [("face", i) for i in range(n)]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} identities for {n} samples")
    if gallery is not None and len(gallery[0]):
        g_samples, g_ids = list(gallery[0]), [("gallery", str(i)) for i in gallery[1]]
        pool_all = list(samples) + g_samples
        groups = ksame_groups(np.stack([s.feature for s in pool_all]), k,
                              identities=[str(i) for i in ids + g_ids],
                              cover=[True] * n + [False] * len(g_samples), seed=seed)
        targets = F.group_targets(groups, pool_all, n, k, "set+gallery")
    elif count_people([str(i) for i in ids], n) >= k:
        groups = ksame_groups(np.stack([s.feature for s in samples]), k,
                              identities=[str(i) for i in ids], seed=seed)
        targets = F.group_targets(groups, samples, n, k, "set")
    else:
        targets = F.pool_targets(samples, F.load_pool(kind, params), k)
    return [{"target": t, "record": t.info} for t in targets]


def _paint(kind: str, crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    target = params.get("target")
    if target is None:
        raise CannotPaint(params.get("unusable") or "not in a k-Same group (no target given)")
    if face.landmarks68 is None:
        raise CannotPaint("no 68-point landmarks")
    return F.render(kind, crop, face.landmarks68, target, params)


_COMMON = {"k": 10, "gallery": None, "region": "face_outline", "forehead": 0.3, "smooth": 0.04,
           "shading": 0.2}
_STRENGTH_DOC = ("k = number of distinct people averaged into every output face (k-Same; "
                 "re-identification within the set is bounded by 1/k); larger = stronger")


def _method(name: str, kind: str, extra: dict[str, Any], what: str) -> Method:
    return Method(
        name=name,
        fn=partial(_paint, kind),
        defaults={**_COMMON, **extra},
        strength="k",
        strength_doc=f"{_STRENGTH_DOC}. {what}",
        needs_landmarks68=True,
        batch=BatchHooks(encode=partial(_encode, kind), assign=partial(assign, kind)),
    )


KSAME_PIXEL = _method("ksame-pixel", "pixel", {"size": F.DEFAULT_SIZE, "color": "none"},
                      "Averages similarity-aligned pixels (k-Same-Pixel).")
KSAME_EIGEN = _method("ksame-eigen", "eigen", {"components": None, "color": "shading", "forehead": 0.45},
                      "Averages eigenface coefficients of shape-free textures (k-Same-Eigen).")
KSAME_M = _method("ksame-m", "m", {"size": F.DEFAULT_SIZE, "color": "meanstd", "shape_weight": 0.0},
                  "Averages shape-free textures, painted on the target's own landmarks (k-Same-M).")

__all__ = ["KSAME_PIXEL", "KSAME_EIGEN", "KSAME_M", "assign"]
