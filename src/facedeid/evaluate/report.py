"""``report.md`` / ``report.html`` and figures from an evaluation result.

Regenerate from a saved run: ``python -m facedeid.evaluate.report REPORT_DIR``.

Figures (``REPORT_DIR/figures``, matplotlib, Agg backend):

* ``det_<scenario>_<method>.png`` - DET curves (probit axes), one panel per
  attacker, one line per strength (baseline ``none`` in grey), solid =
  template-aligned, dashed = naive (attacker's own detection; FTA excluded).
* ``eer_vs_strength_<scenario>.png``, ``tar_vs_strength_<scenario>.png``,
  ``ssim_vs_strength.png`` - one panel per method with a strength parameter.
* ``scores_<scenario>_<method>.png`` - histograms of same-person distances per
  strength over the different-person distances of the baseline, with the threshold.
* ``tradeoff_<scenario>.png`` - privacy-utility scatter: SSIM (x) against TAR
  at the attacker's threshold (y; lower = more private), one point per method
  configuration and attacker.
"""

from __future__ import annotations

import html
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .results import EvaluationResult

LINESTYLE = {"template": "-", "naive": "--"}
MARKERS = {0: "o", 1: "s", 2: "^", 3: "D", 4: "v", 5: "P"}

# (scenario, [(metric key, column title, kind)]); kind: pct, num3, num2, int
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "naive": [("tar", "TAR@thr", "pct"), ("fmr", "FMR@thr", "pct"), ("eer", "EER", "pct"),
              ("auc", "AUC", "num3"), ("tar_at_fmr1", "TAR@FMR1%", "pct"),
              ("tar_at_fmr01", "TAR@FMR0.1%", "pct"), ("rank1", "rank-1", "pct"),
              ("rank5", "rank-5", "pct"), ("fta", "FTA", "pct")],
    "reverse": [("tar", "TAR@thr", "pct"), ("fmr", "FMR@thr", "pct"), ("eer", "EER", "pct"),
                ("auc", "AUC", "num3"), ("tar_at_fmr1", "TAR@FMR1%", "pct"),
                ("rank1", "rank-1", "pct"), ("rank5", "rank-5", "pct"), ("fta", "FTA", "pct")],
    "parrot": [("tar", "TAR@thr", "pct"), ("far", "FAR@thr", "pct"), ("eer", "EER", "pct"),
               ("auc", "AUC", "num3"), ("tar_at_fmr1", "TAR@FMR1%", "pct"),
               ("rank1", "rank-1", "pct"), ("fta", "FTA", "pct")],
    "pairs": [("accuracy_before", "acc. before", "pct"), ("accuracy", "acc. after", "pct"),
              ("tar", "same pairs matched", "pct"), ("far", "diff. pairs matched", "pct"),
              ("deid_rate_pairs", "de-ID rate", "pct"), ("eer", "EER", "pct"),
              ("auc", "AUC", "num3"), ("fta", "FTA", "pct")],
    "self": [("match_rate", "matched own original", "pct"), ("deid_rate", "self de-ID rate", "pct"),
             ("self_median", "median distance", "num3"), ("fta", "FTA", "pct")],
}
UTILITY_COLUMNS = [("ssim", "SSIM", "num3"), ("ssim_outside", "SSIM outside faces", "num3"),
                   ("psnr", "PSNR dB", "num2"), ("psnr_outside", "PSNR outside dB", "num2"),
                   ("detection_kept", "faces still detected", "pct"),
                   ("landmark_nme", "landmark NME", "num3"), ("no_face_rate", "no face found", "pct")]
SCENARIO_TITLES = {
    "naive": "Naive: gallery originals, probes de-identified",
    "reverse": "Reverse: gallery de-identified, probes originals",
    "parrot": "Parrot: both de-identified (FAR = different people matched)",
    "pairs": "Pairs verification (second image of each pair de-identified)",
    "self": "Self: each de-identified image against its own original",
}


# ------------------------------------------------------------------ formatting
def fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "num3":
        return f"{value:.3f}"
    if kind == "num2":
        return f"{value:.2f}"
    if kind == "int":
        return str(int(value))
    return str(value)


def _label(method: str, params: dict) -> str:
    from .spec import MethodSpec

    return MethodSpec(method, dict(params or {})).label


def _spec_order(result: EvaluationResult) -> list[str]:
    return [m.get("label") or _label(m["method"], m["params"]) for m in result.methods] or \
        list(dict.fromkeys(_label(r.method, r.params) for r in result.records))


def scenario_rows(result: EvaluationResult, scenario: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one scenario's table (method, attacker, alignment, metrics)."""
    cols = COLUMNS.get(scenario, [])
    header = ["method", "attacker", "alignment"] + [c[1] for c in cols]
    order = {lab: i for i, lab in enumerate(_spec_order(result))}
    atts = list(result.attackers) or sorted({r.attacker for r in result.records})
    recs = [r for r in result.records if r.scenario == scenario]
    recs.sort(key=lambda r: (order.get(_label(r.method, r.params), 1e9),
                             atts.index(r.attacker) if r.attacker in atts else 99,
                             0 if r.alignment == "template" else 1))
    rows = [[_label(r.method, r.params), r.attacker, r.alignment]
            + [_cell(r.metrics, k, kind) for k, _, kind in cols] for r in recs]
    return header, rows


#: EER / AUC over fewer scored mated comparisons than this are flagged with a dagger
FEW_SCORES = 20
FEW_NOTE = (f"† fewer than {FEW_SCORES} mated comparisons had a score (the rest were failures "
            "to acquire): the EER/AUC beside it rests on very few samples.")


def _cell(metrics: dict, key: str, kind: str) -> str:
    text = fmt(metrics.get(key), kind)
    if key in ("eer", "auc") and metrics.get(key) is not None and "n_mated" in metrics:
        scored = (metrics.get("n_mated") or 0) - (metrics.get("n_mated_fta") or 0)
        if scored < FEW_SCORES:
            text += "†"
    if key.startswith("psnr") and metrics.get(key) is None:
        mse = metrics.get("mse" + key[4:])
        if mse == 0:
            text = "∞"
    return text


def utility_rows(result: EvaluationResult) -> tuple[list[str], list[list[str]]]:
    header = ["method"] + [c[1] for c in UTILITY_COLUMNS]
    rows = [[_label(u["method"], u["params"])]
            + [_cell(u["metrics"], k, kind) for k, _, kind in UTILITY_COLUMNS]
            for u in result.utility]
    return header, rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


# ------------------------------------------------------------------ figures
def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _probit(x):
    from scipy.stats import norm

    return norm.ppf(np.clip(np.asarray(x, dtype=np.float64), 1e-5, 1 - 1e-5))


def _det_axes(ax) -> None:
    ticks = [0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99]
    labels = ["0.01", "0.1", "1", "5", "20", "50", "80", "95", "99"]
    pos = _probit(ticks)
    ax.set_xticks(pos, labels)
    ax.set_yticks(pos, labels)
    lim = _probit([0.0001, 0.995])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="0.85", lw=0.8, zorder=0)  # EER line
    ax.set_xlabel("FMR (%)")
    ax.set_ylabel("FNMR (%)")
    ax.grid(True, color="0.92")


def _strength_methods(result: EvaluationResult) -> dict[str, str]:
    """``{method: strength parameter}`` for methods run at 2+ numeric strengths."""
    values: dict[str, set] = {}
    param: dict[str, str] = {}
    for m in result.methods:
        s = m.get("strength")
        params = m.get("params") or {}
        if s and m["method"] != "none" and set(params) == {s} and _num(params[s]) is not None:
            param.setdefault(m["method"], s)
            values.setdefault(m["method"], set()).add(_num(params[s]))
    return {k: v for k, v in param.items() if len(values[k]) >= 2}


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def figure_det(result: EvaluationResult, scenario: str, method: str, path: Path) -> bool:
    plt = _plt()
    atts = list(result.attackers)
    recs = [r for r in result.records if r.scenario == scenario and r.curves
            and r.method in (method, "none") and r.curves.get("det", {}).get("fmr")]
    if not recs:
        return False
    fig, axes = plt.subplots(1, len(atts), figsize=(4.2 * len(atts), 4.2), squeeze=False)
    labels = [lab for lab in _spec_order(result)
              if lab == "none" or lab.split(":")[0] == method]
    cmap = plt.get_cmap("viridis")
    for ax, att in zip(axes[0], atts):
        for r in recs:
            if r.attacker != att:
                continue
            lab = _label(r.method, r.params)
            if lab not in labels:
                continue
            k = labels.index(lab)
            color = "0.5" if r.method == "none" else cmap(k / max(len(labels) - 1, 1) * 0.9)
            det = r.curves["det"]
            ax.plot(_probit(det["fmr"]), _probit(det["fnmr"]), LINESTYLE.get(r.alignment, "-"),
                    color=color, lw=1.4,
                    label=f"{lab} ({r.alignment})")
        _det_axes(ax)
        ax.set_title(f"{att} - {scenario}")
    handles, labs = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labs, loc="lower center", ncol=min(4, len(labs)), fontsize=7,
                   frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.025 * math.ceil(len(labs) / 4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def figure_scores(result: EvaluationResult, scenario: str, method: str, path: Path) -> bool:
    """Mated-distance histograms per strength (template alignment) over the baseline's
    non-mated histogram, with the attacker's threshold: how far de-identification
    pushes a person's faces from each other, relative to strangers."""
    plt = _plt()
    atts = list(result.attackers)
    recs = [r for r in result.records if r.scenario == scenario and r.alignment == "template"
            and r.method in (method, "none") and r.curves and r.curves.get("hist")]
    if not any(r.method == method for r in recs):
        return False
    labels = [lab for lab in _spec_order(result)
              if lab == "none" or lab.split(":")[0] == method]
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, len(atts), figsize=(4.2 * len(atts), 3.4), squeeze=False)
    for ax, att in zip(axes[0], atts):
        for r in recs:
            if r.attacker != att:
                continue
            h = r.curves["hist"]
            edges = np.asarray(h["edges"])
            lab = _label(r.method, r.params)
            if r.method == "none":
                n = np.asarray(h["nonmated"], float)
                if n.sum():
                    ax.stairs(n / n.sum(), edges, fill=True, color="0.85",
                              label="different people (none)")
            m = np.asarray(h["mated"], float)
            if m.sum() and lab in labels:
                k = labels.index(lab)
                color = "0.3" if r.method == "none" else cmap(k / max(len(labels) - 1, 1) * 0.9)
                ax.stairs(m / m.sum(), edges, color=color, lw=1.3, label=f"same person: {lab}")
        thr = result.attackers.get(att, {}).get("threshold")
        if thr is not None:
            ax.axvline(thr, color="crimson", lw=0.8, ls=":", label="threshold")
        ax.set_title(f"{att} - {scenario} (template)")
        ax.set_xlabel("distance")
        ax.set_ylabel("share of comparisons")
    handles, labs = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labs, loc="lower center", ncol=min(4, len(labs)), fontsize=7,
                   frameon=False)
        fig.tight_layout(rect=(0, 0.05 + 0.03 * math.ceil(len(labs) / 4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def figure_vs_strength(result: EvaluationResult, scenario: str | None, key: str, ylabel: str,
                       path: Path) -> bool:
    plt = _plt()
    smeth = _strength_methods(result)
    if not smeth:
        return False
    fig, axes = plt.subplots(1, len(smeth), figsize=(4.2 * len(smeth), 3.6), squeeze=False)
    drew = False
    for ax, (method, sparam) in zip(axes[0], smeth.items()):
        if scenario is None:  # utility: one line per method
            pts = sorted({(_num(u["params"].get(sparam)), u["metrics"].get(key))
                          for u in result.utility if u["method"] == method
                          and _num(u["params"].get(sparam)) is not None
                          and set(u["params"]) == {sparam}}, key=lambda t: t[0])
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts), "o-", color="C0")
                drew = True
        else:
            for ai, att in enumerate(result.attackers):
                for align in ("template", "naive"):
                    pts = sorted((_num(r.params.get(sparam)), r.metrics.get(key))
                                 for r in result.records
                                 if r.method == method and r.attacker == att
                                 and r.scenario == scenario and r.alignment == align
                                 and _num(r.params.get(sparam)) is not None
                                 and set(r.params) == {sparam}
                                 and r.metrics.get(key) is not None)
                    if pts:
                        ax.plot(*zip(*pts), LINESTYLE[align], marker=MARKERS[ai % 6],
                                color=f"C{ai}", label=f"{att} ({align})", ms=4)
                        drew = True
        ax.set_xlabel(f"{method} {sparam}")
        ax.set_ylabel(ylabel)
        ax.set_title(method)
        ax.grid(True, color="0.92")
        if key not in ("psnr", "landmark_nme"):
            ax.set_ylim(-0.02, 1.02)
    if scenario is not None:
        best = max((ax.get_legend_handles_labels() for ax in axes[0]), key=lambda hl: len(hl[1]))
        if best[0]:
            axes[0][-1].legend(*best, fontsize=7, frameon=False)
    fig.tight_layout()
    if drew:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drew


def figure_tradeoff(result: EvaluationResult, scenario: str, path: Path) -> bool:
    plt = _plt()
    util = {_label(u["method"], u["params"]): u["metrics"].get("ssim") for u in result.utility}
    methods = list(dict.fromkeys(m["method"] for m in result.methods))
    aligns = [a for a in ("template", "naive")
              if any(r.alignment == a and r.scenario == scenario for r in result.records)]
    if not util or not aligns:
        return False
    fig, axes = plt.subplots(1, len(aligns), figsize=(5.2 * len(aligns), 4.4), squeeze=False)
    drew = False
    for ax, align in zip(axes[0], aligns):
        for r in result.records:
            if r.scenario != scenario or r.alignment != align:
                continue
            lab = _label(r.method, r.params)
            x, y = util.get(lab), r.metrics.get("tar")
            if x is None or y is None:
                continue
            mi = methods.index(r.method) if r.method in methods else 0
            ai = list(result.attackers).index(r.attacker) if r.attacker in result.attackers else 0
            ax.scatter([x], [y], color="0.4" if r.method == "none" else f"C{mi}",
                       marker=MARKERS[ai % 6], s=30)
            sval = r.params.get(next(iter(r.params))) if r.params else None
            if sval is not None:
                ax.annotate(str(sval), (x, y), fontsize=6, xytext=(3, 2),
                            textcoords="offset points")
            drew = True
        ax.set_xlabel("SSIM (utility, higher is better)")
        ax.set_ylabel(f"TAR at threshold, {scenario} (lower is more private)")
        ax.set_title(f"privacy vs utility ({align} alignment)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, color="0.92")
    # legends: colour = method, marker = attacker
    from matplotlib.lines import Line2D

    hs = [Line2D([], [], color="0.4" if m == "none" else f"C{i}", marker="o", ls="", label=m)
          for i, m in enumerate(methods)]
    hs += [Line2D([], [], color="k", marker=MARKERS[i % 6], ls="", label=a)
           for i, a in enumerate(result.attackers)]
    axes[0][-1].legend(handles=hs, fontsize=7, frameon=False, loc="best")
    fig.tight_layout()
    if drew:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drew


def write_figures(result: EvaluationResult, folder: Path) -> list[tuple[str, Path]]:
    """Write every figure; returns ``[(caption, path)]``."""
    folder.mkdir(parents=True, exist_ok=True)
    for pattern in ("det_*.png", "scores_*.png", "eer_vs_strength_*.png", "tar_vs_strength_*.png",
                    "ssim_vs_strength.png", "tradeoff_*.png"):
        for old in folder.glob(pattern):   # figures of an earlier report in this folder
            old.unlink()
    scen = {r.scenario for r in result.records}
    out = []
    methods = [m for m in dict.fromkeys(mm["method"] for mm in result.methods) if m != "none"]
    for s in ("naive", "reverse", "pairs", "parrot"):
        if s not in scen:
            continue
        for m in methods:
            p = folder / f"det_{s}_{m}.png"
            if figure_det(result, s, m, p):
                out.append((f"DET curves, {s} scenario, {m} (grey: no de-identification)", p))
    primary = [s for s in ("naive", "pairs") if s in scen]
    for s in primary[:1]:
        for m in methods:
            p = folder / f"scores_{s}_{m}.png"
            if figure_scores(result, s, m, p):
                out.append((f"Distance distributions, {s} scenario, {m} (template alignment)", p))
    for s in [x for x in ("naive", "reverse", "pairs") if x in scen]:
        p = folder / f"eer_vs_strength_{s}.png"
        if figure_vs_strength(result, s, "eer", f"EER ({s})", p):
            out.append((f"EER vs strength, {s} scenario (higher = more private)", p))
    for s in primary:
        p = folder / f"tar_vs_strength_{s}.png"
        if figure_vs_strength(result, s, "tar", f"TAR at threshold ({s})", p):
            out.append((f"TAR at the attacker's threshold vs strength, {s} scenario", p))
    if result.utility:
        p = folder / "ssim_vs_strength.png"
        if figure_vs_strength(result, None, "ssim", "SSIM", p):
            out.append(("SSIM vs strength", p))
    for s in primary:
        p = folder / f"tradeoff_{s}.png"
        if figure_tradeoff(result, s, p):
            out.append((f"Privacy-utility trade-off, {s} scenario", p))
    return out


# ------------------------------------------------------------------ documents
def _intro(result: EvaluationResult) -> list[tuple[str, str]]:
    d, c = result.dataset, result.config
    items = [
        ("created", result.created),
        ("command", " ".join(result.command) if result.command else "Python API"),
        ("data", f"{d.get('images_root')} ({d.get('source')}"
                 + (f", pairs file {d.get('pairs_file')}" if d.get("pairs_file") else "") + ")"),
        ("images", f"{d.get('n_images')} images of {d.get('n_identities')} identities; "
                   f"{d.get('n_probes')} probes (identity has another image); "
                   f"{d.get('n_pairs')} pairs ({d.get('n_pairs_same')} same)"),
        ("de-identified", f"{d.get('n_deidentified')} images per method configuration; "
                          f"utility and self on {d.get('n_self')}"),
        ("project detector", f"{c.get('detector_resolved')}; no face found in "
                             f"{d.get('n_no_face_default_detector')} originals (left untouched)"),
        ("template landmarks", str(d.get("template_landmarks"))),
        ("attackers", "; ".join(f"{n} ({a.get('metric')}, match if distance <= "
                                f"{a.get('threshold')}, naive detection: {a.get('naive_detection')})"
                                for n, a in result.attackers.items())),
        ("region", f"shape {c.get('shape')}, mask_scale {c.get('mask_scale')}, "
                   f"feather {c.get('feather')}; seed {c.get('seed')}"),
        ("machine load", "1-min load average at start / end: "
                         f"{(result.timing.get('loadavg') or {}).get('start')} / "
                         f"{(result.timing.get('loadavg') or {}).get('end')} "
                         f"({result.timing.get('workers')} workers)"),
        ("versions", ", ".join(f"{k} {v}" for k, v in result.versions.items() if v is not None)),
        ("time", ", ".join(f"{k} {v:.0f} s" for k, v in result.timing.items()
                           if isinstance(v, (int, float)) and k.endswith("_s"))
         + "".join(f"; {lab}: {t['images']} images in {t['seconds']:.0f} s "
                   f"({t.get('worker_cpu_seconds') or 0:.0f} worker CPU-s)"
                   for lab, t in (result.timing.get("per_method") or {}).items())),
    ]
    return items


HOW_TO_READ = (
    "Distances: a comparison matches when the attacker's distance is at or below its threshold. "
    "TAR/FMR/accuracy/rank-k count a failure to acquire (FTA: the attacker found no face) as a "
    "non-match; EER, AUC and DET curves exclude FTA comparisons (FTA column = share of "
    "de-identified images not acquired). *template* alignment embeds the de-identified image at "
    "the landmarks of the original face (no FTA possible), *naive* lets the attacker detect the "
    "face itself. Lower TAR / rank-1 / accuracy after, higher EER and de-ID rate = more "
    "private. Parrot: a high TAR with a high FAR means de-identified faces match everyone, not "
    "re-identification."
)


def write_report(result: EvaluationResult | str | Path, folder: str | Path | None = None
                 ) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/`` into ``folder``."""
    if isinstance(result, (str, Path)):
        src = Path(result)
        result = EvaluationResult.load(src)
        folder = folder or (src if src.is_dir() else src.parent)
    folder = Path(folder if folder is not None else result.output)
    folder.mkdir(parents=True, exist_ok=True)
    figs = write_figures(result, folder / "figures")
    scen = [s for s in ("pairs", "naive", "reverse", "parrot", "self")
            if any(r.scenario == s for r in result.records)]

    md = ["# facedeid evaluation report", ""]
    md += [f"- **{k}**: {v}" for k, v in _intro(result)]
    md += ["", HOW_TO_READ, ""]
    if result.notes:
        md += ["Notes:", ""] + [f"- {n}" for n in result.notes] + [""]
    if result.utility:
        md += ["## Utility", "", md_table(*utility_rows(result)), ""]
    for s in scen:
        md += [f"## {SCENARIO_TITLES.get(s, s)}", "", md_table(*scenario_rows(result, s)), ""]
        if s != "self" and any("†" in c for row in scenario_rows(result, s)[1] for c in row):
            md += [FEW_NOTE, ""]
    if figs:
        md += ["## Figures", ""]
        for cap, p in figs:
            md += [f"### {cap}", "", f"![{cap}]({p.relative_to(folder).as_posix()})", ""]
    from ..io.atomic import atomic_write_bytes

    md_path = atomic_write_bytes(folder / "report.md", "\n".join(md).encode(), fsync=False)

    css = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
           "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
           "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
           "td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}"
           "tr:nth-child(even){background:#f6f6f6}img{max-width:100%}"
           "li{margin:2px 0}")
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>facedeid evaluation</title>"
         f"<style>{css}</style></head><body><h1>facedeid evaluation report</h1><ul>"]
    h += [f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in _intro(result)]
    h += ["</ul>", f"<p>{html.escape(HOW_TO_READ)}</p>"]
    if result.notes:
        h += ["<p>Notes:</p><ul>"] + [f"<li>{html.escape(n)}</li>" for n in result.notes] + ["</ul>"]
    if result.utility:
        h += ["<h2>Utility</h2>", html_table(*utility_rows(result))]
    for s in scen:
        rows = scenario_rows(result, s)
        h += [f"<h2>{html.escape(SCENARIO_TITLES.get(s, s))}</h2>", html_table(*rows)]
        if any("†" in c for row in rows[1] for c in row):
            h += [f"<p>{html.escape(FEW_NOTE)}</p>"]
    if figs:
        h += ["<h2>Figures</h2>"]
        for cap, p in figs:
            h += [f"<h3>{html.escape(cap)}</h3>",
                  f"<img src='{html.escape(p.relative_to(folder).as_posix())}' "
                  f"alt='{html.escape(cap)}'>"]
    h += ["</body></html>"]
    html_path = atomic_write_bytes(folder / "report.html", "\n".join(h).encode(), fsync=False)
    return md_path, html_path


def summary_text(result: EvaluationResult) -> str:
    """A compact terminal summary: one line per method configuration and attacker."""
    util = {_label(u["method"], u["params"]): u["metrics"] for u in result.utility}
    head = f"{'method':24s} {'attacker':8s} " + " ".join(
        f"{h:>10s}" for h in ("pairs acc", "naive TAR", "naive EER", "parrotFAR", "self deID",
                              "SSIM"))
    lines = [head, "-" * len(head)]
    for lab in _spec_order(result):
        for att in result.attackers:
            def get(scenario: str, key: str, kind: str = "pct") -> str:
                for align in ("template", "naive"):
                    rs = [r for r in result.records if _label(r.method, r.params) == lab
                          and r.attacker == att and r.scenario == scenario
                          and r.alignment == align]
                    if rs:
                        return fmt(rs[0].metrics.get(key), kind)
                return "–"
            lines.append(f"{lab[:24]:24s} {att[:8]:8s} " + " ".join(f"{v:>10s}" for v in (
                get("pairs", "accuracy"), get("naive", "tar"), get("naive", "eer"),
                get("parrot", "far"), get("self", "deid_rate"),
                fmt(util.get(lab, {}).get("ssim"), "num3"))))
    lines.append("(template-aligned where computed; see report.md for naive alignment)")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) != 2:
        print("usage: python -m facedeid.evaluate.report REPORT_DIR", file=sys.stderr)
        sys.exit(2)
    md_path, html_path = write_report(sys.argv[1])
    print(f"{md_path}\n{html_path}")
