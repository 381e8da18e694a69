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
def _optional_float(text: str) -> float | None:
    """A number, or ``off`` / ``none`` for None (argparse type)."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _parse_value(text: str) -> Any:
    """``8`` -> 8, ``0.5`` -> 0.5, ``255,0,0`` -> [255, 0, 0], ``none`` -> None, else str.

    Scalars are read as ``facedeid evaluate`` method specs read them.
    """
    from .evaluate.spec import parse_value

    if "," in text:
        return [_parse_value(t) for t in text.split(",") if t != ""]
    return parse_value(text)


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
    import time

    from .io.audit import BatchSummary, record_path, write_record
    from .io.images import read_image, write_image
    from .io.paths import MEDIA_EXTS, media_kind, plan_outputs
    from .pipeline import Anonymizer

    params = _parse_params(args.param)
    if args.gallery is not None:
        params["gallery"] = args.gallery
    if args.donors is not None:
        params["donors"] = args.donors
    anon = Anonymizer(method=args.method, strength=args.strength, detector=args.detector,
                      threshold=args.threshold, scale=args.scale, shape=args.shape,
                      mask_scale=args.mask_scale, small_face_scale=args.small_face_scale,
                      feather=args.feather, seed=args.seed, fallback=args.fallback, **params)
    from .keys.cli import master_key_from_args

    key = master_key_from_args(args)            # None unless --reversible
    if args.input:
        return _anonymize_live(args, anon, key)
    if not args.inputs:
        raise FaceDeidError("give input files or folders (or --input for a live source)")
    plan = plan_outputs(args.inputs, args.output, suffix=args.suffix, exts=MEDIA_EXTS)
    if not plan:
        raise FaceDeidError("no image or video files found in: " + " ".join(args.inputs))
    sources = [src for src, _ in plan]
    summary = BatchSummary()
    dataset = _prepare_dataset(args, anon, sources)  # k-Same: every face first, then groups
    for src, dst in _progress(plan, _show_progress(args, len(plan)), "anonymize"):
        try:
            if media_kind(src) == "video":
                video = _anonymize_one_video(args, anon, src, dst, key)
                summary.processed.append(str(src))
                summary.faces += video.faces_painted
                if not args.quiet:
                    print(f"{dst}: {video.text()}")
                continue
            t0 = time.perf_counter()
            if dataset is not None:
                item = next(dataset)
                if item.error is not None:
                    raise item.error
                loaded, result = item.loaded, item.result
                t1 = t0
            else:
                loaded = read_image(src)
                t1 = time.perf_counter()
                result = anon.anonymize(loaded.pixels)
            t2 = time.perf_counter()
            rinfo = None
            if key is not None:
                from .keys.image import write_reversible_image

                written, rinfo = write_reversible_image(dst, result, loaded, key, protect=sources,
                                                        keep_metadata=args.keep_metadata)
            else:
                written = write_image(dst, result.image, like=loaded,
                                      keep_metadata=args.keep_metadata, protect=sources)
            t3 = time.perf_counter()
            record = anon.audit_record(src, result, loaded=loaded, written=written,
                                       keep_metadata=args.keep_metadata,
                                       timings_s={"read": t1 - t0, "anonymize": t2 - t1,
                                                  "write": t3 - t2})
            if rinfo is not None:
                record.notes.append(rinfo.note())
            if args.json:
                write_record(record_path(dst), record, protect=sources)
            summary.add(record)
            if not args.quiet and len(plan) == 1:
                note = "no face found; image written unchanged but for metadata" if not result.faces \
                    else f"{len(result.faces)} face(s) de-identified with {anon.method.name}"
                print(f"{dst}: {note}" + (f"; record {record_path(dst)}" if args.json else ""))
        except FaceDeidError as exc:
            summary.add_failure(src, exc)
            print(f"facedeid: error: {exc}", file=sys.stderr)
    summary.finish()
    if len(plan) > 1 and not args.quiet:
        print(f"{len(summary.processed)} image(s) processed, {summary.faces} face(s) de-identified, "
              f"{len(summary.no_face_found)} with no face found, {len(summary.failed)} failed")
        for failure in summary.failed:
            print(f"  failed: {failure['path']}: {failure['error']}")
    if args.summary_json:
        write_record(Path(args.summary_json), summary, protect=sources)
    return 1 if summary.failed else 0


def _prepare_dataset(args: argparse.Namespace, anon, sources):
    """For a dataset method (k-Same): read, encode and group every image's faces now;
    returns an iterator of painted items in the order of the images (None otherwise)."""
    from .io.paths import media_kind

    if anon.method.batch is None:
        return None
    from .batch import anonymize_dataset

    images = [s for s in sources if media_kind(s) != "video"]
    if not args.quiet and len(images) > 1:
        print(f"{anon.method.name}: reading {len(images)} image(s) and grouping every face "
              f"(k={anon.params.get('k')}) before painting", file=sys.stderr)
    return anonymize_dataset(anon, images)


def _video_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(hold=args.hold, lookahead=args.lookahead, codec=args.codec, crf=args.crf,
                preset=args.preset, keep_audio=not args.no_audio,
                strip_metadata=not args.keep_metadata, progress=not args.quiet,
                pix_fmt=args.pix_fmt)


def _anonymize_one_video(args: argparse.Namespace, anon, src, dst, key=None):
    from .io.audit import record_path
    from .video import anonymize_video

    audit = record_path(dst).with_suffix(".jsonl") if args.json else None
    if key is not None:
        from .keys.video import anonymize_video_reversible

        return anonymize_video_reversible(src, dst, anon, key, audit_path=audit, **_video_kwargs(args))[0]
    return anonymize_video(src, dst, anon, audit_path=audit, **_video_kwargs(args))


def _anonymize_live(args: argparse.Namespace, anon, key=None) -> int:
    """``--input`` (camera device or stream URL) to one output file; Ctrl-C finishes it."""
    from .io.audit import record_path
    from .video import anonymize_video

    if not args.output:
        raise FaceDeidError("--input needs -o OUTPUT (a video file)")
    audit = record_path(args.output).with_suffix(".jsonl") if args.json else None
    live = dict(input_format=args.input_format, max_frames=args.max_frames, finish_on_interrupt=True)
    if key is not None:
        from .keys.video import anonymize_video_reversible

        summary = anonymize_video_reversible(args.input, args.output, anon, key, audit_path=audit,
                                             **live, **_video_kwargs(args))[0]
    else:
        summary = anonymize_video(args.input, args.output, anon, audit_path=audit, **live,
                                  **_video_kwargs(args))
    if not args.quiet:
        print(f"{args.output}: {summary.text()}")
    return 0


# ---------------------------------------------------------------- detect
def cmd_detect(args: argparse.Namespace) -> int:
    from .io.images import read_image
    from .io.paths import IMAGE_EXTS, expand_inputs
    from .pipeline import Anonymizer

    anon = Anonymizer(detector=args.detector, threshold=args.threshold, scale=args.scale)
    files = [f.path for f in expand_inputs(args.inputs, exts=IMAGE_EXTS)]
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
    from .io.atomic import atomic_write_bytes
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
        write_image(args.output, vis, protect=[args.image])
        print(f"{args.output}: landmarks of {len(faces)} face(s)")
    payload = {"image": str(args.image), "width": int(loaded.pixels.shape[1]),
               "height": int(loaded.pixels.shape[0]), "faces": [f.to_dict() for f in faces]}
    if args.json is not None:
        if args.json == "-":
            print(json.dumps(payload))
        else:
            atomic_write_bytes(args.json, json.dumps(payload, indent=1).encode(),
                               protect=[args.image])
            print(f"{args.json}: points as JSON")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from .composite import SMALL_FACE_SCALE
    from .pipeline import DEFAULT_MASK_SCALE, SHAPES

    parser = argparse.ArgumentParser(prog="facedeid", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"facedeid {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("anonymize", help="de-identify every face in images",
                       description="De-identify every face in image files, folders (recursive) or globs.")
    p.add_argument("inputs", nargs="*", help="image or video files, folders or glob patterns")
    p.add_argument("-o", "--output", default=None,
                   help="output file (one input) or folder (mirrors input folders); "
                        "default: NAME_anonymized.EXT beside each input")
    p.add_argument("--method", "--replacewith", default="blur",
                   help="de-identification method (default: blur; see `facedeid methods`)")
    p.add_argument("--strength", "-k", "--k", type=_parse_value, default=None,
                   help="the method's strength (e.g. blur kernel, pixelate blocks, noise percent)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                   help="another method parameter, e.g. -p color=255,0,0 (repeatable)")
    _add_detection_args(p)
    p.add_argument("--shape", choices=SHAPES, default="ellipse", help="painted region (default: ellipse)")
    p.add_argument("--boxes", dest="shape", action="store_const", const="box",
                   help="same as --shape box")
    p.add_argument("--mask-scale", type=float, default=DEFAULT_MASK_SCALE,
                   help=f"region size relative to the face box (default: {DEFAULT_MASK_SCALE})")
    p.add_argument("--small-face-scale", type=_optional_float, default=SMALL_FACE_SCALE,
                   metavar="S|off",
                   help=f"region size of faces of 20 px and less, falling to --mask-scale at 40 px "
                        f"(default: {SMALL_FACE_SCALE}; 'off': every face at --mask-scale)")
    p.add_argument("--feather", type=float, default=0.0,
                   help="soft edge width as a fraction of face size (default: 0, hard edge)")
    p.add_argument("--fallback", default="blackout",
                   help="method for faces the chosen method cannot handle (default: blackout)")
    p.add_argument("--gallery", default=None, metavar="DIR",
                   help="k-Same methods: folder of extra faces (each a different person) that may "
                        "complete groups; without it a folder with fewer than k faces uses the "
                        "shipped pool of k-averaged faces")
    p.add_argument("--donors", default=None, metavar="DIR",
                   help="replace/fatm: a folder of consented donor photos (default: the shipped "
                        "k-averaged faces, nobody's; 'gan' for synthetic faces); see docs/REPLACE.md")
    p.add_argument("--seed", type=int, default=None, help="seed for stochastic methods")
    p.add_argument("--keep-metadata", action="store_true",
                   help="keep safe metadata (never GPS or the EXIF thumbnail); default: strip all")
    p.add_argument("--json", action="store_true", help="write an audit record OUTPUT.json per image")
    p.add_argument("--summary-json", default=None, help="write the batch summary to this JSON file")
    p.add_argument("--suffix", default="_anonymized", help="suffix for outputs written beside inputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    v = p.add_argument_group("video")
    v.add_argument("--hold", type=int, default=None,
                   help="frames a face stays painted after its last detection (default: 0.5 s)")
    v.add_argument("--lookahead", type=int, default=None,
                   help="frames painted back before a face's first detection (default: 0.5 s)")
    v.add_argument("--codec", default=None, help="video codec (default: libx264, or the format's own)")
    v.add_argument("--crf", type=int, default=None, help="encoder quality (default: 18)")
    v.add_argument("--preset", default=None, help="encoder preset (default: veryfast)")
    v.add_argument("--pix-fmt", default=None,
                   help="encoder pixel format (default: the source's); --codec ffv1 --pix-fmt bgr0 "
                        "with .mkv stores the RGB frames losslessly")
    v.add_argument("--no-audio", action="store_true", help="drop audio and subtitle streams")
    v.add_argument("--input", default=None,
                   help="live source: stream URL, pipe:0 or capture device (with --input-format)")
    v.add_argument("--input-format", default=None, help="FFmpeg input format for --input")
    v.add_argument("--max-frames", type=int, default=None, help="stop a live source after N frames")
    from .keys.cli import add_commands as add_key_commands, add_key_arguments
    from .fatm.cli import add_fatm_command

    add_key_arguments(p)
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

    add_key_commands(sub)             # keygen, recover (facedeid.keys.cli)
    add_fatm_command(sub)             # train-fatm (facedeid.fatm.cli; torch extra)

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
