"""Command line of the reversible mode: ``keygen``, ``recover`` and ``anonymize --reversible``.

``facedeid.cli`` calls :func:`add_key_arguments` (anonymize's options),
:func:`add_commands` (the two subcommands) and :func:`master_key_from_args`.
Keys and passphrases are read from files, an environment variable or a prompt,
never from the command line, and are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import FaceDeidError
from .errors import KeyFileError


# ---------------------------------------------------------------- key options
def _add_key_source(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--key-file", default=None, metavar="KEYFILE",
                   help="master key file from `facedeid keygen` (or, for recover, a face key)")
    p.add_argument("--passphrase-file", default=None, metavar="FILE",
                   help="read the passphrase from the first line of FILE")
    p.add_argument("--passphrase-env", default=None, metavar="VAR",
                   help="read the passphrase from environment variable VAR")
    p.add_argument("--ask-passphrase", action="store_true", help="prompt for the passphrase")


def add_key_arguments(p: argparse.ArgumentParser) -> None:
    """``anonymize``'s reversible-mode options."""
    g = p.add_argument_group("reversible mode (docs/KEYS.md)")
    g.add_argument("--reversible", action="store_true",
                   help="also store the original face pixels, AES-256-GCM encrypted, in the output "
                        "(PNG chunk, JPEG APP15, MKV attachment) or a sidecar OUTPUT.fdk")
    _add_key_source(g)


def _sources(args) -> list[str]:
    return [name for name, on in (("--key-file", args.key_file), ("--passphrase-file", args.passphrase_file),
                                  ("--passphrase-env", args.passphrase_env),
                                  ("--ask-passphrase", args.ask_passphrase)) if on]


def _passphrase(args, confirm: bool) -> bytes:
    from .keyfile import passphrase_from_env, prompt_passphrase, read_passphrase_file, weak_passphrase

    if args.passphrase_file:
        pw = read_passphrase_file(args.passphrase_file)
    elif args.passphrase_env:
        pw = passphrase_from_env(args.passphrase_env)
    else:
        pw = prompt_passphrase(confirm)
    if confirm and weak_passphrase(pw):
        print("facedeid: warning: the passphrase is shorter than 12 characters; scrypt slows "
              "guessing, it cannot make a short passphrase strong", file=sys.stderr)
    return pw


def master_key_from_args(args, *, confirm: bool = True):
    """The :class:`~facedeid.keys.MasterKey` that ``anonymize --reversible`` encrypts with,
    or None without ``--reversible`` (key options without it are an error)."""
    from .keyfile import MasterKey

    sources = _sources(args)
    if not getattr(args, "reversible", False):
        if sources:
            raise KeyFileError(f"{sources[0]} is only used with --reversible")
        return None
    if len(sources) != 1:
        raise KeyFileError("--reversible needs exactly one of --key-file, --passphrase-file, "
                           "--passphrase-env, --ask-passphrase" + (f" (got {', '.join(sources)})"
                                                                  if sources else ""))
    if args.key_file:
        return MasterKey.from_key_file(args.key_file)
    return MasterKey.from_passphrase(_passphrase(args, confirm))


def key_from_args(args):
    """The key that opens a payload: a master key file, a face key file, or a passphrase."""
    from .keyfile import MasterKey, load_key

    sources = _sources(args)
    if len(sources) != 1:
        raise KeyFileError("give exactly one of --key-file, --passphrase-file, --passphrase-env, "
                           "--ask-passphrase" + (f" (got {', '.join(sources)})" if sources else ""))
    if args.key_file:
        return load_key(args.key_file)
    return MasterKey.from_passphrase(_passphrase(args, confirm=False))


# ---------------------------------------------------------------- keygen
def cmd_keygen(args: argparse.Namespace) -> int:
    from .keyfile import FaceKey, MasterKey, generate_key_file, write_face_key

    if args.derive is None:
        if _sources(args) or args.face is not None:
            raise FaceDeidError("keygen -o KEYFILE makes a new master key; --face and key options "
                                "go with --derive")
        path = generate_key_file(args.output)
        print(f"{path}: new 256-bit master key (mode 0600). Keep it safe: without it the "
              "original faces cannot be recovered; with it, anyone can recover them.")
        return 0
    if args.face is None:
        raise FaceDeidError("--derive needs --face ID (the face id, or the track id in a video)")
    key = key_from_args(args)
    if not isinstance(key, MasterKey):
        raise KeyFileError(f"{args.key_file}: a face key cannot derive other keys; give the master key")
    from .video import open_payload_any

    payload, _, opener = open_payload_any(args.derive, key, payload_path=args.payload)
    unit = int(args.face)
    if unit not in payload.face_units:
        raise FaceDeidError(f"{args.derive}: the payload has no face {unit} (faces: "
                            f"{', '.join(map(str, payload.face_units)) or 'none'})")
    hdr = payload.header
    face_key = FaceKey(payload_id=hdr.payload_id, kind=hdr.kind, unit=unit,
                       key=key.unit_key(hdr, unit))
    path = write_face_key(args.output, face_key)
    what = "track" if hdr.kind == 2 else "face"
    print(f"{path}: key of {what} {unit} of {args.derive} only (mode 0600): it opens that "
          f"{what} in that file and nothing else")
    return 0


# ---------------------------------------------------------------- recover
def _recover_dst(src: Path, output: str | None, many: bool, video: bool) -> Path:
    ext = src.suffix if video and src.suffix.lower() == ".mkv" else (".mkv" if video else ".png")
    name = src.stem + "_recovered" + ext
    if output is None:
        return src.with_name(name)
    out = Path(output)
    if not many and out.suffix and not out.is_dir():
        return out
    return out / name


def cmd_recover(args: argparse.Namespace) -> int:
    from ..io.paths import media_kind
    from .video import describe_payload, recover_video
    from .image import recover_image

    inputs = [Path(p) for p in args.inputs]
    many = len(inputs) > 1
    if many and args.payload:
        raise FaceDeidError("--payload names the payload of one input; give one input")
    if args.list:
        for src in inputs:
            info = describe_payload(src, payload_path=args.payload)
            print(json.dumps(info) if args.json else _describe_text(info))
        return 0
    key = key_from_args(args)
    failed = 0
    for src in inputs:
        try:
            video = media_kind(src) == "video"
            dst = _recover_dst(src, args.output, many, video)
            if video:
                result = recover_video(src, key, faces=args.face, dst=dst, payload_path=args.payload,
                                       progress=not args.quiet)
            else:
                _, result = recover_image(src, key, faces=args.face, dst=dst, payload_path=args.payload)
        except FaceDeidError as exc:
            failed += 1
            print(f"facedeid: error: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(result.to_dict()), flush=True)
        elif not args.quiet:
            print(result.text())
    if failed and many:
        print(f"{failed} of {len(inputs)} input(s) failed", file=sys.stderr)
    return 0 if not failed else (2 if failed == len(inputs) else 1)


def _describe_text(info: dict) -> str:
    lines = [f"{info['input']}: facedeid payload v{info['version']} ({info['where']}), {info['kind']}, "
             f"method {info['method']}, key: {info['key']}, {info['bytes']} bytes"]
    for u in info["faces"]:
        lines.append(f"  {info['unit_name']} {u['id']}: {u['entries']} entr{'y' if u['entries'] == 1 else 'ies'}"
                     + (f", box {u['box']}" if u.get("box") else "")
                     + (f", frames {u['frames'][0]}-{u['frames'][1]}" if u.get("frames") else ""))
    return "\n".join(lines)


def add_commands(sub) -> None:
    """Register ``keygen`` and ``recover``."""
    p = sub.add_parser("keygen", help="make a master key file, or export one face's key",
                       description="Make a new random 256-bit master key file (mode 0600; never "
                                   "overwrites), or with --derive export the key of one face of one "
                                   "reversible output for an investigator.")
    p.add_argument("-o", "--output", required=True, help="key file to create (must not exist)")
    p.add_argument("--derive", default=None, metavar="MEDIA",
                   help="a reversible output (image or video): export the key of --face in it")
    p.add_argument("--face", type=int, default=None, metavar="ID", help="face id (track id in a video)")
    p.add_argument("--payload", default=None, help="payload file, when not embedded or beside MEDIA")
    _add_key_source(p)
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("recover", help="restore the original faces of a reversible output",
                       description="Restore the original pixels of the faces a key opens. Refuses, "
                                   "writing nothing, on a wrong key, a modified or truncated payload, "
                                   "a modified face region, or a payload of another file.")
    p.add_argument("inputs", nargs="+", help="reversible outputs (images or videos)")
    p.add_argument("-o", "--output", default=None,
                   help="output file (one input; .png/.tif, video .mkv) or folder; "
                        "default NAME_recovered.png (.mkv for video) beside each input")
    p.add_argument("--face", type=int, action="append", default=None, metavar="ID",
                   help="recover only this face (repeatable; track id in a video)")
    p.add_argument("--payload", default=None, help="payload file (default: embedded, or INPUT.fdk)")
    p.add_argument("--list", action="store_true", help="describe the payload (no key needed) and exit")
    p.add_argument("--json", action="store_true", help="one JSON result per input on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    _add_key_source(p)
    p.set_defaults(func=cmd_recover)


__all__ = ["add_key_arguments", "add_commands", "master_key_from_args", "key_from_args",
           "cmd_keygen", "cmd_recover"]
