"""Reversible still images: write the de-identified image with its payload; recover.

Writing (:func:`write_reversible_image`), for any method: the regions the
pipeline painted (its per-face records: shape, scale, feather, ``bbox``) give one
ownership mask per face (:func:`facedeid.keys.pixels.ownership`); every pixel the
method changed must lie in one (checked: the image is refused otherwise). The
image is encoded, **decoded again exactly as** :func:`facedeid.io.images.read_image`
**will decode it**, each face's entry is bound to the SHA-256 of those de-identified
pixels, and the payload is embedded (PNG, JPEG) or written as a sidecar
(``OUTPUT.fdk``, before the image, both atomically).

Recovery (:func:`recover_image`) checks the key, the payload's tags, and each
face's region digest *before* anything is written; any failure raises and
writes nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import InputError, OutputError
from .embed import embed, extract, sidecar_path
from .errors import PayloadError, TamperError, WrongKeyError
from .keyfile import FaceKey, MasterKey
from .payload import IMAGE_UNIT, KIND_IMAGE, KIND_VIDEO, MAGIC, Payload, parse_payload
from .pixels import image_digest, layout_of, ownership, pack_region, region_digest, to_layout, unpack_region
from .seal import ZERO_DIGEST, Opener, Sealer

#: Formats a recovered image may be written in (lossless only).
RECOVER_FORMATS = ("PNG", "TIFF")
LOSSLESS_FORMATS = ("PNG", "TIFF", "BMP")


@dataclass
class ReversibleInfo:
    """What :func:`write_reversible_image` added to an output (no key material)."""

    where: str
    payload_bytes: int
    faces: list[int]
    key_source: str
    sidecar: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def note(self) -> str:
        """One line for the audit record's notes."""
        return (f"reversible: {len(self.faces)} face region(s) encrypted (AES-256-GCM, "
                f"{self.key_source}), payload {self.payload_bytes} bytes in {self.where}")

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "payload_bytes": self.payload_bytes, "faces": list(self.faces),
                "key_source": self.key_source,
                "sidecar": str(self.sidecar) if self.sidecar else None,
                "seconds": {k: round(v, 6) for k, v in self.seconds.items()}}


# ---------------------------------------------------------------- regions
def face_regions(record: dict, faces: list, height: int, width: int
                 ) -> list[tuple[int, np.ndarray, tuple[int, int, int, int]]]:
    """``(unit id, mask, bbox)`` of every painted face, from the pipeline's records.

    The mask is rebuilt with :func:`facedeid.composite.region_mask` from the
    record (shape, mask scale, feather) exactly as the pipeline built it; where it
    cannot be (or its box differs from the record's), the whole ``bbox`` is used.
    Unit ids are the faces' ids (track ids in video), made unique.
    """
    from .. import composite
    from ..pipeline import HULL_REGION

    out = []
    used: set[int] = set()
    for index, rec in enumerate(record):
        if not rec.get("painted"):
            continue
        region = rec.get("region") or {}
        bbox = tuple(int(v) for v in region.get("bbox", ()))
        if len(bbox) != 4 or bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
            continue
        x0, y0, x1, y1 = bbox
        mask = None
        face = faces[index] if index < len(faces) else None
        if face is not None:
            try:
                m, b = composite.region_mask(height, width, face, shape=region.get("shape", "ellipse"),
                                             mask_scale=float(region.get("mask_scale", 1.3)),
                                             feather=float(region.get("feather", 0.0)), region=HULL_REGION)
                if tuple(int(v) for v in b) == bbox:
                    mask = m
            except Exception:  # noqa: BLE001 - any failure: fall back to the whole box
                mask = None
        if mask is None:
            mask = np.ones((y1 - y0, x1 - x0), np.float32)
        unit = rec.get("id")
        if not isinstance(unit, int) or unit < 0 or unit >= IMAGE_UNIT or unit in used:
            unit = index
            while unit in used:
                unit += 1
        used.add(unit)
        out.append((unit, mask, bbox))
    return out


def cover_changes(original: np.ndarray, painted: np.ndarray,
                  regions: list[tuple[int, np.ndarray, tuple[int, int, int, int]]]):
    """Make sure every pixel that differs lies in some region (extending masks inside
    their boxes where needed); RuntimeError when a change lies outside every box."""
    o, p = np.asarray(original), np.asarray(painted)
    if o.shape != p.shape:
        raise RuntimeError("the de-identified image has another shape than the original")
    changed = o != p
    if changed.ndim == 3:
        changed = changed.any(axis=2)
    if not changed.any():
        return regions
    covered = np.zeros(changed.shape, bool)
    for _, mask, (x0, y0, x1, y1) in regions:
        covered[y0:y1, x0:x1] |= np.asarray(mask) > 0
    missing = changed & ~covered
    if not missing.any():
        return regions
    out = []
    for unit, mask, (x0, y0, x1, y1) in regions:
        sub = missing[y0:y1, x0:x1]
        if sub.any():
            mask = np.where(sub, np.float32(1), np.asarray(mask, np.float32))
            missing[y0:y1, x0:x1] = False
        out.append((unit, mask, (x0, y0, x1, y1)))
    if missing.any():
        raise RuntimeError(f"the method changed {int(missing.sum())} pixel(s) outside every face's "
                           "region; a reversible output cannot be written")
    return out


def pack_faces(original: np.ndarray, painted: np.ndarray, record: list[dict], faces: list
               ) -> list[tuple[int, tuple[int, int, int, int], bytes]]:
    """``(unit, bbox, plaintext)`` of every painted face (ownership applied)."""
    h, w = original.shape[:2]
    regions = cover_changes(original, painted, face_regions(record, faces, h, w))
    owned = ownership([(m, b) for _, m, b in regions], h, w)
    out = []
    for (unit, _, bbox), own in zip(regions, owned):
        x0, y0, x1, y1 = bbox
        out.append((unit, bbox, pack_region(original[y0:y1, x0:x1], own)))
    return out


# ---------------------------------------------------------------- writing
def write_reversible_image(dst: str | Path, result, loaded, key: MasterKey, *,
                           protect: Iterable[str | Path] = (), **write_kwargs) -> tuple[Any, ReversibleInfo]:
    """Write ``result.image`` like :func:`~facedeid.io.images.write_image`, plus the payload.

    Args:
        dst: the output image.
        result: the :class:`~facedeid.pipeline.AnonymizeResult` of ``loaded.pixels``.
        loaded: the :class:`~facedeid.io.images.LoadedImage` (its pixels are the original).
        key: the master key (key file or passphrase).
        protect: inputs that must never be overwritten.
        **write_kwargs: passed to ``write_image`` (``keep_metadata`` ...).

    Returns:
        ``(WrittenImage, ReversibleInfo)``.
    """
    from ..io.atomic import atomic_write_bytes
    from ..io.images import decode_image, write_image

    original = np.asarray(loaded.pixels)
    h, w = original.shape[:2]
    channels, bits = layout_of(original)
    method = result.record.get("method", {}).get("name", "unknown")
    t0 = time.perf_counter()
    packed = pack_faces(original, np.asarray(result.image), result.record.get("faces", []), result.faces)
    t1 = time.perf_counter()
    side = sidecar_path(dst)
    protect = list(protect)
    state: dict[str, Any] = {"seconds": {"pack": t1 - t0}}

    def finalize(data: bytes, fmt: str) -> bytes:
        t2 = time.perf_counter()
        decoded = decode_image(data, dst).pixels
        t3 = time.perf_counter()
        sealer = Sealer(key, kind=KIND_IMAGE, method=method, width=w, height=h, channels=channels, bits=bits)
        for unit, bbox, plaintext in packed:
            sealer.add(unit, 0, bbox, region_digest(decoded, bbox), plaintext)
        sealer.add(IMAGE_UNIT, 0, (0, 0, w, h), ZERO_DIGEST, image_digest(original))
        payload = sealer.finish()
        t4 = time.perf_counter()
        state["seconds"].update(decode=t3 - t2, encrypt=t4 - t3)
        state["payload_bytes"] = len(payload)
        out = embed(data, fmt, payload)
        if out is None:
            atomic_write_bytes(side, payload, protect=protect)
            state["sidecar"] = side
            state["where"] = f"sidecar {side.name}"
            return data
        state["where"] = "PNG chunk fdEK" if fmt == "PNG" else "JPEG APP15 segments"
        return out

    try:
        written = write_image(dst, result.image, like=loaded, protect=protect, finalize=finalize,
                              **write_kwargs)
    except BaseException:
        if state.get("sidecar") is not None:
            try:
                os.unlink(state["sidecar"])
            except OSError:
                pass
        raise
    if state.get("sidecar") is None:
        _remove_stale_sidecar(side)
    info = ReversibleInfo(where=state["where"], payload_bytes=state["payload_bytes"],
                          faces=[u for u, _, _ in packed], key_source=key.source,
                          sidecar=state.get("sidecar"), seconds=state["seconds"])
    return written, info


def _remove_stale_sidecar(side: Path) -> None:
    """An old sidecar of an earlier run next to an output that now embeds its payload."""
    try:
        with open(side, "rb") as fh:
            if fh.read(len(MAGIC)) == MAGIC:
                os.unlink(side)
    except OSError:
        pass


# ---------------------------------------------------------------- reading
def read_payload(data: bytes, src: str | Path, payload_path: str | Path | None = None
                 ) -> tuple[Payload, str]:
    """The parsed payload of an encoded image (embedded, or the sidecar next to it)."""
    name = str(src)
    if payload_path is not None:
        raw, where = _read_file(payload_path), f"payload file {payload_path}"
    else:
        try:
            raw, where = extract(data)
        except PayloadError as exc:
            raise PayloadError(f"{name}: {exc}") from None
        if raw is None:
            side = sidecar_path(src)
            if not side.exists():
                raise PayloadError(f"{name}: no facedeid payload found (not embedded, and no sidecar "
                                   f"{side.name}): the image was not written with --reversible, or "
                                   "its payload was stripped")
            raw, where = _read_file(side), f"sidecar {side.name}"
    try:
        return parse_payload(raw), where
    except PayloadError as exc:
        raise PayloadError(f"{name}: {exc}") from None


def _read_file(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None


@dataclass
class RecoverResult:
    """What :func:`recover_image` (or the video recovery) did; no key material."""

    input: str
    output: str | None
    kind: str
    method: str
    where: str
    faces: list[int]
    recovered: list[int]
    locked: list[int]
    exact: str                  # "pixel-exact" | "regions"
    verified: bool
    detail: str
    payload_bytes: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        head = f"{self.output or self.input}: recovered {len(self.recovered)} of {len(self.faces)} face(s)"
        if self.locked:
            head += f" (faces {', '.join(map(str, self.locked))} stay de-identified: not opened by this key)"
        return head + f"; {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("input", "output", "kind", "method", "where", "faces",
                                            "recovered", "locked", "exact", "verified", "detail",
                                            "payload_bytes")}
        d["seconds"] = round(self.seconds, 4)
        d.update(self.extra)
        return d


def _select(opener: Opener, payload: Payload, faces: Iterable[int] | None, name: str) -> list[int]:
    available = payload.face_units
    if faces is None:
        return [u for u in available if opener.opens(u)]
    wanted = []
    for f in faces:
        f = int(f)
        if f not in payload.units or f == IMAGE_UNIT:
            raise InputError(f"{name}: the payload has no face {f} (faces: "
                             f"{', '.join(map(str, available)) or 'none'})")
        if not opener.opens(f):
            raise WrongKeyError(f"{name}: this key does not open face {f}")
        wanted.append(f)
    return sorted(set(wanted))


def open_image_payload(src: str | Path, key: MasterKey | FaceKey, *,
                       payload_path: str | Path | None = None):
    """``(loaded, payload, where, opener)`` for an image; all checks but the regions'."""
    from ..io.images import _read_bytes, decode_image

    data = _read_bytes(src)
    loaded = decode_image(data, src)
    payload, where = read_payload(data, src, payload_path)
    name = str(src)
    hdr = payload.header
    if hdr.kind != KIND_IMAGE:
        raise PayloadError(f"{name}: the payload belongs to a video, not an image")
    if (hdr.width, hdr.height) != (loaded.width, loaded.height):
        raise TamperError(f"{name}: the payload belongs to another image (it describes a "
                          f"{hdr.width}x{hdr.height} picture, this one is {loaded.width}x{loaded.height})")
    return loaded, payload, where, Opener(payload, key, name)


def recover_image(src: str | Path, key: MasterKey | FaceKey, *, faces: Iterable[int] | None = None,
                  dst: str | Path | None = None, payload_path: str | Path | None = None
                  ) -> tuple[np.ndarray, RecoverResult]:
    """Restore the original pixels of the faces this key opens (or of ``faces``).

    Every check (key, payload tags, each face's de-identified region digest, each
    ciphertext) passes before anything is written; ``dst`` (PNG or TIFF) is then
    written atomically. Returns the recovered pixels (the original's layout) and
    a :class:`RecoverResult` saying whether the result is pixel-exact (verified
    against the encrypted digest of the original, master key only) or exact
    inside the face regions only.

    Raises:
        PayloadError: no payload, or a malformed/truncated one.
        WrongKeyError: the key opens nothing here (or not the face asked for).
        TamperError: the payload or a face's de-identified region was modified, or
            the payload belongs to another image.
        OutputError: ``dst`` is not PNG/TIFF, or would overwrite the input.
    """
    from ..io.images import output_format, write_image

    t0 = time.perf_counter()
    name = str(src)
    if dst is not None and output_format(dst) not in RECOVER_FORMATS:
        raise OutputError(f"{dst}: recovered images are written losslessly: use .png or .tif")
    loaded, payload, where, opener = open_image_payload(src, key, payload_path=payload_path)
    hdr = payload.header
    wanted = _select(opener, payload, faces, name)
    base = to_layout(loaded.pixels, hdr.channels, hdr.bits).copy()
    entries = [e for e in payload.entries if e.unit in wanted]
    for e in entries:
        if region_digest(loaded.pixels, e.bbox) != e.digest:
            raise TamperError(f"{name}: face {e.unit}: the de-identified region was modified after "
                              "writing (edited or re-encoded), or this payload belongs to another image")
    for e in entries:
        x0, y0, x1, y1 = e.bbox
        owned, pix = unpack_region(opener.open(e), y1 - y0, x1 - x0, hdr.channels, hdr.bits)
        base[y0:y1, x0:x1][owned] = pix[owned]
    all_faces = payload.face_units
    locked = [u for u in all_faces if u not in wanted]
    lossless = loaded.format in LOSSLESS_FORMATS or (loaded.format == "WEBP" and bool(loaded.lossless))
    verified = False
    if not locked and opener.opens(IMAGE_UNIT):
        image_entry = payload.entries_of(IMAGE_UNIT)[0]
        verified = image_digest(base) == opener.open(image_entry)
    if verified:
        exact, detail = "pixel-exact", "pixel-exact: identical to the original (verified against its " \
                                       "encrypted digest)"
    else:
        exact = "regions"
        why = (f"the de-identified file is lossy ({loaded.format})" if not lossless else
               "other faces stay de-identified" if locked else
               "verification needs the master key" if not opener.master else
               "the file's pixels outside the faces differ from the original")
        detail = ("exact inside the recovered face regions (authenticated); outside them the "
                  f"pixels are the de-identified file's ({why})")
    result = RecoverResult(input=name, output=str(dst) if dst is not None else None, kind="image",
                           method=hdr.method, where=where, faces=all_faces, recovered=wanted,
                           locked=locked, exact=exact, verified=verified, detail=detail,
                           payload_bytes=payload.size)
    if dst is not None:
        write_image(dst, base, like=loaded, protect=[src])
    result.seconds = time.perf_counter() - t0
    return base, result


__all__ = ["ReversibleInfo", "RecoverResult", "face_regions", "cover_changes", "pack_faces",
           "write_reversible_image", "read_payload", "open_image_payload", "recover_image",
           "RECOVER_FORMATS"]
