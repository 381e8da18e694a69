"""The command line of ``facedeid evaluate`` (also ``python -m facedeid.evaluate.runner``).

Options are documented in docs/EVALUATION.md; :func:`config_from_args` turns
them into an :class:`~facedeid.evaluate.results.EvaluationConfig`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from ..errors import FaceDeidError
from .results import ALIGNMENTS, DEFAULT_ATTACKERS, DEFAULT_SCENARIOS, EvaluationConfig


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``facedeid evaluate`` (see docs/EVALUATION.md)."""
    from ..config import data_dir

    p.description = ("De-identify a labelled face dataset with one or more methods, attack the "
                     "results with face recognizers, and report identity left and utility kept.")
    p.add_argument("--data", default=None,
                   help=f"dataset folder: identity folders, or a folder holding images/ or "
                        f"lfw/images/ (default: $FACEDEID_DATA = {data_dir()})")
    p.add_argument("--pairs", default=None,
                   help="LFW pairs file (default for the pairs scenario: pairs*.txt beside the "
                        "images); its images become the evaluation set of every scenario")
    p.add_argument("--methods", nargs="+", default=["blur"], metavar="SPEC",
                   help="method specs NAME[:PARAM=V1,V2...][:...], e.g. blur:k=5,15,31 "
                        "pixelate:8 noise:kind=gaussian:sigma=20 (baseline 'none' is always added)")
    p.add_argument("--attackers", type=_csv, default=list(DEFAULT_ATTACKERS),
                   help="comma-separated recognizers (default: dlib,sface,facenet)")
    p.add_argument("--scenarios", type=_csv, default=list(DEFAULT_SCENARIOS),
                   help="comma-separated: naive,reverse,parrot,pairs,self (default: all)")
    p.add_argument("--alignments", type=_csv, default=list(ALIGNMENTS),
                   help="comma-separated: naive (attacker's own detection), template (original "
                        "landmarks) (default: both)")
    p.add_argument("-o", "--output", required=True, help="report folder (created)")
    p.add_argument("--limit-pairs", type=int, default=None,
                   help="use N pairs (N/2 same, N/2 different; seeded sample)")
    p.add_argument("--max-identities", type=int, default=200,
                   help="without pairs: identities with >= 2 images to use (default 200; 0 = all)")
    p.add_argument("--per-identity", type=int, default=4,
                   help="without pairs: images per identity (default 4)")
    p.add_argument("--distractors", type=int, default=0,
                   help="without pairs: add N single-image identities to the gallery")
    p.add_argument("--seed", type=int, default=0, help="sampling and stochastic methods (default 0)")
    p.add_argument("--detector", default=None, help="detector that finds the faces to paint")
    p.add_argument("--threshold", type=float, default=None, help="its score threshold")
    p.add_argument("--shape", default="ellipse", help="painted region: box, ellipse, hull")
    p.add_argument("--mask-scale", type=float, default=1.3, help="region size / face box")
    p.add_argument("--feather", type=float, default=0.0, help="soft edge width / face size")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (default: CPU count, at most 4; 1 = no pool)")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder (default: $FACEDEID_CACHE/evaluate); runs resume from it")
    p.add_argument("--no-cache", action="store_true", help="keep intermediates in memory only")
    p.add_argument("--fresh", action="store_true",
                   help="recompute the de-identified images' results (originals stay cached)")
    p.add_argument("--no-utility", action="store_true", help="skip SSIM/PSNR/detection/landmarks")
    p.add_argument("--no-landmarks", action="store_true", help="skip the 68-point landmark NME")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="drop unreadable images (listed in the report) instead of stopping")
    p.add_argument("--no-plots", action="store_true", help="results.json only")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


def config_from_args(args: argparse.Namespace) -> EvaluationConfig:
    from ..config import data_dir

    return EvaluationConfig(
        data=args.data or data_dir(), methods=args.methods, attackers=args.attackers,
        scenarios=args.scenarios, alignments=args.alignments, pairs=args.pairs,
        limit_pairs=args.limit_pairs,
        max_identities=None if args.max_identities in (None, 0) else args.max_identities,
        per_identity=args.per_identity, distractors=args.distractors, seed=args.seed,
        detector=args.detector, detector_threshold=args.threshold, shape=args.shape,
        mask_scale=args.mask_scale, feather=args.feather, workers=args.workers,
        cache=False if args.no_cache else args.cache_dir, fresh=args.fresh,
        utility=not args.no_utility, landmarks=not args.no_landmarks,
        skip_bad_images=args.skip_bad_images, output=args.output, plots=not args.no_plots,
        progress=not args.quiet)


def evaluate_main(args: argparse.Namespace) -> int:
    """Entry point of ``facedeid evaluate`` (returns the exit status)."""
    from .runner import run_evaluation

    cfg = config_from_args(args)
    result = run_evaluation(cfg, command=["facedeid"] + sys.argv[1:])
    if not args.quiet:
        from .report import summary_text

        print(summary_text(result))
        out = Path(cfg.output)
        print(f"\nresults: {out / 'results.json'}"
              + ("" if args.no_plots else f"\nreport:  {out / 'report.md'}, {out / 'report.html'}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m facedeid.evaluate.runner ...`` (same options as ``facedeid evaluate``)."""
    parser = argparse.ArgumentParser(prog="facedeid evaluate")
    add_evaluate_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="facedeid: %(levelname)s: %(message)s")
    try:
        return evaluate_main(args)
    except (FaceDeidError, ValueError) as exc:
        print(f"facedeid: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
