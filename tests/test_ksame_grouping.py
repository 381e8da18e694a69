"""The k-Same grouping: every output averages >= k distinct people, every face is
covered once, groups are deterministic given the seed (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facedeid.ksame.grouping import NotEnoughFacesError, count_people, group_of, ksame_groups


@st.composite
def face_sets(draw):
    k = draw(st.integers(1, 6))
    n = draw(st.integers(k, 40))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    x = np.random.default_rng(seed).normal(size=(n, d))
    with_ids = draw(st.booleans())
    ids = None
    if with_ids:
        n_people = draw(st.integers(k, n))
        ids = [f"p{v}" for v in np.random.default_rng(seed + 1).integers(0, n_people, n)]
        if count_people(ids, n) < k:  # make sure k people exist
            ids[:k] = [f"q{i}" for i in range(k)]
    return x, k, ids, draw(st.integers(0, 1000))


@settings(max_examples=200, deadline=None)
@given(face_sets())
def test_every_group_has_k_people_and_every_face_is_covered_once(case):
    x, k, ids, seed = case
    groups = ksame_groups(x, k, identities=ids, seed=seed)
    labels = list(range(len(x))) if ids is None else ids
    seen = [m for g in groups for m in g.members]
    assert sorted(seen) == list(range(len(x)))          # covered exactly once
    for g in groups:
        people = {labels[m] for m in g.members}
        assert len(people) >= k                          # >= k distinct people
        assert g.n_people == len(people)
    # only the last group may exceed k people (the remainder joins it)
    for g in groups[:-1]:
        assert g.n_people == k
        assert len(g.members) == k                       # one image per person while possible
    assert groups[-1].n_people < 2 * k


@settings(max_examples=100, deadline=None)
@given(face_sets())
def test_groups_are_deterministic_given_the_seed(case):
    x, k, ids, seed = case
    a = ksame_groups(x, k, identities=ids, seed=seed)
    b = ksame_groups(x.copy(), k, identities=None if ids is None else list(ids), seed=seed)
    assert [g.members for g in a] == [g.members for g in b]


@settings(max_examples=100, deadline=None)
@given(face_sets(), st.integers(0, 30))
def test_gallery_fillers_complete_groups_but_need_not_be_covered(case, n_gallery):
    x, k, ids, seed = case
    g = np.random.default_rng(seed).normal(size=(n_gallery, x.shape[1]))
    feats = np.vstack([x, g])
    labels = (list(range(len(x))) if ids is None else list(ids)) + [f"g{i}" for i in range(n_gallery)]
    cover = [True] * len(x) + [False] * n_gallery
    groups = ksame_groups(feats, k, identities=labels, cover=cover, seed=seed)
    seen = [m for grp in groups for m in grp.members]
    assert len(seen) == len(set(seen))                   # no face in two groups
    assert set(range(len(x))) <= set(seen)               # every user face covered
    for grp in groups:
        assert len({labels[m] for m in grp.members}) >= k
        assert any(m < len(x) for m in grp.members)      # no group of fillers only


def test_nearest_faces_are_grouped_together():
    # two well separated clusters of 3: with k=3 each cluster is one group
    x = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2]])
    for seed in range(10):
        groups = ksame_groups(x, 3, seed=seed)
        assert sorted(g.members for g in groups) == [(0, 1, 2), (3, 4, 5)]


def test_one_image_per_person_in_a_group():
    # A's two images are nearest to each other, but a group takes one image per person
    x = np.array([[0.0], [0.01], [1.0], [2.0], [50.0], [51.0], [52.0], [53.0]])
    ids = ["A", "A", "B", "C", "D", "E", "F", "G"]
    groups = ksame_groups(x, 2, identities=ids, seed=0)
    for g in groups:
        names = [ids[m] for m in g.members]
        if len(g.members) == 2:
            assert len(set(names)) == 2
    assert group_of(groups, 8)[0] != group_of(groups, 8)[1]


def test_remainder_joins_the_last_group():
    x = np.arange(11, dtype=float)[:, None]
    groups = ksame_groups(x, 5, seed=3)
    assert [len(g.members) for g in groups] in ([5, 6],)


def test_too_few_people_is_a_clear_error():
    x = np.zeros((6, 2))
    with pytest.raises(NotEnoughFacesError, match=r"k=4 .* 2 distinct people"):
        ksame_groups(x, 4, identities=["a", "b", "a", "b", "a", "b"])
    with pytest.raises(ValueError, match="k must be"):
        ksame_groups(x, 0)
