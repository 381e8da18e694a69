"""`make bench`: every benchmark in turn; results in benchmarks/results/.

    python -m benchmarks.run_all [--only detection,throughput]

Each benchmark runs in its own process (so thread settings and memory do not
leak between them) and writes ``benchmarks/results/<name>.json`` and ``.md``.
A failing benchmark is reported and the others still run; the exit status is
non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHMARKS = [
    "bench_detection",     # WIDER FACE recall vs deface (issue: image pipeline)
    "bench_throughput",    # images/s vs deface
    "bench_video",         # video: exposure, fps, memory, audio vs deface (issue 4)
    "bench_attackers",     # attackers' clean LFW accuracy and speed
    "bench_evaluation",    # facedeid evaluate: one method, 2,200 LFW pairs, 3 attackers
    "bench_keys",          # reversible mode: recovery, payload size, overhead, leakage, seed 000
    "bench_reconstruction",  # seed formulas, pca/svd/hypersphere vs 3 attackers, seed 000 recovery
    "bench_align",         # alignment / piecewise-affine round trips and speed
    "bench_ksame",         # k-Same family (pixel, eigen, m) at k=2,5,10,20 vs 3 attackers, grouped set
    "bench_ksame --ks 10 --seed 1 --name bench_ksame_seed1",  # the same at k=10 on a second sample
    "bench_replace",       # natural face replacement (replace, fatm) vs 3 attackers, utility, time
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated subset (names without bench_)")
    args = ap.parse_args(argv)
    names = BENCHMARKS
    if args.only:
        wanted = {n if n.startswith("bench_") else "bench_" + n for n in args.only.split(",")}
        names = [n for n in BENCHMARKS if n.split()[0] in wanted]
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        module, *extra = name.split()
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{module}", *extra])
        print(f"== {name}: exit {rc} in {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
