"""Evaluation metrics against hand-computed cases, and the method-spec grammar."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facedeid.evaluate import metrics as M
from facedeid.evaluate import scenarios as S
from facedeid.evaluate.spec import MethodSpec, SpecError, parse_method_spec, parse_method_specs
from facedeid.errors import UnknownNameError

INF = np.inf


# ------------------------------------------------------------------ rates, DET, EER
def test_rates_at_threshold_counts_fta_as_reject():
    # mated: 0.1, 0.2 accepted; 0.9 and FTA rejected -> FNMR 2/4
    # non-mated: 0.05 accepted; 0.3, 0.8, FTA rejected -> FMR 1/4
    fmr, fnmr = M.rates_at([0.1, 0.2, 0.9, INF], [0.3, 0.8, INF, 0.05], 0.25)
    assert fmr == 0.25 and fnmr == 0.5
    # the threshold itself is a match (distance <= threshold)
    assert M.rates_at([0.25], [0.25], 0.25) == (1.0, 0.0)


def test_det_curve_points_by_hand():
    t, fmr, fnmr = M.det_curve([0.1, 0.3, 0.5], [0.2, 0.4])
    assert t.tolist() == [-INF, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert fmr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert np.allclose(fnmr, [1.0, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0.0])


def test_det_curve_excludes_fta_and_merges_ties():
    t, fmr, fnmr = M.det_curve([0.2, 0.2, INF], [0.2, INF])
    assert t.tolist() == [-INF, 0.2]
    assert fmr.tolist() == [0.0, 1.0] and fnmr.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError):
        M.det_curve([INF], [0.1])


@pytest.mark.parametrize("mated, nonmated, expected", [
    ([0.1, 0.2, 0.3, 0.6], [0.4, 0.5, 0.7, 0.8], 0.25),   # crossing exactly at a point
    ([0.1, 0.2], [0.5, 0.6], 0.0),                        # perfectly separated
    ([0.5, 0.6], [0.1, 0.2], 1.0),                        # perfectly inverted
    ([0.1, 0.2, 0.5], [0.3, 0.6], 1 / 3),                 # interpolated: see below
    ([0.3], [0.3], 0.5),                                  # one tie: (0,1) -> (1,0)
])
def test_eer_hand_computed(mated, nonmated, expected):
    # [0.1,0.2,0.5] vs [0.3,0.6]: at t=0.2 (FMR 0, FNMR 1/3), at t=0.3 (FMR 1/2, FNMR 1/3);
    # FNMR-FMR goes 1/3 -> -1/6, a = 2/3, EER = 0 + 2/3 * 1/2 = 1/3.
    assert M.eer(mated, nonmated) == pytest.approx(expected)


def test_eer_ignores_fta_and_is_nan_when_empty():
    assert M.eer([0.1, 0.2, INF], [0.5, 0.6, INF]) == 0.0
    assert math.isnan(M.eer([], [0.1]))
    assert math.isnan(M.eer([INF], [0.1]))


def test_eer_on_gaussians_matches_theory():
    # distances N(0,1) vs N(2,1): EER = Phi(-1) = 0.1587
    rng = np.random.default_rng(0)
    m = rng.normal(0, 1, 40_000)
    n = rng.normal(2, 1, 40_000)
    assert M.eer(m, n) == pytest.approx(0.158655, abs=0.006)
    assert M.roc_auc(m, n) == pytest.approx(0.921350, abs=0.006)  # Phi(2 / sqrt 2)


def test_roc_auc_hand_computed():
    assert M.roc_auc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert M.roc_auc([0.3, 0.4], [0.1, 0.2]) == 0.0
    # pairs (m, n): (0.1, 0.2) ok, (0.3, 0.2) wrong, ties count half: (0.2, 0.2)
    assert M.roc_auc([0.1, 0.3, 0.2], [0.2]) == pytest.approx((1 + 0 + 0.5) / 3)
    assert M.roc_auc([0.1, INF], [0.2, INF]) == 1.0


def test_tar_at_fmr_hand_computed():
    nonmated = [0.3, 0.4, 0.5, 0.6]
    # FMR <= 25%: one impostor may pass (0.3); accept mated strictly below 0.4
    assert M.tar_at_fmr([0.1, 0.2, 0.35, INF], nonmated, 0.25) == (0.75, 0.4)
    # FMR <= 0: strictly below the closest impostor; FTA stays in the denominator
    assert M.tar_at_fmr([0.1, 0.2, 0.35, INF], nonmated, 0.0) == (0.5, 0.3)
    # FMR 100%: every finite mated score
    assert M.tar_at_fmr([0.1, 0.9, INF], nonmated, 1.0)[0] == pytest.approx(2 / 3)
    # ties with an impostor are not accepted when that impostor must be rejected
    assert M.tar_at_fmr([0.3], [0.3, 0.3, 0.5], 0.4)[0] == 0.0


def test_verification_accuracy_and_ranks():
    assert M.verification_accuracy([0.1, 0.9, INF], [0.2, 0.95], 0.5) == pytest.approx(2 / 5)
    # probes x gallery; identities a, a, b, c
    dist = np.array([[0.9, 0.1, 0.5, 0.05],     # probe a: c closer than a -> rank 2
                     [0.4, 0.3, 0.2, 0.6],      # probe b: b closest -> rank 1
                     [INF, INF, INF, INF]])     # FTA probe -> miss
    ranks = M.identification_ranks(dist, ["a", "b", "a"], ["a", "a", "b", "c"])
    assert ranks.tolist() == [2, 1, INF]
    assert M.rank_rate(ranks, 1) == pytest.approx(1 / 3)
    assert M.rank_rate(ranks, 5) == pytest.approx(2 / 3)
    # excluding the probe's own image
    excl = np.zeros_like(dist, dtype=bool)
    excl[0, 1] = True
    assert M.identification_ranks(dist, ["a", "b", "a"], ["a", "a", "b", "c"],
                                  exclude=excl)[0] == 3
    # a probe whose identity is absent from the gallery never counts as found
    assert M.identification_ranks(np.array([[0.1]]), ["z"], ["a"]).tolist() == [INF]


def test_scores_reject_nan():
    with pytest.raises(ValueError):
        M.eer([0.1, np.nan], [0.2])


def test_scoreset_metrics_keys():
    out = M.ScoreSet([0.1, 0.2, INF], [0.5, 0.05, 0.7]).metrics(0.3)
    assert out["tar"] == pytest.approx(2 / 3) and out["fmr"] == pytest.approx(1 / 3)
    assert out["far"] == out["fmr"]
    assert out["n_mated_fta"] == 1 and out["n_nonmated"] == 3
    assert {"eer", "auc", "tar_at_fmr1", "tar_at_fmr01", "accuracy"} <= set(out)


def test_det_points_are_exact_operating_points():
    rng = np.random.default_rng(1)
    m, n = rng.normal(0.3, 0.1, 500), rng.normal(0.8, 0.1, 5000)
    pts = M.det_points(m, n, n_points=90)
    assert 30 <= len(pts["fmr"]) <= 200
    for t, a, b in list(zip(pts["threshold"], pts["fmr"], pts["fnmr"]))[::10]:
        fmr, fnmr = M.rates_at(m, n, t)
        assert (a, b) == pytest.approx((fmr, fnmr))
    assert all(np.diff(pts["fmr"]) >= 0) and all(np.diff(pts["fnmr"]) <= 0)


# ------------------------------------------------------------------ scenarios on synthetic embeddings
def _euclid(a, b):
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def test_gallery_scenarios_on_synthetic_embeddings():
    labels = np.array(["a", "a", "b", "b", "c"])
    orig = S.EmbeddingTable(np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1], [9, 0]], np.float32),
                            np.ones(5, bool))
    # de-identification that keeps identity exactly
    res = S.gallery_scenario("naive", _euclid, 0.5, orig, orig, labels, np.arange(4))
    m = res.metrics
    assert m["tar"] == 1.0 and m["fmr"] == 0.0 and m["eer"] == 0.0 and m["rank1"] == 1.0
    assert m["n_mated"] == 4 and m["n_nonmated"] == 4 * 5 - 4 - 4
    # parrot counts each unordered probe pair once: mated {0,1}, {2,3}
    assert S.gallery_scenario("parrot", _euclid, 0.5, orig, orig, labels,
                              np.arange(4)).metrics["n_mated"] == 2
    # a de-identification that collapses everyone onto one point: all match everyone
    deid = S.EmbeddingTable(np.zeros((5, 2), np.float32), np.ones(5, bool))
    p = S.gallery_scenario("parrot", _euclid, 0.5, orig, deid, labels, np.arange(4)).metrics
    assert p["tar"] == 1.0 and p["far"] == 1.0 and p["eer"] == pytest.approx(0.5)
    # naive with every de-identified probe an FTA: TAR 0, EER undefined, FTA 100 %
    fta = S.EmbeddingTable(np.zeros((5, 2), np.float32), np.zeros(5, bool))
    n = S.gallery_scenario("naive", _euclid, 0.5, orig, fta, labels, np.arange(4)).metrics
    assert n["tar"] == 0.0 and n["fta"] == 1.0 and math.isnan(n["eer"])
    assert n["rank1"] == 0.0 and n["n_mated_fta"] == 4


def test_pairs_and_self_scenarios():
    orig = S.EmbeddingTable(np.array([[0, 0], [0, 0.2], [3, 3], [6, 6]], np.float32),
                            np.ones(4, bool))
    pairs = [(0, 1, True), (2, 3, False)]
    same = S.pairs_scenario(_euclid, 0.5, orig, orig, pairs).metrics
    assert same["accuracy"] == 1.0 and same["accuracy_before"] == 1.0
    moved = S.EmbeddingTable(orig.vectors + np.array([[0, 0], [0, 9], [0, 0], [0, 0]],
                                                     np.float32), np.ones(4, bool))
    after = S.pairs_scenario(_euclid, 0.5, orig, moved, pairs).metrics
    assert after["accuracy"] == 0.5 and after["tar"] == 0.0 and after["deid_rate_pairs"] == 1.0
    self_ = S.self_scenario(_euclid, 0.5, orig, moved, np.array([1, 2])).metrics
    assert self_["deid_rate"] == 0.5 and self_["match_rate"] == 0.5


# ------------------------------------------------------------------ spec grammar
KNOWN = {"blur": ("k", ["k"]), "noise": ("k", ["k", "kind"]), "blackout": (None, ["color"])}


def test_spec_sweeps_and_shorthand():
    assert [s.label for s in parse_method_spec("blur:k=5,15,31", KNOWN)] == \
        ["blur:k=5", "blur:k=15", "blur:k=31"]
    assert parse_method_spec("blur:5,15", KNOWN) == parse_method_spec("blur:k=5,15", KNOWN)
    specs = parse_method_spec("noise:kind=gaussian,impulse:k=10,20", KNOWN)
    assert [(s.params["kind"], s.params["k"]) for s in specs] == \
        [("gaussian", 10), ("gaussian", 20), ("impulse", 10), ("impulse", 20)]
    assert parse_method_spec("noise:kind=gaussian;k=20", KNOWN)[0].params == \
        {"kind": "gaussian", "k": 20}
    (s,) = parse_method_spec("blackout:color=255+0+0:shape=box", KNOWN)
    assert s.params == {"color": (255, 0, 0)} and s.region == {"shape": "box"}
    assert s.all_params == {"color": (255, 0, 0), "shape": "box"}
    assert parse_method_spec(s.label, KNOWN) == [s]          # labels parse back
    assert parse_method_spec("blur:k=0.5", KNOWN)[0].params["k"] == 0.5
    assert parse_method_spec("blur:k=25%", KNOWN)[0].params["k"] == "25%"


def test_spec_list_adds_baseline_and_dedupes():
    specs = parse_method_specs(["blur:5,9", "blur:k=9 none"], KNOWN)
    assert [s.label for s in specs] == ["none", "blur:k=5", "blur:k=9"]
    assert specs[1].strength == "k" and specs[1].strength_value == 5
    assert MethodSpec("none").label == "none"


@pytest.mark.parametrize("text, error", [
    ("fog:k=3", UnknownNameError),
    ("blur:sigma=3", SpecError),        # unknown parameter
    ("blackout:5", SpecError),          # no strength parameter
    ("blur:k=", SpecError),             # empty value
    ("blur:k=5,,7", SpecError),
    ("blur::k=5", SpecError),
    ("blur:k=5:k=7", SpecError),        # parameter twice
    ("none:k=1", SpecError),
    ("", SpecError),
])
def test_spec_errors(text, error):
    with pytest.raises(error):
        parse_method_spec(text, KNOWN)


def test_spec_against_the_real_registry():
    specs = parse_method_specs(["blur:k=5,31", "pixelate:8", "noise:kind=gaussian:k=20"])
    assert [s.label for s in specs] == ["none", "blur:k=5", "blur:k=31", "pixelate:k=8",
                                        "noise:kind=gaussian:k=20"]
    with pytest.raises(UnknownNameError, match="choose one of"):
        parse_method_specs(["nosuchmethod"])


def _brute_eer(m, n):
    _, fmr, fnmr = M.det_curve(m, n)
    d = fnmr - fmr
    i = int(np.argmax(d <= 0))
    if d[i] == 0:
        return fmr[i]
    w = d[i - 1] / (d[i - 1] - d[i])
    return fmr[i - 1] + w * (fmr[i] - fmr[i - 1])


def test_fast_eer_auc_tar_agree_with_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = rng.integers(0, 25, rng.integers(1, 30)) / 10.0       # many ties
        n = rng.integers(0, 25, rng.integers(1, 80)) / 10.0
        assert M.eer(m, n) == pytest.approx(_brute_eer(m, n), abs=1e-12)
        brute_auc = np.mean([(a < b) + 0.5 * (a == b) for a in m for b in n])
        assert M.roc_auc(m, n) == pytest.approx(brute_auc, abs=1e-12)
        target = rng.uniform(0, 0.5)
        tar, _ = M.tar_at_fmr(m, n, target)
        # brute force: the loosest threshold among all scores with FMR <= target
        best = 0.0
        for t in np.concatenate([[-1.0], m, n]):
            fmr, fnmr = M.rates_at(m, n, t)
            if fmr <= target + 1e-12:
                best = max(best, 1 - fnmr)
        assert tar == pytest.approx(best, abs=1e-12)


# ------------------------------------------------------------------ fast path vs. per-threshold loops
def _loop_rates(m, n, t):
    """Reference FMR / FNMR at one threshold, straight from the definitions
    (FTA = +inf stays in the denominators and never matches)."""
    m, n = np.asarray(m), np.asarray(n)
    fmr = np.count_nonzero(np.isfinite(n) & (n <= t)) / n.size
    fnmr = np.count_nonzero(~(np.isfinite(m) & (m <= t))) / m.size
    return fmr, fnmr


def _loop_det(m, n):
    """Reference DET: one point per distinct finite score, computed one threshold at a time."""
    mf, nf = m[np.isfinite(m)], n[np.isfinite(n)]
    pts = [(-INF, 0.0, 1.0)]
    for t in sorted(set(mf.tolist()) | set(nf.tolist())):
        pts.append((t, np.count_nonzero(nf <= t) / nf.size, np.count_nonzero(mf > t) / mf.size))
    return pts


def _loop_eer(m, n):
    pts = _loop_det(m, n)
    for (_, f0, r0), (_, f1, r1) in zip(pts, pts[1:]):
        if r1 - f1 <= 0:
            d0, d1 = r0 - f0, r1 - f1
            return f1 if d1 == 0 else f0 + d0 / (d0 - d1) * (f1 - f0)
    raise AssertionError("no crossing")


def _loop_tar_at_fmr(m, n, target):
    # loosest threshold (candidates: every score, and just below every score) with FMR <= target
    cands = sorted({s for s in list(m) + list(n) if np.isfinite(s)})
    cands = [c for s in cands for c in (np.nextafter(s, -INF), s)] + [-INF]
    best = 0.0
    for t in cands:
        fmr, fnmr = _loop_rates(m, n, t)
        if fmr <= target + 1e-12:
            best = max(best, 1.0 - fnmr)
    return best


def _random_scores(rng, size, ties: bool, fta: float):
    x = rng.integers(0, 30, size) / 10.0 if ties else rng.normal(0.0, 1.0, size)
    x = np.asarray(x, dtype=np.float64)
    x[rng.random(size) < fta] = INF
    return x


@pytest.mark.parametrize("ties", [False, True])
def test_sorted_fast_path_equals_per_threshold_loops(ties):
    """Every threshold metric computed by sorting once + binary search equals a
    per-threshold loop over the raw scores, FTA included, on random score sets
    (with and without ties), and a pre-sorted :class:`SortedScores` gives the same."""
    rng = np.random.default_rng(11 + ties)
    for _ in range(25):
        m = _random_scores(rng, int(rng.integers(2, 40)), ties, 0.15)
        n = _random_scores(rng, int(rng.integers(2, 120)), ties, 0.15) + 0.7
        m[0], n[0] = 0.1, 0.9 + 0.7 * ties          # at least one finite score per side
        ms, ns = M.SortedScores(m), M.SortedScores(n)
        for t in np.concatenate([m[:5], n[:5], [-1.0, 0.0, 0.5, 5.0, INF]]):
            assert M.rates_at(m, n, t) == pytest.approx(_loop_rates(m, n, t), abs=1e-12)
            assert M.rates_at(ms, ns, t) == M.rates_at(m, n, t)
            fmr, fnmr = _loop_rates(m, n, t)
            acc = ((1 - fnmr) * m.size + (1 - fmr) * n.size) / (m.size + n.size)
            assert M.verification_accuracy(m, n, t) == pytest.approx(acc, abs=1e-12)
        thr, fmr, fnmr = M.det_curve(m, n)
        ref = _loop_det(m, n)
        assert thr.tolist() == [p[0] for p in ref]
        assert np.allclose(fmr, [p[1] for p in ref]) and np.allclose(fnmr, [p[2] for p in ref])
        assert M.eer(m, n) == pytest.approx(_loop_eer(m, n), abs=1e-12)
        assert M.eer(ms, ns) == M.eer(m, n)
        mf, nf = m[np.isfinite(m)], n[np.isfinite(n)]
        auc = np.mean([(a < b) + 0.5 * (a == b) for a in mf for b in nf])
        assert M.roc_auc(m, n) == pytest.approx(auc, abs=1e-12)
        for target in (0.0, 0.01, 0.1, 0.37):
            assert M.tar_at_fmr(m, n, target)[0] == pytest.approx(
                _loop_tar_at_fmr(m, n, target), abs=1e-12)
        pts = M.det_points(ms, ns, n_points=30)
        for t, a, b in zip(pts["threshold"], pts["fmr"], pts["fnmr"]):
            fmr_f = np.count_nonzero(nf <= t) / nf.size
            fnmr_f = np.count_nonzero(mf > t) / mf.size
            assert (a, b) == pytest.approx((fmr_f, fnmr_f), abs=1e-12)
        edges = np.linspace(-1, 3, 9)
        hist = [sum(1 for s in mf if (lo <= s < hi) or (i == 0 and s < lo)
                    or (i == len(edges) - 2 and s >= hi))
                for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
        assert M.histogram(m, edges) == hist


def test_identification_ranks_equal_a_loop():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p, g = int(rng.integers(1, 12)), int(rng.integers(1, 30))
        gid = rng.integers(0, 6, g)
        pid = rng.integers(0, 7, p)                   # identity 6 is never in the gallery
        d = rng.integers(0, 8, (p, g)) / 4.0          # ties
        d[rng.random((p, g)) < 0.1] = INF
        ranks = M.identification_ranks(d, pid, gid)
        for i in range(p):
            per_id = {k: min(d[i, j] for j in range(g) if gid[j] == k) for k in set(gid)}
            true = per_id.get(pid[i], INF)
            want = INF if not np.isfinite(true) else 1 + sum(v < true for v in per_id.values())
            assert ranks[i] == want
