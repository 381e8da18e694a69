"""Reversible video: per-track keys, payload in a Matroska attachment or a sidecar.

Writing (:func:`anonymize_video_reversible`): :func:`facedeid.video.anonymize_video`
calls back for every frame with the original and painted frames and the painted
faces' records (``on_paint``); each track's original region pixels in that frame
become one entry (unit = track id, frame = frame index), encrypted as they come
and spooled to a temporary file (only ciphertext touches the disk). When the
video is written, the payload is **bound to the video stream**: the trailer holds
the SHA-256 of every packet of the video stream, so a re-encoded or edited video,
or a payload moved to another video, is refused. The payload then becomes an
attachment of the ``.mkv`` (remuxed; packets unchanged, checked) or a sidecar
``OUTPUT.fdk`` for every other container (PyAV 18 writes no usable data track
into MP4). A track key (``keygen --derive VIDEO --face TRACK``) opens one person's
track and nothing else.

Recovery (:func:`recover_video`) checks key, tags and the stream digest first,
then decodes the de-identified video, restores the regions the key opens and
writes FFV1 in RGB (``bgr0``): lossless, so the restored regions are exact in the
file; outside them the frames are those decoded from the de-identified video
(pixel-exact overall when that video was itself lossless RGB:
``--codec ffv1 --pix-fmt bgr0``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import FaceDeidError, InputError, OutputError
from .embed import MKV_ATTACHMENT, MKV_MIMETYPE, extract, sidecar_path
from .errors import PayloadError, TamperError
from .image import ReversibleInfo, RecoverResult, _select, open_image_payload, pack_faces, read_payload
from .keyfile import FaceKey, MasterKey
from .payload import IMAGE_UNIT, KIND_IMAGE, KIND_VIDEO, KINDS, MAGIC, Payload, parse_payload
from .pixels import image_digest, unpack_region
from .seal import ZERO_DIGEST, Opener, Sealer

#: The largest payload read into memory from an attachment or sidecar.
MAX_VIDEO_PAYLOAD = 1 << 32
#: Lossless RGB storage of recovered (and, on request, de-identified) video.
LOSSLESS_CODEC, LOSSLESS_PIX_FMT = "ffv1", "bgr0"


def _is_mkv(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".mkv"


# ---------------------------------------------------------------- stream binding
def video_stream_digest(path: str | Path) -> bytes:
    """SHA-256 over every packet of the first video stream, in order (size-prefixed).

    Unchanged by remuxing into another container; changed by any re-encoding or
    edit of the pictures.
    """
    import av

    h = hashlib.sha256(b"facedeid-video-stream\0")
    try:
        with av.open(str(path), "r") as c:
            streams = [s for s in c.streams.video
                       if not (s.disposition & av.stream.Disposition.attached_pic)]
            if not streams:
                raise InputError(f"{path}: no video stream")
            for pkt in c.demux(streams[0]):
                if pkt.size:
                    h.update(pkt.size.to_bytes(8, "big"))
                    h.update(bytes(pkt))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: cannot read the video: {exc}") from None
    return h.digest()


def _read_attachment(path: str | Path) -> bytes | None:
    import av

    try:
        with av.open(str(path), "r") as c:
            found = [s for s in c.streams if s.type == "attachment" and s.name == MKV_ATTACHMENT]
            if len(found) > 1:
                raise PayloadError(f"{path}: more than one facedeid payload attachment")
            if not found:
                return None
            data = found[0].data
            if data is None or len(data) > MAX_VIDEO_PAYLOAD:
                raise PayloadError(f"{path}: the payload attachment is empty or too large")
            return bytes(data)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: cannot read the video: {exc}") from None


def _remux_with_attachment(src: Path, dst: Path, payload: bytes) -> None:
    """Copy every stream's packets of ``src`` into Matroska ``dst`` with the payload attached."""
    import av

    with av.open(str(src), "r") as inp, av.open(str(dst), "w", format="matroska") as out:
        for k, v in inp.metadata.items():
            if k.lower() not in ("encoder", "duration"):
                out.metadata[k] = v
        mapping = {}
        for s in inp.streams:
            if s.type not in ("video", "audio", "subtitle"):
                continue
            o = out.add_stream_from_template(s)
            try:
                o.disposition = s.disposition
            except Exception:  # noqa: BLE001 - a disposition the muxer refuses
                pass
            lang = s.metadata.get("language")
            if lang:
                o.metadata["language"] = lang
            mapping[s.index] = o
        out.add_attachment(MKV_ATTACHMENT, MKV_MIMETYPE, payload)
        for pkt in inp.demux(*[s for s in inp.streams if s.index in mapping]):
            if pkt.dts is None and pkt.pts is None:
                continue
            pkt.stream = mapping[pkt.stream.index]
            out.mux(pkt)


# ---------------------------------------------------------------- writing
class VideoRecorder:
    """The ``on_paint`` callback: packs and encrypts each frame's painted regions.

    Entries are spooled to a temporary file as they come (ciphertext only); the
    Sealer is created at the first frame (its size is the header's).
    """

    def __init__(self, key: MasterKey, method: str):
        self.key = key
        self.method = method
        self.spool = tempfile.TemporaryFile(prefix="facedeid-payload-")
        self.sealer: Sealer | None = None
        self.units: set[int] = set()
        self.entries = 0
        self.seconds = 0.0
        self.frames = 0

    def __call__(self, index: int, original: np.ndarray, painted: np.ndarray, faces: list,
                 records: list[dict]) -> None:
        t0 = time.perf_counter()
        if self.sealer is None:
            h, w = original.shape[:2]
            self.sealer = Sealer(self.key, kind=KIND_VIDEO, method=self.method, width=w, height=h,
                                 channels=3, bits=8, sink=self.spool)
        self.frames += 1
        if faces and records:
            for unit, bbox, plaintext in pack_faces(original, painted, records, faces):
                self.sealer.add(unit, index, bbox, ZERO_DIGEST, plaintext)
                self.units.add(unit)
                self.entries += 1
        h, w = original.shape[:2]
        self.sealer.add(IMAGE_UNIT, index, (0, 0, w, h), ZERO_DIGEST, image_digest(original))
        self.seconds += time.perf_counter() - t0

    def finish(self, binding: bytes) -> int:
        """Write the trailer; returns the payload size."""
        if self.sealer is None:
            raise FaceDeidError("the video had no frame: nothing to make reversible")
        self.sealer.finish(binding)
        self.spool.flush()
        return self.sealer.size

    def copy_to(self, fh) -> None:
        self.spool.seek(0)
        shutil.copyfileobj(self.spool, fh, 1 << 20)

    def read(self) -> bytes:
        self.spool.seek(0)
        return self.spool.read()

    def close(self) -> None:
        self.spool.close()


def anonymize_video_reversible(src: str | Path, dst: str | Path, anonymizer, key: MasterKey, *,
                               audit_path: str | Path | None = None, **kwargs):
    """:func:`facedeid.video.anonymize_video` plus the encrypted payload.

    Returns ``(VideoSummary, ReversibleInfo)``. The de-identified video, and the
    sidecar when there is one, appear only when everything succeeded.
    """
    from ..io.atomic import atomic_output, atomic_write_bytes
    from ..io.video import is_stream_source
    from ..video import _summary_path, anonymize_video

    dst = Path(dst)
    protect = [] if is_stream_source(str(src)) else [str(src)]
    method = anonymizer.method.name
    recorder = VideoRecorder(key, method)
    side = sidecar_path(dst)
    side_written = False
    try:
        with atomic_output(dst, protect=protect) as final_tmp:
            work = final_tmp.with_name(final_tmp.name + ".work" + dst.suffix)
            try:
                summary = anonymize_video(src, work, anonymizer, audit_path=audit_path,
                                          on_paint=recorder, **kwargs)
                t0 = time.perf_counter()
                binding = video_stream_digest(work)
                size = recorder.finish(binding)
                if _is_mkv(dst):
                    _remux_with_attachment(work, final_tmp, recorder.read())
                    if video_stream_digest(final_tmp) != binding:
                        raise OutputError(f"{dst}: remuxing changed the video stream; payload not attached")
                    where = f"Matroska attachment {MKV_ATTACHMENT}"
                else:
                    os.replace(work, final_tmp)
                    with atomic_output(side, protect=protect) as stmp, open(stmp, "wb") as fh:
                        recorder.copy_to(fh)
                    side_written = True
                    where = f"sidecar {side.name}"
                seconds_bind = time.perf_counter() - t0
            finally:
                try:
                    work.unlink()
                except FileNotFoundError:
                    pass
    except BaseException:
        if side_written:
            try:
                side.unlink()
            except OSError:
                pass
        raise
    finally:
        recorder.close()
    if not side_written:
        _remove_stale(side)
    summary.dst = str(dst)
    info = ReversibleInfo(where=where, payload_bytes=size, faces=sorted(recorder.units),
                          key_source=key.source, sidecar=side if side_written else None,
                          seconds={"encrypt": recorder.seconds, "bind": seconds_bind})
    summary.notes.append(info.note() + f" ({recorder.entries} track-frame entries)")
    if audit_path is not None:
        d = summary.to_dict()
        d["reversible"] = info.to_dict()
        atomic_write_bytes(_summary_path(Path(audit_path)),
                           json.dumps(d, indent=1, default=str).encode("utf-8"), protect=protect)
    return summary, info


def _remove_stale(side: Path) -> None:
    try:
        with open(side, "rb") as fh:
            if fh.read(len(MAGIC)) == MAGIC:
                os.unlink(side)
    except OSError:
        pass


# ---------------------------------------------------------------- reading
def read_video_payload(src: str | Path, payload_path: str | Path | None = None) -> tuple[Payload, str]:
    """The parsed payload of a video (its attachment, ``--payload`` or the sidecar)."""
    name = str(src)
    if payload_path is not None:
        raw, where = _read_limited(payload_path), f"payload file {payload_path}"
    else:
        raw = _read_attachment(src) if _is_mkv(src) or Path(src).suffix.lower() == ".webm" else None
        where = f"Matroska attachment {MKV_ATTACHMENT}"
        if raw is None:
            side = sidecar_path(src)
            if not side.exists():
                raise PayloadError(f"{name}: no facedeid payload found (no attachment, and no sidecar "
                                   f"{side.name}): the video was not written with --reversible")
            raw, where = _read_limited(side), f"sidecar {side.name}"
    try:
        return parse_payload(raw), where
    except PayloadError as exc:
        raise PayloadError(f"{name}: {exc}") from None


def _read_limited(path: str | Path) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_VIDEO_PAYLOAD:
            raise PayloadError(f"{path}: payload larger than {MAX_VIDEO_PAYLOAD} bytes")
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None


def open_video_payload(src: str | Path, key: MasterKey | FaceKey, *,
                       payload_path: str | Path | None = None) -> tuple[Payload, str, Opener]:
    """``(payload, where, opener)`` with the key, tags and the stream binding checked."""
    payload, where = read_video_payload(src, payload_path)
    name = str(src)
    if payload.header.kind != KIND_VIDEO:
        raise PayloadError(f"{name}: the payload belongs to an image, not a video")
    opener = Opener(payload, key, name)
    if video_stream_digest(src) != payload.trailer.binding:
        raise TamperError(f"{name}: the video stream was modified after writing (re-encoded or "
                          "edited), or this payload belongs to another video")
    return payload, where, opener


def open_payload_any(src: str | Path, key: MasterKey | FaceKey, *,
                     payload_path: str | Path | None = None) -> tuple[Payload, str, Opener]:
    """Image or video (by extension): ``(payload, where, opener)``."""
    from ..io.paths import media_kind

    if media_kind(src) == "video":
        return open_video_payload(src, key, payload_path=payload_path)
    _, payload, where, opener = open_image_payload(src, key, payload_path=payload_path)
    return payload, where, opener


def describe_payload(src: str | Path, *, payload_path: str | Path | None = None) -> dict[str, Any]:
    """What a payload says without a key: format, kind, method, faces (ids, entries, boxes)."""
    from ..io.paths import media_kind

    if media_kind(src) == "video":
        payload, where = read_video_payload(src, payload_path)
    else:
        data = _read_limited(src)
        payload, where = read_payload(data, src, payload_path)
    hdr = payload.header
    faces = []
    for u in payload.face_units:
        entries = payload.entries_of(u)
        d: dict[str, Any] = {"id": u, "entries": len(entries)}
        if hdr.kind == KIND_IMAGE:
            d["box"] = list(entries[0].bbox)
        else:
            d["frames"] = [entries[0].frame, entries[-1].frame]
        faces.append(d)
    return {"input": str(src), "version": 1, "where": where, "kind": KINDS[hdr.kind],
            "method": hdr.method, "key": "passphrase (scrypt N=2^%d, r=%d, p=%d)" % (
                hdr.kdf.log2_n, hdr.kdf.r, hdr.kdf.p) if hdr.kdf else "key file",
            "bytes": payload.size, "width": hdr.width, "height": hdr.height,
            "unit_name": "track" if hdr.kind == KIND_VIDEO else "face", "faces": faces}


def recover_video(src: str | Path, key: MasterKey | FaceKey, *, faces: Iterable[int] | None = None,
                  dst: str | Path, payload_path: str | Path | None = None,
                  progress: bool = False) -> RecoverResult:
    """Restore the tracks the key opens (or ``faces``) and write a lossless ``.mkv``.

    Every check (key, tags, stream digest) passes before decoding starts; a failure
    while writing leaves no file (atomic output).
    """
    from ..io.atomic import atomic_output
    from ..io.video import VideoReader, VideoWriter, orient, unorient

    t0 = time.perf_counter()
    name = str(src)
    dst = Path(dst)
    if not _is_mkv(dst):
        raise OutputError(f"{dst}: recovered video is written losslessly (FFV1): use .mkv")
    payload, where, opener = open_video_payload(src, key, payload_path=payload_path)
    hdr = payload.header
    wanted = _select(opener, payload, faces, name)
    locked = [u for u in payload.face_units if u not in wanted]
    verify = not locked and opener.opens(IMAGE_UNIT)
    by_frame: dict[int, list] = {}
    checks: dict[int, Any] = {}
    for e in payload.entries:
        if e.unit in wanted:
            by_frame.setdefault(e.frame, []).append(e)
        elif e.unit == IMAGE_UNIT and verify:
            checks[e.frame] = e
    reader = VideoReader(name, copy_types=("audio", "subtitle"))
    restored = 0
    frames = 0
    exact_frames = 0
    try:
        info = reader.info()
        rot = info.rotation if info.rotation % 90 == 0 else 0
        bar = None
        if progress:
            from tqdm import tqdm
            import sys

            bar = tqdm(total=info.frames, unit="frame", file=sys.stderr, desc="recover", leave=False)
        with atomic_output(dst, protect=[name]) as tmp:
            writer = VideoWriter(tmp, dataclasses.replace(info, pix_fmt=LOSSLESS_PIX_FMT), fmt="matroska",
                                 codec=LOSSLESS_CODEC, copy_streams=reader.copy_streams,
                                 strip_metadata=True, stream_infos=info.streams, name=str(dst),
                                 pix_fmt=LOSSLESS_PIX_FMT)
            try:
                for kind, item in reader.items():
                    if kind == "packet":
                        writer.write_packet(item)
                        continue
                    frame = item
                    disp = orient(frame.image, rot)
                    entries = by_frame.pop(frame.index, ())
                    if entries:
                        disp = disp.copy()
                        if disp.shape[:2] != (hdr.height, hdr.width):
                            raise TamperError(f"{name}: frame {frame.index} has another size than "
                                              "the payload describes")
                        for e in entries:
                            x0, y0, x1, y1 = e.bbox
                            owned, pix = unpack_region(opener.open(e), y1 - y0, x1 - x0, 3, 8)
                            disp[y0:y1, x0:x1][owned] = pix[owned]
                            restored += 1
                    check = checks.pop(frame.index, None)
                    if check is not None and image_digest(disp) == opener.open(check):
                        exact_frames += 1
                    writer.write(unorient(disp, rot), frame.pts, frame.duration)
                    frames += 1
                    if bar is not None:
                        bar.update(1)
                if by_frame:
                    raise TamperError(f"{name}: the payload describes frame {min(by_frame)}, the video "
                                      f"ends after {frames} frame(s)")
                writer.close()
            except BaseException:
                writer.abort()
                raise
        if bar is not None:
            bar.close()
    finally:
        reader.close()
    verified = verify and frames > 0 and exact_frames == frames
    if verified:
        detail = (f"pixel-exact: all {frames} frames identical to the decoded original (verified "
                  "against their encrypted digests), written as lossless FFV1 RGB")
    else:
        why = ("other tracks stay de-identified" if locked else
               "verification needs the master key" if not opener.master else
               f"{frames - exact_frames} of {frames} frame(s) differ outside the faces: the "
               f"de-identified video is lossy ({info.codec} {info.pix_fmt})")
        detail = ("exact inside the recovered track regions (authenticated; written as lossless FFV1 "
                  f"RGB); outside them the frames are the de-identified video's ({why})")
    return RecoverResult(input=name, output=str(dst), kind="video", method=hdr.method, where=where,
                         faces=payload.face_units, recovered=wanted, locked=locked,
                         exact="pixel-exact" if verified else "regions",
                         verified=verified, detail=detail, payload_bytes=payload.size,
                         seconds=time.perf_counter() - t0,
                         extra={"frames": frames, "entries_restored": restored,
                                "frames_exact": exact_frames if verify else None})


__all__ = ["video_stream_digest", "VideoRecorder", "anonymize_video_reversible", "read_video_payload",
           "open_video_payload", "open_payload_any", "describe_payload", "recover_video"]
