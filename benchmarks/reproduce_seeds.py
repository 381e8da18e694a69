"""Reproduce the tables of seeds 003 and 004 on LFW DevTrain with ONE ``facedeid evaluate``.

    .venv/bin/python -m benchmarks.reproduce_seeds              # run (hours on 2 shared cores)
    .venv/bin/python -m benchmarks.reproduce_seeds --tables-only # tables from the saved run

The command (recorded in ``results.json`` and ``report.md``; resumable: an
interrupted run, started again, continues from the evaluation cache)::

    facedeid evaluate --data ../shared/data --pairs ../shared/data/lfw/pairsDevTrain.txt \\
        --detector yunet --methods blur:k=15,31,61:grain=0 pixelate:k=32,16,8 noise:k=10,30,70 \\
        blackout --attackers dlib,sface,facenet --scenarios naive,reverse,pairs,self \\
        --workers 2 -o benchmarks/results/seeds_lfw

``grain=0``: seed 003's blur is a pure Gaussian blur; facedeid's default blur adds a
fine grain (see ``facedeid.methods.classic.DEFAULT_GRAIN``).

* seed 003 (Heimes): DET curves and EER of blur, pixelate and noise at several
  strengths, naive (gallery originals, probes de-identified) and reverse
  (gallery de-identified, probes originals) recognition: all 3,443 images of the
  2,200 pairs, every image whose identity has another one is a probe (2,115);
* seed 004 (Li & Lyu): verification accuracy of the pairs before and after the
  second image is de-identified, and the self de-identification rate.

``--detector yunet``: LFW crops hold one large face, which YuNet alone finds in
every image (the project default adds a tiled small-face pass meant for crowds).

Writes ``benchmarks/results/seeds_lfw/`` (``results.json``, ``report.md``,
figures) and ``seed_tables.md`` there: the compact tables of docs/EVALUATION.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "seeds_lfw"
METHODS = ["blur:k=15,31,61:grain=0", "pixelate:k=32,16,8", "noise:k=10,30,70", "blackout"]
ATTACKERS = ("dlib", "sface", "facenet")
NAMES = {"dlib": "dlib", "sface": "SFace", "facenet": "FaceNet"}


def command(methods: list[str], out: Path, data: str = "../shared/data",
            extra: list[str] | None = None) -> list[str]:
    return (["facedeid", "evaluate", "--data", data, "--pairs", f"{data}/lfw/pairsDevTrain.txt",
             "--detector", "yunet", "--methods", *methods,
             "--attackers", ",".join(ATTACKERS), "--scenarios", "naive,reverse,pairs,self",
             "--workers", "2", "-o", str(out)] + (extra or []))


# ------------------------------------------------------------------ tables
def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _get(records: dict, label: str, att: str, scen: str, align: str, key: str):
    return records.get((label, att, scen, align), {}).get(key)


def tables(results: dict) -> str:
    """The compact seed tables (Markdown) from a ``results.json`` dict."""
    recs = {}
    for r in results["records"]:
        label = next(m["label"] for m in results["methods"]
                     if m["method"] == r["method"] and m["params"] == r["params"])
        recs[(label, r["attacker"], r["scenario"], r["alignment"])] = r["metrics"]
    util = {next(m["label"] for m in results["methods"] if m["method"] == u["method"]
                 and m["params"] == u["params"]): u["metrics"] for u in results["utility"]}
    labels = [m["label"] for m in results["methods"]]
    ds = results["dataset"]
    g = lambda *a: _get(recs, *a)  # noqa: E731
    out = [f"Data: LFW DevTrain, {ds['n_pairs']} pairs ({ds['n_pairs_same']} same-person), "
           f"{ds['n_images']} images of {ds['n_identities']} people; naive/reverse: "
           f"{ds['n_probes']} probes against all {ds['n_images']} images. Values in %. "
           "*tmpl* = template-aligned (the attacker embeds the de-identified image at the "
           "original's landmarks), *own* = the attacker's own detection (failures to acquire "
           "excluded from EER, counted as non-matches in TAR/accuracy).", ""]

    out += ["**Seed 003: naive and reverse recognition, dlib ResNet (the seeds' recognizer, "
            "match at distance <= 0.6)**", "",
            "| method | SSIM | naive EER tmpl | naive EER own | FTA own | naive TAR tmpl | "
            "naive TAR own | naive rank-1 tmpl | reverse EER tmpl | reverse EER own |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for lab in labels:
        ssim = util.get(lab, {}).get("ssim")
        out.append(f"| {lab} | {'–' if ssim is None else f'{ssim:.3f}'} | "
                   f"{_pct(g(lab, 'dlib', 'naive', 'template', 'eer'))} | "
                   f"{_pct(g(lab, 'dlib', 'naive', 'naive', 'eer'))} | "
                   f"{_pct(g(lab, 'dlib', 'naive', 'naive', 'fta'))} | "
                   f"{_pct(g(lab, 'dlib', 'naive', 'template', 'tar'))} | "
                   f"{_pct(g(lab, 'dlib', 'naive', 'naive', 'tar'))} | "
                   f"{_pct(g(lab, 'dlib', 'naive', 'template', 'rank1'))} | "
                   f"{_pct(g(lab, 'dlib', 'reverse', 'template', 'eer'))} | "
                   f"{_pct(g(lab, 'dlib', 'reverse', 'naive', 'eer'))} |")
    out += ["", "**Seed 003, the other attackers: naive EER (tmpl / own) and naive FTA (own)**", "",
            "| method | " + " | ".join(f"{NAMES[a]} EER tmpl / own | {NAMES[a]} FTA"
                                       for a in ATTACKERS[1:]) + " |",
            "|---|" + "---|---|" * (len(ATTACKERS) - 1)]
    for lab in labels:
        cells = []
        for a in ATTACKERS[1:]:
            cells.append(f"{_pct(g(lab, a, 'naive', 'template', 'eer'))} / "
                         f"{_pct(g(lab, a, 'naive', 'naive', 'eer'))}")
            cells.append(_pct(g(lab, a, "naive", "naive", "fta")))
        out.append(f"| {lab} | " + " | ".join(cells) + " |")

    out += ["", "**Seed 004: pairs verification (second image de-identified) and self "
            "de-identification, template-aligned (own detection in brackets)**", "",
            "| method | " + " | ".join(f"{NAMES[a]} acc. after | {NAMES[a]} same pairs matched | "
                                       f"{NAMES[a]} self de-ID" for a in ATTACKERS) + " |",
            "|---|" + "---|---|---|" * len(ATTACKERS)]
    for lab in labels:
        cells = []
        for a in ATTACKERS:
            for scen, key in (("pairs", "accuracy"), ("pairs", "tar"), ("self", "deid_rate")):
                cells.append(f"{_pct(g(lab, a, scen, 'template', key))} "
                             f"({_pct(g(lab, a, scen, 'naive', key))})")
        out.append(f"| {lab} | " + " | ".join(cells) + " |")
    before = {a: g("none", a, "pairs", "template", "accuracy_before") for a in ATTACKERS}
    out += ["", "Accuracy before de-identification: "
            + ", ".join(f"{NAMES[a]} {_pct(v)}" for a, v in before.items()) + "."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables-only", action="store_true",
                    help="only rebuild seed_tables.md from the saved results.json")
    ap.add_argument("--methods", nargs="+", default=METHODS,
                    help="method specs (default: the seed sweep above)")
    ap.add_argument("-o", "--output", default=str(OUT))
    args = ap.parse_args(argv)
    out = Path(args.output)
    if not args.tables_only:
        cmd = command(args.methods, Path(os.path.relpath(out)))
        exe = Path(sys.executable).with_name("facedeid")
        print(" ".join(cmd), flush=True)
        rc = subprocess.call([str(exe)] + cmd[1:])
        if rc:
            return rc
    results = json.loads((out / "results.json").read_text())
    md = tables(results)
    (out / "seed_tables.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
