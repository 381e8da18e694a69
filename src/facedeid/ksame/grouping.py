"""The k-Same grouping of Newton, Sweeney and Malin (IEEE TKDE 2005), as a pure function.

k-Same replaces every face of a set by the average of a *group* of faces, and
groups are **consumed**: a face that has been averaged into one group is never
used again.  So each published face stands for at least ``k`` originals, and
the k originals of a group share one de-identified face - which is what bounds
any recognizer's chance of naming the right person at ``1/k`` (within the set).

The algorithm (paper, Fig. 3, with the two refinements below)::

    H <- every face;  groups <- []
    while H still holds a face to cover:
        if H holds fewer than 2k distinct people:  G <- all of H      (remainder)
        else:
            s <- next face of H in a seeded order
            G <- s and its nearest faces in H (feature distance) until G holds
                 k distinct people, at most one image per person
        groups += [G];  H <- H - G

Refinements, both made explicit because the paper leaves them open:

* **Remainder.** When fewer than ``2k`` people remain, they all form the last
  group (the paper's leftover of fewer than k faces joins the previous group,
  which is the same thing: the last group has between k and 2k-1 people).
* **Identities.** k counts *people*, not images (Gross et al. 2005 showed that
  k-Same's bound fails when one person has several images).  When identities
  are known, a group takes at most one image per person while it can, and its
  size is counted in distinct people; without identities every face is taken
  to be a different person.
* **Fillers.** Faces marked ``cover=False`` (a gallery) may be taken into
  groups but never seed one and need not be covered: the user's faces are all
  covered, the gallery only completes groups.

Determinism: the seed order is ``numpy.random.default_rng(seed).permutation``
of the faces to cover and ties in distance go to the lower index, so the same
features, ``k`` and ``seed`` always give the same groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import FaceDeidError


class NotEnoughFacesError(FaceDeidError, ValueError):
    """Fewer than ``k`` distinct people to average (k-Same cannot form one group)."""


@dataclass(frozen=True)
class Group:
    """One k-Same group.

    Attributes:
        members: indices (into the features) of every face averaged in this group.
        n_people: distinct identities among the members (>= k).
        index: position of the group in the grouping (0, 1, ...).
    """

    members: tuple[int, ...]
    n_people: int
    index: int

    def info(self) -> dict[str, Any]:
        """JSON-ready description (for audit records)."""
        return {"group": self.index, "n_faces": len(self.members), "n_people": self.n_people}


def _identity_codes(identities: Sequence[Any] | None, n: int) -> np.ndarray:
    if identities is None:
        return np.arange(n)
    if len(identities) != n:
        raise ValueError(f"{len(identities)} identities for {n} faces")
    _, codes = np.unique(np.asarray([str(i) for i in identities]), return_inverse=True)
    return codes.astype(np.int64)


def count_people(identities: Sequence[Any] | None, n: int) -> int:
    """Distinct people among ``n`` faces (``n`` when identities are unknown)."""
    return int(np.unique(_identity_codes(identities, n)).size) if n else 0


def ksame_groups(features: np.ndarray, k: int, *, identities: Sequence[Any] | None = None,
                 cover: Sequence[bool] | np.ndarray | None = None, seed: int = 0
                 ) -> list[Group]:
    """Partition faces into k-Same groups (see the module docstring).

    Args:
        features: ``(N, D)`` feature vectors (pixels, eigen-coefficients ...);
            distance is Euclidean.
        k: the privacy constant (>= 1; k = 1 gives every face its own group).
        identities: one label per face (None: every face a distinct person).
        cover: per face, True when it must be covered (de-identified) and may
            seed a group; False for gallery fillers. None: all True.
        seed: order in which faces seed groups.

    Returns:
        Groups covering every ``cover`` face exactly once; each holds >= k
        distinct people and no face is in two groups.

    Raises:
        NotEnoughFacesError: fewer than k distinct people among all faces.
        ValueError: bad ``k`` or shapes.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    n = x.shape[0]
    if isinstance(k, bool) or not float(k).is_integer() or int(k) < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    k = int(k)
    ids = _identity_codes(identities, n)
    must = np.ones(n, bool) if cover is None else np.asarray(cover, bool).copy()
    if must.shape != (n,):
        raise ValueError(f"cover has {must.size} entries for {n} faces")
    people = int(np.unique(ids).size) if n else 0
    if not must.any():
        return []
    if people < k:
        raise NotEnoughFacesError(
            f"k-Same with k={k} needs at least {k} distinct people; got {people} "
            f"distinct people (from {n} face(s))")
    remaining = np.ones(n, bool)
    order = np.flatnonzero(must)[np.random.default_rng(seed).permutation(int(must.sum()))]
    sq = np.einsum("ij,ij->i", x, x)
    groups: list[Group] = []
    for s in order:
        if not remaining[s]:
            continue
        left = np.flatnonzero(remaining)
        left_people = np.unique(ids[left]).size
        if left_people < 2 * k:
            members = left
        else:
            # squared distances from the seed to every remaining face; stable order
            d = sq[left] - 2.0 * (x[left] @ x[s]) + sq[s]
            cand = left[np.argsort(d, kind="stable")]
            cand = np.concatenate([[s], cand[cand != s]])
            _, first = np.unique(ids[cand], return_index=True)
            # one image per person: the person's nearest image; the k nearest people
            members = cand[np.sort(first)[:k]]
        remaining[members] = False
        groups.append(Group(tuple(int(m) for m in sorted(members)),
                            int(np.unique(ids[members]).size), len(groups)))
        if not (remaining & must).any():
            break
    return groups


def group_of(groups: Sequence[Group], n: int) -> np.ndarray:
    """``(n,)`` group index of each face (-1 for faces in no group)."""
    out = np.full(n, -1, dtype=np.int64)
    for g in groups:
        out[list(g.members)] = g.index
    return out


__all__ = ["Group", "NotEnoughFacesError", "ksame_groups", "group_of", "count_people"]
