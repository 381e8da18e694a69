"""Biometric metrics on comparison scores.

Every score here is a **distance** (lower = more alike), as the attackers
return them; a comparison *matches* when ``distance <= threshold``.

Failure to acquire (FTA): a comparison that involves a sample the attacker
could not embed has no score. The two families of metrics treat it
differently, on purpose, and the difference is part of the contract:

* **Threshold decisions** (FMR / FNMR / TAR / FAR at a threshold, TAR at a
  fixed FMR, verification accuracy, rank-k identification, self match rate):
  an FTA comparison is a *non-match* (a reject). It is passed in as ``+inf``.
  So an attacker that cannot find the face fails to re-identify it, and the
  denominators always count every attempt (ISO/IEC 19795-1 "generalized" rates).
* **Score distributions** (DET curve, EER, ROC AUC, histograms, means): FTA
  comparisons are *excluded* (``+inf`` entries are dropped) and their number is
  reported beside the metric, because a missing score is not a distance.

Functions accept ``+inf`` for FTA and drop NaN never: NaN is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "as_scores", "SortedScores", "rates_at", "det_curve", "det_points", "eer", "roc_auc", "tar_at_fmr",
    "verification_accuracy", "identification_ranks", "rank_rate", "score_summary",
    "histogram", "ScoreSet",
]


def as_scores(values) -> np.ndarray:
    """A 1-D float64 array of distances; ``+inf`` marks FTA; NaN is rejected."""
    if isinstance(values, SortedScores):
        return values.as_array()
    arr = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(arr).any():
        raise ValueError("scores contain NaN (use +inf for failure to acquire)")
    if (arr == -np.inf).any():
        raise ValueError("scores contain -inf")
    return arr


class SortedScores:
    """Scores sorted once: the finite ones ascending, plus how many FTA (``+inf``).

    Every function of this module accepts one in place of a list, so that a
    protocol with millions of non-mated comparisons is sorted only once.
    """

    __slots__ = ("finite", "total")

    def __init__(self, values) -> None:
        if isinstance(values, SortedScores):
            self.finite, self.total = values.finite, values.total
            return
        arr = as_scores(values)
        self.finite = np.sort(arr[np.isfinite(arr)])
        self.total = int(arr.size)

    @property
    def n_fta(self) -> int:
        return self.total - int(self.finite.size)

    def count_le(self, t) -> np.ndarray | int:
        return np.searchsorted(self.finite, t, side="right")

    def count_lt(self, t) -> np.ndarray | int:
        return np.searchsorted(self.finite, t, side="left")

    def as_array(self) -> np.ndarray:
        return np.concatenate([self.finite, np.full(self.n_fta, np.inf)])

    def __len__(self) -> int:
        return self.total


def _sorted(values) -> SortedScores:
    return values if isinstance(values, SortedScores) else SortedScores(values)


def rates_at(mated, nonmated, threshold: float) -> tuple[float, float]:
    """``(FMR, FNMR)`` at ``threshold`` (match when distance <= threshold).

    FTA (``+inf``) attempts count in the denominators: a mated FTA is a false
    non-match, a non-mated FTA a true non-match. Empty inputs give NaN.

    >>> rates_at([0.1, 0.2, 0.9], [0.3, 0.8, np.inf, 0.05], 0.25)
    (0.25, 0.3333333333333333)
    """
    m, n = _sorted(mated), _sorted(nonmated)
    fmr = float(n.count_le(threshold) / n.total) if n.total else float("nan")
    fnmr = float((m.total - m.count_le(threshold)) / m.total) if m.total else float("nan")
    return fmr, fnmr


def det_curve(mated, nonmated) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every operating point of the DET curve on finite scores.

    Returns ``(thresholds, fmr, fnmr)``: the first point is ``threshold=-inf``
    (FMR 0, FNMR 1), then one point per distinct score value ``t`` with
    ``FMR(t) = #(nonmated <= t) / N`` and ``FNMR(t) = #(mated > t) / M``.
    FTA (``+inf``) scores are excluded (see the module docstring).

    >>> t, fmr, fnmr = det_curve([0.1, 0.3], [0.2, 0.4])
    >>> t.tolist(), fmr.tolist(), fnmr.tolist()
    ([-inf, 0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.5, 0.5, 1.0], [1.0, 0.5, 0.5, 0.0, 0.0])
    """
    m, n = _sorted(mated).finite, _sorted(nonmated).finite
    if m.size == 0 or n.size == 0:
        raise ValueError("a DET curve needs at least one mated and one non-mated finite score")
    thr = np.unique(np.concatenate([m, n]))
    fmr, fnmr = _rates_on_grid(m, n, thr)
    return (np.concatenate([[-np.inf], thr]), np.concatenate([[0.0], fmr]),
            np.concatenate([[1.0], fnmr]))


def _rates_on_grid(m_sorted: np.ndarray, n_sorted: np.ndarray, thr: np.ndarray):
    """FMR and FNMR over finite scores at thresholds ``thr`` (``-inf`` allowed)."""
    fmr = np.searchsorted(n_sorted, thr, side="right") / n_sorted.size
    fnmr = (m_sorted.size - np.searchsorted(m_sorted, thr, side="right")) / m_sorted.size
    return fmr, fnmr


def _quantile_sorted(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(x, q, method="inverted_cdf")`` of an ascending array."""
    idx = np.clip(np.ceil(np.asarray(q) * x.size).astype(np.int64) - 1, 0, x.size - 1)
    return x[idx]


def det_points(mated, nonmated, n_points: int = 200) -> dict[str, list[float]]:
    """A compact DET curve for plots and ``results.json``.

    Exact operating points at about ``n_points`` thresholds chosen so that both
    tails are resolved: quantiles of the non-mated scores at log-spaced FMRs,
    quantiles of the mated scores at log-spaced FNMRs, and an even grid.
    Returns ``{"threshold": [...], "fmr": [...], "fnmr": [...]}`` (finite scores only).
    """
    m, n = _sorted(mated).finite, _sorted(nonmated).finite
    if m.size == 0 or n.size == 0:
        return {"threshold": [], "fmr": [], "fnmr": []}
    k = max(n_points // 3, 2)
    logq = np.logspace(-6, 0, k)
    cand = np.concatenate([
        _quantile_sorted(n, logq),
        _quantile_sorted(m, 1 - logq),
        np.linspace(min(m[0], n[0]), max(m[-1], n[-1]), k),
        [m[0], m[-1], n[0], n[-1]],
    ])
    thr = np.unique(cand)
    fmr, fnmr = _rates_on_grid(m, n, thr)
    return {"threshold": thr.tolist(), "fmr": fmr.tolist(), "fnmr": fnmr.tolist()}


def eer(mated, nonmated) -> float:
    """Equal error rate, linearly interpolated between DET operating points.

    Walking the thresholds upward, FMR rises and FNMR falls; at the first
    operating point where ``FMR >= FNMR`` the crossing lies on the segment from
    the previous point, and the EER is the value where the two rates are equal
    on that segment. FTA scores are excluded. NaN when either side is empty.

    Only the operating points around the crossing are built: FNMR changes at
    mated scores only, so the crossing lies between two consecutive mated
    scores, and the points between them are the non-mated scores there.

    >>> eer([0.1, 0.2, 0.3, 0.6], [0.4, 0.5, 0.7, 0.8])
    0.25
    >>> round(eer([0.1, 0.2, 0.5], [0.3, 0.6]), 6)
    0.333333
    """
    m, n = _sorted(mated).finite, _sorted(nonmated).finite
    if m.size == 0 or n.size == 0:
        return float("nan")
    fmr_m, fnmr_m = _rates_on_grid(m, n, m)
    j = int(np.argmax(fmr_m >= fnmr_m))      # exists: FNMR is 0 at the largest mated score
    lo = m[j - 1] if j > 0 else -np.inf
    hi = m[j]
    a = int(np.searchsorted(n, lo, side="right")) if j > 0 else 0
    b = int(np.searchsorted(n, hi, side="left"))
    thr = np.concatenate([[lo], np.unique(np.concatenate([n[a:b], [hi]]))])
    fmr, fnmr = _rates_on_grid(m, n, thr)
    d = fnmr - fmr                            # d[0] > 0 (at lo), d[-1] <= 0 (at hi)
    i = int(np.argmax(d <= 0))
    if d[i] == 0:
        return float(fmr[i])
    d0, d1 = d[i - 1], d[i]
    w = d0 / (d0 - d1)
    return float(fmr[i - 1] + w * (fmr[i] - fmr[i - 1]))


def roc_auc(mated, nonmated) -> float:
    """Area under the ROC curve: P(mated distance < non-mated distance), ties 1/2.

    Mann-Whitney U on finite scores (FTA excluded), counted with binary searches
    over the larger side. NaN when a side is empty.

    >>> roc_auc([0.1, 0.2], [0.3, 0.4]), roc_auc([0.5], [0.5]), roc_auc([0.3, 0.1], [0.2])
    (1.0, 0.5, 0.5)
    """
    m, n = _sorted(mated).finite, _sorted(nonmated).finite
    if m.size == 0 or n.size == 0:
        return float("nan")
    if m.size <= n.size:
        right = np.searchsorted(n, m, side="right")
        left = np.searchsorted(n, m, side="left")
        u = np.sum(n.size - right) + 0.5 * np.sum(right - left)
    else:
        right = np.searchsorted(m, n, side="right")
        left = np.searchsorted(m, n, side="left")
        u = np.sum(left) + 0.5 * np.sum(right - left)
    return float(u / (m.size * n.size))


def tar_at_fmr(mated, nonmated, target: float) -> tuple[float, float]:
    """``(TAR, threshold)`` at the loosest threshold whose FMR is <= ``target``.

    FTA attempts stay in both denominators (never accepted). With ``N``
    non-mated attempts at most ``floor(target * N)`` may be accepted; the
    accepted mated attempts are those strictly closer than the next non-mated
    score (returned as the threshold bound). When ``target * N < 1`` this means
    "closer than every impostor": look at ``n_nonmated`` to judge the resolution.
    Returns NaN on empty input.

    >>> tar_at_fmr([0.1, 0.2, 0.35, np.inf], [0.3, 0.4, 0.5, 0.6], 0.25)
    (0.75, 0.4)
    """
    m, n = _sorted(mated), _sorted(nonmated)
    if m.total == 0 or n.total == 0:
        return float("nan"), float("nan")
    allowed = int(np.floor(target * n.total + 1e-9))
    if allowed >= n.total:
        return float(m.finite.size / m.total), float(n.finite[-1]) if n.finite.size else np.inf
    bound = n.finite[allowed] if allowed < n.finite.size else np.inf  # first impostor kept out
    return float(m.count_lt(bound) / m.total), float(bound)


def verification_accuracy(mated, nonmated, threshold: float) -> float:
    """Fraction of decisions that are right: mated accepted + non-mated rejected.

    FTA (``+inf``) is a reject on either side.

    >>> verification_accuracy([0.1, 0.9, np.inf], [0.2, 0.95], 0.5)
    0.4
    """
    m, n = _sorted(mated), _sorted(nonmated)
    total = m.total + n.total
    if total == 0:
        return float("nan")
    return float((m.count_le(threshold) + (n.total - n.count_le(threshold))) / total)


def identification_ranks(dist: np.ndarray, probe_ids, gallery_ids,
                         exclude: np.ndarray | None = None) -> np.ndarray:
    """Rank of each probe's true identity in a closed-set search.

    Args:
        dist: ``P x G`` distances (``+inf`` = no comparison: FTA on either side).
        probe_ids, gallery_ids: identity labels.
        exclude: optional ``P x G`` boolean mask of gallery entries a probe must
            not see (e.g. the probe's own image).

    Identities are ranked by their closest gallery sample. The rank is
    ``1 + #(other identities strictly closer)``; ``+inf`` when the true identity
    has no finite distance (FTA, or no mate in the gallery).
    """
    d = np.array(dist, dtype=np.float64, copy=True)
    if exclude is not None:
        d[exclude] = np.inf
    probe_ids = np.asarray(probe_ids)
    gallery_ids = np.asarray(gallery_ids)
    labels, inverse = np.unique(gallery_ids, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(labels.size))
    per_id = np.minimum.reduceat(d[:, order], starts, axis=1) if d.shape[1] else \
        np.zeros((d.shape[0], 0))
    ranks = np.full(d.shape[0], np.inf)
    if labels.size == 0 or d.shape[0] == 0:
        return ranks
    pos = np.minimum(np.searchsorted(labels, probe_ids), labels.size - 1)
    known = labels[pos] == probe_ids
    true_d = np.where(known, per_id[np.arange(d.shape[0]), pos], np.inf)
    ok = np.isfinite(true_d)
    ranks[ok] = 1 + np.sum(per_id[ok] < true_d[ok, None], axis=1)
    return ranks


def rank_rate(ranks, k: int) -> float:
    """Fraction of probes whose true identity is within the first ``k`` ranks."""
    r = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(r <= k)) if r.size else float("nan")


def score_summary(values) -> dict[str, float]:
    """Count, FTA count, mean, std and quartiles of the finite scores."""
    sv = _sorted(values)
    fin = sv.finite
    out = {"n": int(sv.total), "n_fta": int(sv.n_fta)}
    if fin.size:
        q = np.quantile(fin, [0.25, 0.5, 0.75])
        out.update(mean=float(fin.mean()), std=float(fin.std()),
                   q25=float(q[0]), median=float(q[1]), q75=float(q[2]))
    else:
        out.update(mean=float("nan"), std=float("nan"), q25=float("nan"),
                   median=float("nan"), q75=float("nan"))
    return out


def histogram(values, edges: np.ndarray) -> list[int]:
    """Counts of the finite scores in the bins ``[e_i, e_i+1)`` of ``edges``; values
    below the first or above the last edge are counted in the first/last bin."""
    fin = _sorted(values).finite
    inner = np.searchsorted(fin, np.asarray(edges, dtype=np.float64)[1:-1], side="left")
    bounds = np.concatenate([[0], inner, [fin.size]])
    return np.diff(bounds).astype(int).tolist()


@dataclass
class ScoreSet:
    """Mated and non-mated distances of one comparison protocol (``+inf`` = FTA),
    sorted once (see :class:`SortedScores`)."""

    mated: SortedScores
    nonmated: SortedScores

    def __post_init__(self) -> None:
        self.mated = SortedScores(self.mated)
        self.nonmated = SortedScores(self.nonmated)

    def metrics(self, threshold: float, fmr_targets=(0.01, 0.001)) -> dict[str, float]:
        """The verification metrics of this protocol at the attacker's ``threshold``.

        Keys: ``tar``, ``fnmr``, ``fmr`` (= ``far``), ``accuracy``, ``eer``, ``auc``,
        ``tar_at_fmr1``/``tar_at_fmr01`` (FMR 1 % and 0.1 %), counts
        ``n_mated``/``n_nonmated`` and ``n_mated_fta``/``n_nonmated_fta`` (comparisons
        without a score, excluded from EER/AUC), and score means.
        """
        fmr, fnmr = rates_at(self.mated, self.nonmated, threshold)
        out: dict[str, float] = {
            "tar": 1.0 - fnmr if not np.isnan(fnmr) else float("nan"),
            "fnmr": fnmr,
            "fmr": fmr,
            "far": fmr,
            "accuracy": verification_accuracy(self.mated, self.nonmated, threshold),
            "eer": eer(self.mated, self.nonmated),
            "auc": roc_auc(self.mated, self.nonmated),
        }
        for target in fmr_targets:
            key = "tar_at_fmr" + _pct_key(target)
            out[key] = tar_at_fmr(self.mated, self.nonmated, target)[0]
        ms, ns = score_summary(self.mated), score_summary(self.nonmated)
        out.update(n_mated=ms["n"], n_nonmated=ns["n"], n_mated_fta=ms["n_fta"],
                   n_nonmated_fta=ns["n_fta"], mated_mean=ms["mean"], nonmated_mean=ns["mean"],
                   mated_std=ms["std"], nonmated_std=ns["std"])
        return out


def _pct_key(target: float) -> str:
    """0.01 -> '1', 0.001 -> '01', 0.1 -> '10' (percent with the dot dropped)."""
    pct = f"{target * 100:.6f}".rstrip("0").rstrip(".")
    return pct.replace("0.", "0").replace(".", "")
