"""The comparison protocols ("scenarios") of ``facedeid evaluate``.

All scenarios work on the same two embedding tables of one attacker and one
alignment mode: ``orig`` (the untouched images) and ``deid`` (the same images
after de-identification). Missing rows (failure to acquire) become ``+inf``
distances; see :mod:`facedeid.evaluate.metrics` for how that enters each metric.

Probes are the images whose identity has another image in the set (so every
probe has a mate); the gallery is every image. A probe is never compared with
its own image (that comparison is the ``self`` scenario).

* ``naive``: probe = de-identified, gallery = originals (the attacker holds
  clean photos and meets the published, de-identified one).
* ``reverse``: probe = original, gallery = de-identified. With an all-vs-all
  protocol its mated comparisons are the naive ones mirrored and its non-mated
  ones differ only through single-image identities, so its verification numbers
  are close to naive's (FTA now falls on the gallery side); its rank-k differs.
* ``parrot``: both de-identified with the same method (each unordered pair
  once). ``far`` is the false accept rate of *different* people after
  de-identification: blurred faces look alike, so a high parrot TAR is only a
  re-identification if ``far`` stays low.
* ``pairs``: verification pairs (LFW pairs files); the second image of each pair
  is de-identified. ``accuracy_before``/``accuracy`` at the attacker's threshold.
* ``self``: each de-identified image against its own original;
  ``deid_rate`` = fraction NOT matched (seed 004's "self de-identification").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import metrics as M

SCENARIOS = ("naive", "reverse", "parrot", "pairs", "self")
#: scenarios that need identities with 2+ images
GALLERY_SCENARIOS = ("naive", "reverse", "parrot")


@dataclass
class EmbeddingTable:
    """Embeddings of every image of a universe (row ``i`` = image ``i``).

    ``valid[i]`` is False when the attacker could not embed image ``i`` (FTA);
    its row is then meaningless.
    """

    vectors: np.ndarray
    valid: np.ndarray

    @classmethod
    def from_list(cls, rows: list[np.ndarray | None], dim: int | None = None) -> "EmbeddingTable":
        dims = {np.asarray(r).size for r in rows if r is not None}
        if len(dims) > 1:
            raise ValueError(f"embeddings of different sizes: {sorted(dims)}")
        d = dims.pop() if dims else (dim or 1)
        vec = np.zeros((len(rows), d), dtype=np.float32)
        valid = np.zeros(len(rows), dtype=bool)
        for i, r in enumerate(rows):
            if r is not None:
                vec[i] = np.asarray(r, dtype=np.float32).ravel()
                valid[i] = True
        return cls(vec, valid)

    def __len__(self) -> int:
        return len(self.valid)


DistanceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def distances(dist: DistanceFn, a: EmbeddingTable, rows: np.ndarray,
              b: EmbeddingTable, cols: np.ndarray, block: int = 1024) -> np.ndarray:
    """``len(rows) x len(cols)`` distances; ``+inf`` where either side is FTA."""
    rows = np.asarray(rows, dtype=int)
    cols = np.asarray(cols, dtype=int)
    out = np.full((rows.size, cols.size), np.inf, dtype=np.float64)
    ra = rows[a.valid[rows]]
    cb = cols[b.valid[cols]]
    if ra.size == 0 or cb.size == 0:
        return out
    ri = np.nonzero(a.valid[rows])[0]
    ci = np.nonzero(b.valid[cols])[0]
    bv = b.vectors[cb]
    for s in range(0, ra.size, block):
        d = np.asarray(dist(a.vectors[ra[s:s + block]], bv), dtype=np.float64)
        out[np.ix_(ri[s:s + block], ci)] = d
    if np.isnan(out).any():
        raise ValueError("the attacker returned NaN distances")
    return out


def pairwise(dist: DistanceFn, a: EmbeddingTable, b: EmbeddingTable,
             ia: np.ndarray, ib: np.ndarray, block: int = 256) -> np.ndarray:
    """Distances of the pairs ``(a[ia[k]], b[ib[k]])``; ``+inf`` where either side is FTA."""
    ia = np.asarray(ia, dtype=int)
    ib = np.asarray(ib, dtype=int)
    out = np.full(ia.size, np.inf)
    ok = np.nonzero(a.valid[ia] & b.valid[ib])[0]
    for s in range(0, ok.size, block):
        k = ok[s:s + block]
        d = np.asarray(dist(a.vectors[ia[k]], b.vectors[ib[k]]), dtype=np.float64)
        out[k] = np.diagonal(d.reshape(k.size, k.size))
    if np.isnan(out).any():
        raise ValueError("the attacker returned NaN distances")
    return out


@dataclass
class ScenarioResult:
    """Metrics (flat, JSON-ready numbers) and curves of one scenario run."""

    metrics: dict[str, float]
    scores: M.ScoreSet | None = None
    curves: dict | None = None


def _fta_rate(table: EmbeddingTable, idx: np.ndarray) -> float:
    idx = np.asarray(idx, dtype=int)
    return float(np.mean(~table.valid[idx])) if idx.size else float("nan")


def _with_curves(res: ScenarioResult, hist_edges: np.ndarray | None) -> ScenarioResult:
    if res.scores is None:
        return res
    curves: dict = {"det": M.det_points(res.scores.mated, res.scores.nonmated)}
    if hist_edges is not None:
        curves["hist"] = {"edges": [float(e) for e in hist_edges],
                          "mated": M.histogram(res.scores.mated, hist_edges),
                          "nonmated": M.histogram(res.scores.nonmated, hist_edges)}
    res.curves = curves
    return res


def gallery_scenario(kind: str, dist: DistanceFn, threshold: float, orig: EmbeddingTable,
                     deid: EmbeddingTable, labels: np.ndarray, probes: np.ndarray,
                     fmr_targets=(0.01, 0.001), hist_edges: np.ndarray | None = None
                     ) -> ScenarioResult:
    """``naive`` / ``reverse`` / ``parrot`` over ``probes`` x all images."""
    labels = np.asarray(labels)
    n = labels.size
    probes = np.asarray(probes, dtype=int)
    gallery = np.arange(n)
    if kind == "naive":
        ptab, gtab = deid, orig
    elif kind == "reverse":
        ptab, gtab = orig, deid
    elif kind == "parrot":
        ptab, gtab = deid, deid
    else:
        raise ValueError(f"not a gallery scenario: {kind}")
    if probes.size == 0:
        raise ValueError("no probe has a mate (every identity has a single image)")
    d = distances(dist, ptab, probes, gtab, gallery)
    own = probes[:, None] == gallery[None, :]
    same = labels[probes][:, None] == labels[None, :]
    keep = ~own
    if kind == "parrot":  # symmetric: count each unordered pair of probes once
        is_probe = np.zeros(n, dtype=bool)
        is_probe[probes] = True
        keep &= ~(is_probe[None, :] & (gallery[None, :] < probes[:, None]))
    scores = M.ScoreSet(d[keep & same], d[keep & ~same])
    out = scores.metrics(threshold, fmr_targets)
    ranks = M.identification_ranks(d, labels[probes], labels, exclude=own)
    out["rank1"] = M.rank_rate(ranks, 1)
    out["rank5"] = M.rank_rate(ranks, 5)
    out["n_probes"] = int(probes.size)
    out["n_gallery"] = int(n)
    probe_side = probes if kind != "reverse" else gallery
    out["fta"] = _fta_rate(deid, probe_side if kind != "parrot" else gallery)
    out["fta_original"] = _fta_rate(orig, gallery)
    return _with_curves(ScenarioResult(out, scores), hist_edges)


def pairs_scenario(dist: DistanceFn, threshold: float, orig: EmbeddingTable,
                   deid: EmbeddingTable, pairs: list[tuple[int, int, bool]],
                   fmr_targets=(0.01, 0.001), hist_edges: np.ndarray | None = None
                   ) -> ScenarioResult:
    """Pairs verification; the second image of each pair is de-identified."""
    if not pairs:
        raise ValueError("no pairs")
    ia = np.array([p[0] for p in pairs], dtype=int)
    ib = np.array([p[1] for p in pairs], dtype=int)
    same = np.array([p[2] for p in pairs], dtype=bool)
    before = pairwise(dist, orig, orig, ia, ib)
    after = pairwise(dist, orig, deid, ia, ib)
    scores = M.ScoreSet(after[same], after[~same])
    out = scores.metrics(threshold, fmr_targets)
    b = M.ScoreSet(before[same], before[~same]).metrics(threshold, fmr_targets)
    for key in ("accuracy", "tar", "far", "eer", "auc"):
        out[key + "_before"] = b[key]
    # seed 004: share of same-person pairs matched before that are no longer matched
    was = same & (before <= threshold)
    out["deid_rate_pairs"] = float(np.mean(~(after[was] <= threshold))) if was.any() \
        else float("nan")
    out["n_pairs"] = int(len(pairs))
    out["fta"] = _fta_rate(deid, np.unique(ib))
    out["fta_original"] = _fta_rate(orig, np.unique(np.concatenate([ia, ib])))
    return _with_curves(ScenarioResult(out, scores), hist_edges)


def self_scenario(dist: DistanceFn, threshold: float, orig: EmbeddingTable,
                  deid: EmbeddingTable, idx: np.ndarray) -> ScenarioResult:
    """Each de-identified image against its own original.

    ``tar`` (= ``match_rate``) is the fraction still matched at the threshold;
    ``deid_rate = 1 - tar``. A de-identified image the attacker cannot acquire
    counts as not matched (``fta`` reports how many); an original it cannot
    acquire also counts as not matched and is reported as ``fta_original``.
    """
    idx = np.asarray(idx, dtype=int)
    if idx.size == 0:
        raise ValueError("no images for the self scenario")
    d = pairwise(dist, orig, deid, idx, idx)
    matched = d <= threshold
    s = M.score_summary(d)
    out = {
        "tar": float(np.mean(matched)),
        "match_rate": float(np.mean(matched)),
        "deid_rate": float(np.mean(~matched)),
        "n": int(idx.size),
        "self_mean": s["mean"],
        "self_median": s["median"],
        "fta": _fta_rate(deid, idx),
        "fta_original": _fta_rate(orig, idx),
    }
    res = ScenarioResult(out)
    fin = d[np.isfinite(d)]
    res.curves = {"self_distances_quantiles": (np.quantile(fin, np.linspace(0, 1, 21)).tolist()
                                               if fin.size else [])}
    return res
