"""Speed of ``facedeid evaluate``: one method on LFW's 2,200 DevTrain pairs, three attackers.

    .venv/bin/python -m benchmarks.bench_evaluation [--method blur:k=31] [--workers 2]
        [--scenarios pairs,self] [--limit-pairs N] [--cache-dir DIR]

The issue's target: evaluating ONE method on the 2,200 pairs of
``lfw/pairsDevTrain.txt`` against dlib, SFace and FaceNet (naive and
template-aligned) takes under 10 minutes on 2 cores with a warm cache of
originals. Two runs of :func:`facedeid.evaluate.run_evaluation`:

1. **warm-up** (untimed for the target): the baseline only (``--methods none``),
   which computes and caches whatever is missing about the originals (faces,
   landmarks, every attacker's embeddings). On a warm cache it only reads it.
2. **timed**: the method, with ``fresh=True`` so that every de-identified image
   is really painted, embedded by every attacker in both alignments and
   measured for utility (nothing of the method comes from the cache), then every
   scenario's metrics and the report figures.

Reported: wall time of the timed run (and of its phases), the CPU seconds of the
worker processes per stage, the images and embeddings per second of the run,
and per attacker the embeddings computed, the embeddings per CPU second of one
worker core (what the model costs) and per wall second a worker spent in it
(what it got on the shared machine). The
machine is shared with other jobs: the 1-minute load average is sampled every
5 s during the timed run and reported; ``projected_wall_2_free_cores_s`` is the
CPU time of the run divided by 2, what the run would take if nothing else used
the two cores (a projection, not a measurement).

Writes ``benchmarks/results/evaluation.json`` and ``evaluation.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time

from benchmarks.common import md_table, require_data, write_results


class LoadSampler:
    """Samples ``os.getloadavg()`` every ``every`` seconds in a thread."""

    def __init__(self, every: float = 5.0):
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((round(time.perf_counter() - self._t0, 1),
                                 round(os.getloadavg()[0], 2)))
            self._stop.wait(self.every)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        loads = [v for _, v in self.samples]
        return {"mean_1min": sum(loads) / len(loads) if loads else None,
                "max_1min": max(loads) if loads else None,
                "samples": self.samples}


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the worker pool)."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="blur:k=31", help="one method spec (default blur:k=31)")
    ap.add_argument("--attackers", default="dlib,sface,facenet")
    ap.add_argument("--scenarios", default="pairs,self",
                    help="scenarios of the timed run (default pairs,self: the pairs protocol "
                         "de-identifies the second image of each pair)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--detector", default="yunet",
                    help="detector that finds the faces to paint (default yunet: LFW crops hold "
                         "one large face; the project default adds a tiled small-face pass)")
    ap.add_argument("--limit-pairs", type=int, default=None, help="fewer pairs (smoke test)")
    ap.add_argument("--cache-dir", default=None,
                    help="evaluation cache (default: the project's, $FACEDEID_CACHE/evaluate)")
    args = ap.parse_args(argv)

    from facedeid.evaluate import EvaluationConfig, run_evaluation
    from facedeid.evaluate.spec import parse_method_specs

    pairs = require_data("lfw", "pairsDevTrain.txt")
    specs = [s for s in parse_method_specs([args.method]) if s.method != "none"]
    if len(specs) != 1:
        ap.error("--method must name exactly one configuration (no sweep)")
    label = specs[0].label
    common = dict(data=require_data(), pairs=pairs, limit_pairs=args.limit_pairs,
                  attackers=args.attackers.split(","), scenarios=args.scenarios.split(","),
                  workers=args.workers, detector=args.detector, cache=args.cache_dir,
                  progress=False)

    t0 = time.perf_counter()
    warm = run_evaluation(EvaluationConfig(methods=["none"], output=None, **common))
    warm_s = time.perf_counter() - t0
    print(f"warm-up: {warm.timing['originals_computed']} originals computed in {warm_s:.0f} s")

    with tempfile.TemporaryDirectory(prefix="bench-evaluation-") as tmp, LoadSampler() as load:
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        res = run_evaluation(EvaluationConfig(methods=[args.method], fresh=True, output=tmp,
                                              **common))
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    tm = res.timing
    stats = tm["per_method"][label]
    n_images = stats["images"]
    per_attacker = {}
    for name in common["attackers"]:
        st = stats["stages"].get(f"embed:{name}", {"cpu_s": 0.0, "wall_s": 0.0, "n": 0})
        per_attacker[name] = {
            "embeddings": st["n"], "worker_cpu_s": st["cpu_s"], "worker_wall_s": st["wall_s"],
            "per_cpu_second": st["n"] / st["cpu_s"] if st["cpu_s"] else None,
            "per_worker_wall_second": st["n"] / st["wall_s"] if st["wall_s"] else None,
        }
    n_emb = sum(v["embeddings"] for v in per_attacker.values())
    pairs_rec = {(r.attacker, r.alignment): r.metrics for r in res.records
                 if r.scenario == "pairs" and r.method == specs[0].method}
    payload = {
        "config": {"method": label, "attackers": common["attackers"],
                   "scenarios": common["scenarios"], "alignments": ["naive", "template"],
                   "workers": args.workers, "threads_per_worker": tm.get("threads_per_worker"),
                   "detector": args.detector, "pairs_file": str(pairs),
                   "n_pairs": res.dataset.get("n_pairs"), "n_images": res.dataset.get("n_images"),
                   "cache_dir": res.config.get("cache")},
        "warm_up": {"seconds": warm_s, "originals_computed": warm.timing["originals_computed"]},
        "timed_run": {
            "wall_s": wall, "target_s": 600, "meets_target": wall < 600,
            "cpu_s_all_processes": cpu,
            "projected_wall_2_free_cores_s": cpu / 2,
            "phases_s": {k: tm.get(k) for k in ("setup_s", "originals_s", "deidentify_and_embed_s",
                                                "metrics_s", "report_s")},
            "images_deidentified": n_images,
            "images_per_s": n_images / stats["seconds"] if stats["seconds"] else None,
            "embeddings": n_emb,
            "embeddings_per_s": n_emb / stats["seconds"] if stats["seconds"] else None,
            "worker_cpu_s": stats["worker_cpu_seconds"],
            "stages": stats["stages"],
            "load_average": load.summary(),
            "load_average_start_end": tm.get("loadavg"),
        },
        "attackers": per_attacker,
        "pairs_accuracy_template": {a: pairs_rec.get((a, "template"), {}).get("accuracy")
                                    for a in common["attackers"]},
    }
    ld = payload["timed_run"]["load_average"]
    rows = [[name, v["embeddings"], f"{v['worker_cpu_s']:.0f}",
             f"{v['per_cpu_second']:.1f}" if v["per_cpu_second"] else "-",
             f"{v['per_worker_wall_second']:.1f}" if v["per_worker_wall_second"] else "-"]
            for name, v in per_attacker.items()]
    md = (f"`facedeid evaluate` speed: {label} on {res.dataset.get('n_pairs')} pairs of "
          f"pairsDevTrain ({n_images} de-identified images), attackers "
          f"{', '.join(common['attackers'])} x naive + template, scenarios "
          f"{', '.join(common['scenarios'])}, {args.workers} workers x "
          f"{tm.get('threads_per_worker')} thread, warm cache of originals.\n\n"
          f"- wall time: **{wall / 60:.1f} min** (target < 10 min: "
          f"{'met' if wall < 600 else 'NOT met'}); de-identify + embed "
          f"{tm['deidentify_and_embed_s']:.0f} s, metrics {tm['metrics_s']:.0f} s, report "
          f"{tm.get('report_s') or 0:.0f} s; {n_images / stats['seconds']:.2f} images/s, "
          f"{n_emb / stats['seconds']:.1f} embeddings/s (all attackers)\n"
          f"- CPU time, all processes: {cpu:.0f} s = {cpu / 2 / 60:.1f} min on 2 free cores "
          f"(projection)\n"
          f"- machine shared with other jobs: 1-min load average mean {ld['mean_1min']:.1f}, "
          f"max {ld['max_1min']:.1f} on 2 cores\n\n"
          + md_table(["attacker", "embeddings", "worker CPU s", "emb/s of one core (CPU time)",
                      "emb/s of one worker (wall, contended)"], rows))
    out = write_results("bench_evaluation", payload, md,
                        packages=["facedeid", "numpy", "opencv-python-headless", "onnxruntime",
                                  "dlib-bin"])
    print(md)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
