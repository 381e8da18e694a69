"""Command line: ``facedeid anonymize|detect|landmarks|evaluate ...``.

Exit status: 0 success, 1 some inputs failed (the others were processed),
2 bad usage or nothing could be processed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import FaceDeidError

log = logging.getLogger("facedeid")


# ---------------------------------------------------------------- helpers
def _parse_value(text: str) -> Any:
    """``8`` -> 8, ``0.5`` -> 0.5, ``255,0,0`` -> [255, 0, 0], ``a,b`` -> [a, b], else str."""
    if "," in text:
        return [_parse_value(t) for t in text.split(",") if t != ""]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "auto"):
        return None if low == "none" else "auto"
    return text


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"facedeid: error: --param expects NAME=VALUE, got '{item}'")
        params[key.replace("-", "_")] = _parse_value(value)
    return params


def _add_detection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", default=None,
                   help="detector backend (default: the measured best; see `facedeid detectors`)")
    p.add_argument("--threshold", "--thresh", type=float, default=None,
                   help="detection score threshold (lower finds more faces; default: recall-first)")
    p.add_argument("--scale", type=float, default=None,
                   help="detect on a copy resized by this factor (e.g. 0.5 for speed on large images)")


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", file=sys.stderr)


def _show_progress(args, n: int) -> bool:
    return not args.quiet and n > 1 and sys.stderr.isatty()


# ---------------------------------------------------------------- anonymize
def cmd_anonymize(args: argparse.Namespace) -> int:
    from .io.audit import BatchSummary, build_image_record, write_record
    from .io.images import read_image, write_image
    from .io.paths import plan_outputs
    from .pipeline import Anonymizer

    params = _parse_params(args.param)
    anon = Anonymizer(method=args.method, strength=args.strength, detector=args.detector,
                      threshold=args.threshold, scale=args.scale, shape=args.shape,
                      mask_scale=args.mask_scale, feather=args.feather, seed=args.seed,
                      fallback=args.fallback, **params)
    plan = plan_outputs(args.inputs, args.output, suffix=args.suffix)
    if not plan:
        raise FaceDeidError("no image files found in: " + " ".join(args.inputs))
    summary = BatchSummary()
    for src, dst in _progress(plan, _show_progress(args, len(plan)), "anonymize"):
        try:
            loaded = read_image(src)
            result = anon.anonymize(loaded.pixels)
            write_image(dst, result.image, like=loaded, keep_metadata=args.keep_metadata)
            record = build_image_record(src=src, dst=dst, loaded=loaded, result=result,
                                        keep_metadata=args.keep_metadata)
            if args.json:
                write_record(Path(str(dst) + ".json"), record)
            summary.add_success(src, n_faces=len(result.faces))
            if not args.quiet and len(plan) == 1:
                print(f"{dst}: {len(result.faces)} face(s) de-identified with {anon.method.name}"
                      + (f"; record {dst}.json" if args.json else ""))
        except FaceDeidError as exc:
            summary.add_failure(src, str(exc))
            print(f"facedeid: error: {exc}", file=sys.stderr)
    if len(plan) > 1 and not args.quiet:
        print(summary.text())
    if args.summary_json:
        write_record(Path(args.summary_json), summary.to_dict())
    return 1 if summary.failed else 0


# ---------------------------------------------------------------- detect
def cmd_detect(args: argparse.Namespace) -> int:
    from .io.images import read_image
    from .io.paths import expand_inputs
    from .pipeline import Anonymizer

    anon = Anonymizer(detector=args.detector, threshold=args.threshold, scale=args.scale)
    files = expand_inputs(args.inputs)
    if not files:
        raise FaceDeidError("no image files found in: " + " ".join(args.inputs))
    failed = 0
    for path in files:
        try:
            loaded = read_image(path)
            faces = anon.detect(loaded.pixels)
            if args.landmarks68:
                faces = anon.add_landmarks(loaded.pixels, faces)
        except FaceDeidError as exc:
            failed += 1
            print(f"facedeid: error: {exc}", file=sys.stderr)
            continue
        h, w = loaded.pixels.shape[:2]
        if args.json:
            print(json.dumps({"image": str(path), "width": w, "height": h,
                              "faces": [f.to_dict() for f in faces]}), flush=True)
        else:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                x1, y1, x2, y2 = (round(v) for v in f.box)
                print(f"  #{f.face_id} box=({x1},{y1},{x2},{y2}) score={f.score:.3f}")
    return 1 if failed else 0


# ---------------------------------------------------------------- landmarks
def cmd_landmarks(args: argparse.Namespace) -> int:
    from .io.atomic import atomic_output
    from .io.images import read_image, write_image
    from .landmarks.visualize import draw_landmarks
    from .pipeline import Anonymizer
    from .imageops import to_rgb8

    loaded = read_image(args.image)
    anon = Anonymizer(detector=args.detector, threshold=args.threshold, scale=args.scale)
    faces = anon.add_landmarks(loaded.pixels, anon.detect(loaded.pixels))
    faces = [f for f in faces if f.landmarks68 is not None]
    if args.output:
        vis = draw_landmarks(to_rgb8(loaded.pixels), faces, alpha=args.alpha)
        write_image(args.output, vis)
        print(f"{args.output}: landmarks of {len(faces)} face(s)")
    payload = {"image": str(args.image), "width": int(loaded.pixels.shape[1]),
               "height": int(loaded.pixels.shape[0]), "faces": [f.to_dict() for f in faces]}
    if args.json is not None:
        if args.json == "-":
            print(json.dumps(payload))
        else:
            with atomic_output(Path(args.json)) as tmp:
                Path(tmp).write_text(json.dumps(payload, indent=1))
            print(f"{args.json}: points as JSON")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from .pipeline import DEFAULT_MASK_SCALE, SHAPES

    parser = argparse.ArgumentParser(prog="facedeid", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"facedeid {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("anonymize", help="de-identify every face in images",
                       description="De-identify every face in image files, folders (recursive) or globs.")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", default=None,
                   help="output file (one input) or folder (mirrors input folders); "
                        "default: NAME_anonymized.EXT beside each input")
    p.add_argument("--method", "--replacewith", default="blur",
                   help="de-identification method (default: blur; see `facedeid methods`)")
    p.add_argument("--strength", "-k", type=_parse_value, default=None,
                   help="the method's strength (e.g. blur kernel, pixelate blocks, noise percent)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                   help="another method parameter, e.g. -p color=255,0,0 (repeatable)")
    _add_detection_args(p)
    p.add_argument("--shape", choices=SHAPES, default="ellipse", help="painted region (default: ellipse)")
    p.add_argument("--boxes", dest="shape", action="store_const", const="box",
                   help="same as --shape box")
    p.add_argument("--mask-scale", type=float, default=DEFAULT_MASK_SCALE,
                   help=f"region size relative to the face box (default: {DEFAULT_MASK_SCALE})")
    p.add_argument("--feather", type=float, default=0.0,
                   help="soft edge width as a fraction of face size (default: 0, hard edge)")
    p.add_argument("--fallback", default="blackout",
                   help="method for faces the chosen method cannot handle (default: blackout)")
    p.add_argument("--seed", type=int, default=None, help="seed for stochastic methods")
    p.add_argument("--keep-metadata", action="store_true",
                   help="keep safe metadata (never GPS or the EXIF thumbnail); default: strip all")
    p.add_argument("--json", action="store_true", help="write an audit record OUTPUT.json per image")
    p.add_argument("--summary-json", default=None, help="write the batch summary to this JSON file")
    p.add_argument("--suffix", default="_anonymized", help="suffix for outputs written beside inputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_anonymize)

    p = sub.add_parser("detect", help="find faces; print boxes (or JSON lines)")
    p.add_argument("inputs", nargs="+")
    _add_detection_args(p)
    p.add_argument("--landmarks68", action="store_true", help="also compute 68-point landmarks")
    p.add_argument("--json", action="store_true", help="one JSON object per image and line")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("landmarks", help="68-point landmarks: visualisation and JSON")
    p.add_argument("image")
    p.add_argument("-o", "--output", default=None, help="visualisation image (PNG)")
    p.add_argument("--json", nargs="?", const="-", default=None,
                   help="write points as JSON to this file (or stdout without a value)")
    p.add_argument("--alpha", type=float, default=0.75, help="overlay opacity")
    _add_detection_args(p)
    p.set_defaults(func=cmd_landmarks)

    p = sub.add_parser("methods", help="list methods and their parameters")
    p.set_defaults(func=cmd_methods)
    p = sub.add_parser("detectors", help="list detector backends")
    p.set_defaults(func=cmd_detectors)

    try:
        from .evaluate.runner import add_evaluate_arguments, evaluate_main
    except ImportError:  # evaluation extras not present
        pass
    else:
        p = sub.add_parser("evaluate", help="attack de-identified faces with recognizers; report")
        add_evaluate_arguments(p)
        p.set_defaults(func=evaluate_main)
    return parser


def cmd_methods(args: argparse.Namespace) -> int:
    from .methods import METHODS

    for name in METHODS.names():
        m = METHODS.get(name)
        strength = f"strength={m.strength}" if m.strength else "no strength"
        print(f"{name:10s} {strength:16s} params: {json.dumps(m.defaults, default=str)}")
        if m.strength_doc:
            print(f"{'':10s} {m.strength_doc}")
    return 0


def cmd_detectors(args: argparse.Namespace) -> int:
    from .detect import DEFAULT_DETECTOR, DETECTORS

    for name in DETECTORS.names():
        print(name + ("  (default)" if name == DEFAULT_DETECTOR else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="facedeid: %(levelname)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FaceDeidError as exc:
        print(f"facedeid: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"facedeid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facedeid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
