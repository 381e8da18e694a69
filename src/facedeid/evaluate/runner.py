"""``facedeid evaluate``: de-identify a labelled dataset, attack it, report.

Python API::

    from facedeid.evaluate import EvaluationConfig, run_evaluation
    result = run_evaluation(EvaluationConfig(data="../shared/data", methods=["blur:k=5,31"],
                                             attackers=["sface"], scenarios=["pairs", "self"],
                                             limit_pairs=200, output="report/"))
    result.select(method="blur", scenario="pairs")[0].metrics["accuracy"]

Work plan (each step cached, :class:`~.cache.RunCache`, so a second run or an
interrupted one resumes):

1. Originals (once per image, shared by every method): the project's detector
   finds the faces that will be painted; 68-point landmarks of those faces
   (utility); the *template* landmarks; every attacker's embedding of the
   original, naive and template-aligned (:meth:`.worker.Worker.originals`).
2. Per method configuration: each distinct image is de-identified once, then
   embedded once per attacker and alignment, and its utility measured; every
   scenario reuses these (:meth:`.worker.Worker.deidentify`).
3. Scenario metrics (:mod:`.scenarios`) per method configuration x attacker x
   alignment -> :class:`~.results.EvaluationResult`, written to ``results.json``;
   ``report.md``/``report.html`` with figures (:mod:`.report`).

Steps 1 and 2 run in a process pool (:class:`.worker.Pool`); the parent writes
results to the cache after every chunk. The command line is :mod:`.command`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .. import __version__
from ..errors import FaceDeidError, InputError, UnknownNameError
from . import datasets as D
from . import scenarios as S
from .cache import CACHE_VERSION, RunCache, attacker_tag, config_digest, file_digest
from .command import add_evaluate_arguments, config_from_args, evaluate_main, main  # noqa: F401
from .results import (ALIGNMENTS, DEFAULT_ATTACKERS, DEFAULT_SCENARIOS, FORMAT,  # noqa: F401
                      EvaluationConfig, EvaluationResult, Record, versions)
from .spec import BASELINE, MethodSpec, parse_method_specs, spec_payload, validate_specs
from .batch import batch_extras, batch_key, is_batch
from .utility import aggregate_utility
from .worker import (Pool, WorkerConfig, default_workers, merge_stages, resolve_attacker,
                     shares_detection)

log = logging.getLogger("facedeid.evaluate")

#: images per task sent to a worker (and per cache transaction)
CHUNK = 8


@dataclass
class _ImageSets:
    """Which images each step works on (indices into the universe)."""

    deid: np.ndarray        # de-identified (and embedded) per method configuration
    self_set: np.ndarray    # the self scenario's images (the pairs' second images)
    util: set[int]          # utility measured on these


def run_evaluation(config: EvaluationConfig, command: list[str] | None = None
                   ) -> EvaluationResult:
    """Run an evaluation (see the module docstring); writes the report when ``config.output``.

    Raises:
        FaceDeidError (InputError, UnknownNameError, SpecError): bad data, names or specs.
    """
    t_start = time.perf_counter()
    load_start = _loadavg()
    cfg = config
    scenarios, alignments = _check_names(cfg)
    attackers = [resolve_attacker(a) for a in cfg.attackers]
    names = [a.name for a in attackers]
    if len(set(names)) != len(names):
        raise FaceDeidError(f"attacker given twice: {names}")
    specs = parse_method_specs(cfg.methods)
    resolved_specs = validate_specs(specs, cfg.detector, cfg.detector_threshold,
                                    {"shape": cfg.shape, "mask_scale": cfg.mask_scale,
                                     "feather": cfg.feather})
    notes: list[str] = []
    uni, root, pairs_file = _universe(cfg, scenarios, notes)
    workers, wcfg = _worker_config(cfg, alignments, notes)

    from ..pipeline import Anonymizer

    det = Anonymizer(detector=cfg.detector, threshold=cfg.detector_threshold)
    det_key = config_digest({"detector": det.detector_name, "threshold": cfg.detector_threshold,
                             "repr": repr(det.detector), "lm68": wcfg.landmarks,
                             "facedeid": __version__}, 12)
    tmpdir = None
    if cfg.cache is False:
        import tempfile

        tmpdir = tempfile.TemporaryDirectory(prefix="facedeid-eval-")
        folder = Path(tmpdir.name)
    else:
        from ..config import cache_dir

        folder = Path(cfg.cache).expanduser() if cfg.cache else cache_dir() / "evaluate"
    cache = RunCache(folder, det_key, [attacker_tag(a) for a in attackers])
    timing: dict[str, Any] = {"setup_s": time.perf_counter() - t_start}
    try:
        with Pool(workers, wcfg) as pool:
            t0 = time.perf_counter()
            uni, digests, infos = _originals(pool, cache, uni, alignments, cfg, notes, timing)
            timing["originals_s"] = time.perf_counter() - t0
            sets = _image_sets(uni, scenarios, cfg.utility)
            t0 = time.perf_counter()
            mkeys = {}
            per_method: dict[str, dict] = {}
            for spec in specs:
                if spec.method == BASELINE:
                    continue
                mkeys[spec.label] = config_digest({
                    "spec": spec_payload(spec), "resolved": resolved_specs[spec.label],
                    "det": det_key, "seed": cfg.seed, "cache": CACHE_VERSION,
                    "facedeid": __version__,
                    **batch_key(spec, digests, uni.labels, sets.deid)})
                stats = _deidentify(pool, cache, spec, mkeys[spec.label], uni, digests, infos,
                                    sets, alignments, cfg)
                if stats:
                    per_method[spec.label] = stats
            timing["deidentify_and_embed_s"] = time.perf_counter() - t0
            timing["per_method"] = per_method
        t0 = time.perf_counter()
        records, utility_rows = _records(cache, specs, attackers, alignments, scenarios, uni,
                                         digests, infos, sets, mkeys, cfg)
        timing["metrics_s"] = time.perf_counter() - t0
    finally:
        cache.close()
        if tmpdir is not None:
            tmpdir.cleanup()

    tmpl_sources = [info["tmpl_source"] for info in infos]
    n_faces = [len(info["faces"]) for info in infos]
    dataset = uni.describe()
    dataset.update(images_root=str(root), n_probes=int(uni.probe_indices().size),
                   n_deidentified=int(len(sets.deid)), n_self=int(len(sets.self_set)),
                   n_no_face_default_detector=int(sum(1 for n in n_faces if n == 0)),
                   template_landmarks={"attacker": tmpl_sources.count("attacker"),
                                       "detector": tmpl_sources.count("detector"),
                                       "missing": tmpl_sources.count(None)})
    timing.update(workers=workers, threads_per_worker=wcfg.threads,
                  loadavg={"start": load_start, "end": _loadavg()})
    result = EvaluationResult(
        records=records,
        config={**cfg.to_dict(), "workers": workers, "scenarios": scenarios,
                "alignments": alignments, "pairs": str(pairs_file) if pairs_file else None,
                "cache": None if tmpdir is not None else str(folder),
                "detector_resolved": det.detector_name},
        versions=versions(),
        dataset=dataset,
        attackers={a.name: {"class": type(a).__name__, "metric": a.metric,
                            "threshold": float(a.threshold), "dim": getattr(a, "dim", None),
                            "cache_tag": attacker_tag(a),
                            "naive_detection": "shared attacker detector (YuNet)"
                            if shares_detection(a) else "own"} for a in attackers},
        methods=[{"method": s.method, "params": s.all_params, "label": s.label,
                  "strength": s.strength, "strength_value": s.strength_value,
                  "resolved": resolved_specs[s.label]} for s in specs],
        utility=utility_rows,
        notes=uni.notes + notes,
        timing=timing,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command,
    )
    if cfg.output is not None:
        out = Path(cfg.output)
        result.output = out
        result.save(out)
        if cfg.plots:
            from .report import write_report

            t0 = time.perf_counter()
            write_report(result, out)
            result.timing["report_s"] = time.perf_counter() - t0
    result.timing["total_s"] = time.perf_counter() - t_start
    if cfg.output is not None:
        result.save(cfg.output)
    return result


# =================================================================== set-up
def _check_names(cfg: EvaluationConfig) -> tuple[list[str], list[str]]:
    scenarios = [s.strip() for s in cfg.scenarios]
    for s in scenarios:
        if s not in S.SCENARIOS:
            raise UnknownNameError(f"unknown scenario '{s}'; choose from: {', '.join(S.SCENARIOS)}")
    alignments = [a.strip() for a in cfg.alignments]
    for a in alignments:
        if a not in ALIGNMENTS:
            raise UnknownNameError(f"unknown alignment '{a}'; choose from: {', '.join(ALIGNMENTS)}")
    if not scenarios or not alignments or not cfg.attackers:
        raise FaceDeidError("need at least one scenario, alignment and attacker")
    return scenarios, alignments


def _universe(cfg: EvaluationConfig, scenarios: list[str], notes: list[str]):
    """``(universe, images root, pairs file or None)``: the images evaluated."""
    root = D.images_root(cfg.data)
    pairs_file = Path(cfg.pairs).expanduser() if cfg.pairs else None
    if pairs_file is None and "pairs" in scenarios:
        pairs_file = D.find_pairs_file(cfg.data)
        if pairs_file is None:
            raise InputError(f"{cfg.data}: the pairs scenario needs a pairs file (--pairs FILE); "
                             "none found beside the images")
    if pairs_file is not None:
        pairs = D.read_pairs(pairs_file, root)
        uni = D.universe_from_pairs(pairs, root, cfg.limit_pairs, cfg.seed, pairs_file)
    else:
        uni = D.universe_from_folder(root, cfg.max_identities, cfg.per_identity,
                                     cfg.distractors, cfg.seed)
    if any(s in S.GALLERY_SCENARIOS for s in scenarios) and uni.probe_indices().size == 0:
        raise InputError("no identity has 2 or more images in the evaluation set; the "
                         "naive, reverse and parrot scenarios need some")
    if cfg.limit_pairs is not None and pairs_file is None:
        notes.append("--limit-pairs ignored: no pairs file in use")
    return uni, root, pairs_file


def _worker_config(cfg: EvaluationConfig, alignments: list[str], notes: list[str]):
    workers = cfg.workers if cfg.workers is not None else default_workers()
    if workers > 1 and not all(isinstance(a, str) for a in cfg.attackers):
        notes.append("attacker objects given: running in one process")
        workers = 1
    wcfg = WorkerConfig(attackers=list(cfg.attackers), alignments=alignments,
                        detector=cfg.detector, detector_threshold=cfg.detector_threshold,
                        shape=cfg.shape, mask_scale=cfg.mask_scale, feather=cfg.feather,
                        seed=cfg.seed, landmarks=bool(cfg.utility and cfg.landmarks),
                        threads=max(1, default_workers(cap=64) // workers))
    if wcfg.landmarks:
        try:
            from ..landmarks import dlib68  # noqa: F401
        except Exception as exc:
            notes.append(f"68-point landmarks unavailable ({exc}); landmark_nme not computed")
            wcfg.landmarks = False
    return workers, wcfg


# =================================================================== 1. originals
def _originals(pool: Pool, cache: RunCache, uni: D.Universe, alignments: list[str],
               cfg: EvaluationConfig, notes: list[str], timing: dict):
    """Compute what is not cached about the originals; drop unreadable images when
    ``skip_bad_images``. Returns ``(universe, digests, infos)`` (row-aligned lists)."""
    digests = _digests(uni, cfg.skip_bad_images, notes)
    if len(digests) < len(uni):
        keep = sorted(digests)
        uni = _drop(uni, [i for i in range(len(uni)) if i not in digests])
        digests = {j: digests[i] for j, i in enumerate(keep)}
    dgs = [digests[i] for i in range(len(uni))]
    infos = cache.load_originals(dgs)
    todo = []
    for i, (dg, info) in enumerate(zip(dgs, infos)):
        need = None if info is None else cache.missing_embeddings(dg, info, alignments)
        if info is None or need:
            todo.append((i, {"path": str(uni.paths[i]), "info": info, "need": need}))
    bad: list[int] = []
    stages: dict[str, list[float]] = {}
    cpu = 0.0
    if todo:
        bar = _progress(len(todo), "originals", cfg.progress)
        chunks = [([i for i, _ in todo[s:s + CHUNK]], [it for _, it in todo[s:s + CHUNK]])
                  for s in range(0, len(todo), CHUNK)]
        for idxs, (results, stats) in pool.run("orig", None, chunks):
            cpu += stats["cpu"]
            merge_stages(stages, stats["stages"])
            done = []
            for i, r in zip(idxs, results):
                if "error" in r:
                    if not cfg.skip_bad_images:
                        raise InputError(r["error"])
                    bad.append(i)
                    notes.append(f"skipped: {r['error']}")
                    continue
                done.append((dgs[i], r))
            cache.put_originals(done)
            bar.update(len(idxs))
        bar.close()
    if bad:
        keep = [i for i in range(len(uni)) if i not in set(bad)]
        uni = _drop(uni, bad)
        dgs = [dgs[i] for i in keep]
    infos = cache.load_originals(dgs)
    timing.update(originals_computed=len(todo), originals_worker_cpu_seconds=cpu,
                  originals_stages=_stages_json(stages))
    return uni, dgs, infos


def _digests(uni: D.Universe, skip: bool, notes: list[str]) -> dict[int, str]:
    """``{index: "file:<sha256>"}`` (the embedding cache's digest of a file)."""
    out = {}
    for i, p in enumerate(uni.paths):
        try:
            if p.stat().st_size == 0:
                raise InputError(f"{p}: empty image file")
            out[i] = file_digest(p)
        except (InputError, OSError) as exc:
            if not skip:
                raise InputError(str(exc)) from None
            notes.append(f"skipped: {exc}")
    return out


def _drop(uni: D.Universe, bad: Iterable[int]) -> D.Universe:
    bad = set(int(b) for b in bad)
    keep = [i for i in range(len(uni)) if i not in bad]
    remap = {old: new for new, old in enumerate(keep)}
    pairs = [(remap[a], remap[b], s) for a, b, s in uni.pairs if a in remap and b in remap]
    notes = list(uni.notes)
    if len(pairs) < len(uni.pairs):
        notes.append(f"{len(uni.pairs) - len(pairs)} pairs dropped with their unreadable images")
    return D.Universe([uni.paths[i] for i in keep], [uni.labels[i] for i in keep], pairs,
                      uni.source, notes, uni.pairs_file)


def _image_sets(uni: D.Universe, scenarios: list[str], utility: bool) -> _ImageSets:
    self_set = uni.second_indices() if uni.pairs else np.arange(len(uni))
    if any(s in S.GALLERY_SCENARIOS for s in scenarios):
        deid = np.arange(len(uni))
    else:
        deid = np.union1d(uni.second_indices() if "pairs" in scenarios else [],
                          self_set).astype(int)
    return _ImageSets(deid, self_set, set(self_set.tolist()) if utility else set())


# =================================================================== 2. de-identify
def _deidentify(pool: Pool, cache: RunCache, spec: MethodSpec, mkey: str, uni: D.Universe,
                dgs: list[str], infos: list[dict], sets: _ImageSets, alignments: list[str],
                cfg: EvaluationConfig) -> dict | None:
    """De-identify and embed the images of ``sets.deid`` not cached; their timing, or
    ``None`` when everything was cached."""
    everything = [[ai, m] for ai in range(len(cache.tags)) for m in alignments]
    if cfg.fresh:
        missing = {dgs[i]: (everything, i in sets.util) for i in sets.deid}
    else:
        missing = cache.deid_missing(mkey, [(dgs[i], i in sets.util) for i in sets.deid],
                                     alignments)
    todo = [int(i) for i in sets.deid if dgs[i] in missing]
    if not todo:
        return None
    t0 = time.perf_counter()
    batch = {}
    if is_batch(spec):  # k-Same: group the whole de-identified set first (evaluate/batch.py)
        batch = batch_extras(spec, {"shape": cfg.shape, "mask_scale": cfg.mask_scale,
                                    "feather": cfg.feather}, cfg.detector, cfg.detector_threshold,
                             cfg.seed, [str(p) for p in uni.paths], infos, uni.labels, sets.deid)
    bar = _progress(len(todo), spec.label, cfg.progress)
    chunks = []
    for s in range(0, len(todo), CHUNK):
        idxs = todo[s:s + CHUNK]
        chunks.append((idxs, [{"path": str(uni.paths[i]), "digest": dgs[i],
                               "faces": infos[i]["faces"], "tmpl": infos[i]["tmpl"],
                               "need": missing[dgs[i]][0], "util": missing[dgs[i]][1],
                               "lm68": infos[i]["lm68"], "batch": batch.get(i)}
                              for i in idxs]))
    cpu = 0.0
    stages: dict[str, list[float]] = {}
    for idxs, (results, stats) in pool.run("deid", spec_payload(spec), chunks):
        cpu += stats["cpu"]
        merge_stages(stages, stats["stages"])
        for r in results:
            if "error" in r:
                raise InputError(r["error"])
        cache.put_deidentified(mkey, [(dgs[i], r) for i, r in zip(idxs, results)])
        bar.update(len(idxs))
    bar.close()
    return {"images": len(todo), "seconds": time.perf_counter() - t0,
            "worker_cpu_seconds": cpu, "stages": _stages_json(stages)}


def _stages_json(stages: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """``{stage: {"cpu_s", "wall_s", "n", "per_cpu_s"}}`` (``per_cpu_s``: items per
    worker CPU second, e.g. embeddings per second of one core)."""
    return {name: {"cpu_s": cpu, "wall_s": wall, "n": int(n),
                   "per_cpu_s": n / cpu if cpu > 0 else None}
            for name, (cpu, wall, n) in sorted(stages.items())}


# =================================================================== 3. metrics
def _records(cache: RunCache, specs: list[MethodSpec], attackers: list, alignments: list[str],
             scenarios: list[str], uni: D.Universe, dgs: list[str], infos: list[dict],
             sets: _ImageSets, mkeys: dict[str, str], cfg: EvaluationConfig):
    """``(records, utility rows)``: every scenario of every method configuration,
    attacker and alignment."""
    labels = uni.label_array
    probes = uni.probe_indices()
    util_rows = sorted(sets.util)
    n_faces = [len(info["faces"]) for info in infos]
    records: list[Record] = []
    utility_rows: list[dict] = []
    orig_tables: dict[tuple[int, str], S.EmbeddingTable] = {}
    for spec in specs:
        if spec.method == BASELINE:
            util = _baseline_utility([n_faces[i] for i in util_rows])
        else:
            util = aggregate_utility(cache.load_utility(mkeys[spec.label],
                                                        [dgs[i] for i in util_rows]))
        if cfg.utility:
            utility_rows.append({"method": spec.method, "params": spec.all_params,
                                 "metrics": util})
        for ai, att in enumerate(attackers):
            dim = getattr(att, "dim", None) or None
            for mode in alignments:
                if (ai, mode) not in orig_tables:
                    orig_tables[(ai, mode)] = S.EmbeddingTable.from_list(
                        cache.original_vectors(ai, mode, dgs, infos), dim)
                orig = orig_tables[(ai, mode)]
                deid = orig if spec.method == BASELINE else S.EmbeddingTable.from_list(
                    cache.deid_vectors(mkeys[spec.label], ai, mode, dgs, sets.deid), dim)
                edges = _hist_edges(att)
                for scen in scenarios:
                    res = _scenario(scen, att, orig, deid, labels, probes, uni, sets.self_set,
                                    cfg.fmr_targets, edges)
                    if res is None:
                        continue
                    m = dict(res.metrics)
                    m.update(util if cfg.utility else {})
                    m["threshold"] = float(att.threshold)
                    records.append(Record(spec.method, spec.all_params, att.name, scen, mode,
                                          m, res.curves))
    return records, utility_rows


def _baseline_utility(n_faces: list[int]) -> dict[str, float]:
    """Utility of the untouched images (by definition; nothing is computed)."""
    return {"ssim": 1.0, "ssim_outside": 1.0, "mse": 0.0, "mse_outside": 0.0,
            "psnr": float("inf"), "psnr_outside": float("inf"), "detection_kept": 1.0,
            "landmark_nme": 0.0,
            "no_face_rate": float(np.mean([n == 0 for n in n_faces])) if n_faces else float("nan"),
            "n_images_utility": len(n_faces), "n_faces_utility": int(sum(n_faces))}


def _hist_edges(att) -> np.ndarray:
    hi = 2.0 if att.metric == "cosine" else max(3.0 * float(att.threshold), 1e-6)
    return np.linspace(0.0, hi, 81)


def _scenario(scen: str, att, orig, deid, labels, probes, uni, self_set, fmr_targets, edges):
    if scen in S.GALLERY_SCENARIOS:
        return S.gallery_scenario(scen, att.distance, float(att.threshold), orig, deid, labels,
                                  probes, fmr_targets, edges)
    if scen == "pairs":
        if not uni.pairs:
            return None
        return S.pairs_scenario(att.distance, float(att.threshold), orig, deid, uni.pairs,
                                fmr_targets, edges)
    if scen == "self":
        return S.self_scenario(att.distance, float(att.threshold), orig, deid, self_set)
    raise UnknownNameError(scen)


# =================================================================== misc
def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, smoothing=0.1)


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


if __name__ == "__main__":  # pragma: no cover
    # run the package's copy of the command, not a second "__main__" copy of its classes
    from facedeid.evaluate.command import main as _main

    sys.exit(_main())
