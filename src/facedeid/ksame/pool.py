"""Building the shipped pool of k-averaged faces (used by ``tools/build_face_model.py``).

The k-Same methods need at least ``k`` people to average.  A single photo (or a
folder with fewer than k people, and no ``--gallery``) has not got them, so the
package ships a pool of faces that are **each the average of at least k distinct
LFW people** - never an individual's face.  A face is then painted with the
average of the pool entries nearest to it (:func:`facedeid.ksame.faces.pool_targets`).

How the pool is made (:func:`build_pool`), from the face model's training faces
(one image per LFW identity, identities of the evaluation pairs excluded):

1. every face is encoded as its shape-free texture (64 px, the model's), its
   similarity-aligned image (64 px) and its similarity-normalised 68-point shape;
2. the faces are grouped with the k-Same algorithm itself
   (:func:`facedeid.ksame.grouping.ksame_groups`, distance on the textures; every
   group holds >= k different people, and no face is in two groups);
3. each group's average texture, aligned image and shape is one pool entry
   (``pool_texture``, ``pool_aligned`` as uint8, ``pool_shape`` float32 in the unit
   frame, ``pool_people`` = people averaged); at most ``max_entries`` are kept
   (the first groups formed; the k-Same seed order is seeded, so the build is
   reproducible).

:func:`check_pool` verifies the privacy property before anything is written: every
entry averages >= k distinct people and no person is in two entries.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .grouping import ksame_groups


def pool_encodings(load_rgb: Callable[[int], np.ndarray], landmarks: np.ndarray,
                   mean_shape: np.ndarray, size: int = 64, log=print
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(aligned (N, size, size, 3) float32 in [0, 1], shapes (N, 68, 2) unit frame)``.

    ``load_rgb(i)`` returns face ``i``'s image; ``landmarks[i]`` its 68 points;
    ``mean_shape`` is the model's mean shape in the unit frame.
    """
    from types import SimpleNamespace

    from ..landmarks.align import align_face

    model = SimpleNamespace(mean_shape=np.asarray(mean_shape, np.float64))
    n = len(landmarks)
    aligned = np.empty((n, size, size, 3), np.float32)
    shapes = np.empty((n, 68, 2), np.float64)
    for i in range(n):
        al = align_face(load_rgb(i), np.asarray(landmarks[i], np.float64), size, model=model)
        aligned[i] = al.image.astype(np.float32) / 255.0
        shapes[i] = (al.landmarks + 0.5) / size
        if log and (i + 1) % 500 == 0:
            log(f"  pool encodings {i + 1}/{n}")
    return aligned, shapes


def build_pool(textures: np.ndarray, aligned: np.ndarray, shapes: np.ndarray,
               identities: Sequence[str], k: int = 10, max_entries: int | None = None,
               seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """The pool arrays and their metadata (see the module docstring).

    Args:
        textures: ``(N, S, S, 3)`` shape-free textures in [0, 1].
        aligned: ``(N, S, S, 3)`` similarity-aligned faces in [0, 1].
        shapes: ``(N, 68, 2)`` normalised shapes (unit frame).
        identities: the person of each face (k counts people).
        k: people per entry (>= 2).
        max_entries: keep at most this many entries (None: all).
    """
    if k < 2:
        raise ValueError(f"the pool must average at least 2 people per entry, got k={k}")
    n = len(textures)
    groups = ksame_groups(np.asarray(textures, np.float32).reshape(n, -1), k,
                          identities=list(identities), seed=seed)
    if max_entries is not None:
        groups = groups[:max_entries]
    tex, ali, shp, people, members = [], [], [], [], []
    for g in groups:
        idx = list(g.members)
        tex.append(np.asarray(textures, np.float64)[idx].mean(axis=0))
        ali.append(np.asarray(aligned, np.float64)[idx].mean(axis=0))
        shp.append(np.asarray(shapes, np.float64)[idx].mean(axis=0))
        people.append(g.n_people)
        members.append(idx)

    def u8(a):
        return np.clip(np.rint(np.asarray(a) * 255.0), 0, 255).astype(np.uint8)

    arrays = {"pool_texture": u8(tex), "pool_aligned": u8(ali),
              "pool_shape": np.asarray(shp, np.float32), "pool_people": np.asarray(people, np.int16)}
    meta = {"k": int(k), "n_entries": len(groups), "n_people": int(sum(people)),
            "min_people_per_entry": int(min(people)) if people else 0,
            "max_single_person_weight": float(max(1.0 / p for p in people)) if people else 0.0,
            "grouping": "k-Same (facedeid.ksame.grouping) on shape-free textures, seed %d" % seed}
    check_pool(arrays, members, list(identities), k)
    return arrays, meta


def check_pool(arrays: dict[str, np.ndarray], members: Sequence[Sequence[int]],
               identities: Sequence[str], k: int) -> None:
    """Raise ``AssertionError`` unless every entry averages >= k distinct people and no
    person is in two entries (so no entry is, or is dominated by, one person's face)."""
    seen: set[str] = set()
    for e, idx in enumerate(members):
        people = {identities[i] for i in idx}
        if len(people) < k:
            raise AssertionError(f"pool entry {e} averages {len(people)} people (< k={k})")
        if people & seen:
            raise AssertionError(f"pool entry {e} shares a person with an earlier entry")
        seen |= people
    if len(arrays["pool_people"]) != len(members):
        raise AssertionError("pool arrays and groups differ in length")


__all__ = ["pool_encodings", "build_pool", "check_pool"]
