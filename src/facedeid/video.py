"""De-identify every face in a video: decode -> detect + track + paint -> encode.

>>> from facedeid.pipeline import Anonymizer
>>> from facedeid.video import anonymize_video
>>> summary = anonymize_video("in.mp4", "out.mp4", Anonymizer("blur"))   # doctest: +SKIP
>>> summary.frames, summary.tracks, summary.faces_painted                  # doctest: +SKIP

Three stages run at once, joined by bounded queues: a decoder thread (PyAV
releases the GIL while decoding), the caller's thread (detection, tracking,
painting: the :class:`~facedeid.pipeline.Anonymizer` is used from this one
thread only) and an encoder thread (which also remuxes the audio and subtitle
packets). Frames wait ``lookahead`` frames in a buffer so a track found late
can be painted backwards (see :mod:`facedeid.track`). The output is written
under a temporary name in the destination folder and renamed only when
complete: an error or an interrupt never leaves a half-written file under the
final name. See ``docs/VIDEO.md``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import signal
import sys
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import FaceDeidError, InputError, OutputError
from .io.atomic import atomic_output
from .io.video import (
    VideoInfo,
    VideoReader,
    VideoWriter,
    is_stream_source,
    orient,
    output_format,
    resolve_codec,
    unorient,
)
from .track import STATUSES, SceneCutDetector, Tracker, TrackBox

log = logging.getLogger(__name__)

#: Default hold and look-ahead, in seconds of video (converted with the frame rate).
HOLD_SECONDS = 0.5
LOOKAHEAD_SECONDS = 0.5
#: The look-ahead buffer never holds more than this many bytes of frames.
MAX_BUFFER_BYTES = 1 << 30
_FALLBACK_FPS = 25.0
#: The detector video uses when the Anonymizer names none (``facedeid anonymize`` without
#: ``--detector``): YuNet at its recall-first threshold. The image default adds a tiled
#: small-face pass and a CenterFace pass, at 3-10x the cost per frame; in video the
#: tracker (hold, look-ahead, interpolation) covers a face the detector misses for a few
#: frames. Measured in ``benchmarks/bench_video.py`` (docs/VIDEO.md).
VIDEO_DETECTOR = "yunet"
#: Frames whose longer side exceeds this many pixels are detected on a copy scaled down to
#: it (the painted boxes are mapped back to full resolution), unless the Anonymizer has a
#: ``scale`` of its own. 1080p is detected at 960x540: faces of 20+ px stay >= 10 px,
#: YuNet's smallest; pass ``detect_max_side=None`` (CLI ``--scale 1``) for full resolution.
DETECT_MAX_SIDE = 960


@dataclass
class VideoSummary:
    """What :func:`anonymize_video` did (``to_dict()`` is the summary JSON)."""

    src: str
    dst: str
    frames: int = 0
    frames_with_faces: int = 0
    faces_painted: int = 0
    tracks: int = 0
    boxes: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    scene_cuts: list[int] = field(default_factory=list)
    hold: int = 0
    lookahead: int = 0
    expected_frames: int | None = None
    missing_frames: int = 0
    decode_errors: int = 0
    demux_errors: int = 0
    corrupt_frames: int = 0
    timestamp_fixes: int = 0
    synthesized_timestamps: bool = False
    errors: list[str] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    method: dict[str, Any] = field(default_factory=dict)
    detector: dict[str, Any] = field(default_factory=dict)
    metadata_stripped: bool = True
    notes: list[str] = field(default_factory=list)
    audit: str | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def fps(self) -> float:
        """Processing speed (frames per second of wall time)."""
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def complete(self) -> bool:
        """True when the whole source decoded cleanly: no damaged packet or frame, and
        (where the container counts its frames) none missing, e.g. from a truncated file."""
        return not (self.decode_errors or self.demux_errors or self.corrupt_frames
                    or self.missing_frames)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = round(self.fps, 2)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        d["complete"] = self.complete
        return d

    def text(self) -> str:
        s = (f"{self.dst}: {self.frames} frames, {self.tracks} face track(s), "
             f"{self.faces_painted} face region(s) painted in {self.frames_with_faces} frame(s) "
             f"({self.fps:.1f} fps)")
        if not self.complete:
            parts = []
            if self.missing_frames:
                parts.append(f"{self.missing_frames} of {self.expected_frames} frames missing "
                             "(truncated?)")
            if self.decode_errors or self.demux_errors:
                parts.append(f"{self.decode_errors + self.demux_errors} damaged packet(s) skipped")
            if self.corrupt_frames:
                parts.append(f"{self.corrupt_frames} damaged frame(s) kept as decoded")
            s += "; WARNING: " + ", ".join(parts) + "; the output holds every decodable frame"
        return s


def video_detection(anonymizer, width: int, height: int,
                    max_side: int | None = DETECT_MAX_SIDE):
    """The Anonymizer that detects in a ``width x height`` video: ``anonymizer`` itself,
    or a copy using :data:`VIDEO_DETECTOR` (when it names no detector) and/or detecting
    on a copy of the frame scaled to ``max_side`` (when larger, and it has no ``scale``).

    >>> from facedeid.pipeline import Anonymizer
    >>> a = video_detection(Anonymizer("pixelate"), 1920, 1080)
    >>> a.detector_name, a.scale
    ('yunet', 0.5)
    >>> b = Anonymizer(detector="yunet-tiled", scale=1.0)
    >>> video_detection(b, 1920, 1080) is b
    True
    """
    name = getattr(anonymizer, "detector_name", None)
    explicit = getattr(anonymizer, "detector_explicit", True)
    scale = getattr(anonymizer, "scale", 1.0)
    new_name = VIDEO_DETECTOR if not explicit and name != VIDEO_DETECTOR else name
    new_scale = scale
    if scale is None and max_side and max(width, height) > max_side:
        new_scale = round(max_side / max(width, height), 4)
    if (new_name, new_scale) == (name, scale):
        return anonymizer
    import copy

    anon = copy.copy(anonymizer)
    anon.detector_name, anon.scale = new_name, new_scale
    anon._detector = None          # built on first use with the new name and scale
    return anon


def _summary_path(audit_path: Path) -> Path:
    name = audit_path.name
    if name.endswith(".jsonl"):
        name = name[: -len(".jsonl")]
    return audit_path.with_name(name + ".summary.json")


def _frames_for(seconds: float, fps: float | None) -> int:
    return max(1, int(round(seconds * (fps or _FALLBACK_FPS))))


def _paint(anonymizer, image: np.ndarray, faces: list, seed: int):
    """``anonymizer.paint`` with one random generator per track (stable per person).

    In an image, :meth:`Anonymizer.paint` keys each face's generator by its
    position in the list; in video the position changes from frame to frame and
    the track does not, so each face gets ``anonymizer.rng_for(track id, seed)``
    with the video's seed: a stochastic method (noise) paints the same pattern
    on one person in every frame, and different people get different patterns.
    """
    rngs = [anonymizer.rng_for(int(f.face_id) if f.face_id is not None else i, seed)
            for i, f in enumerate(faces)]
    return anonymizer.paint(image, faces, rngs=rngs, stream=True)


# ---------------------------------------------------------------- threads
class _Stop(Exception):
    pass


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event, worker: threading.Thread | None = None):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                raise _Stop from None
            if worker is not None and not worker.is_alive() and q.empty():
                raise RuntimeError("video worker thread ended unexpectedly")
            continue


class _Decoder(threading.Thread):
    def __init__(self, reader: VideoReader, q: queue.Queue, stop: threading.Event,
                 finish: threading.Event):
        super().__init__(name="facedeid-decode", daemon=True)
        self.reader, self.q, self.stop, self.finish = reader, q, stop, finish

    def run(self) -> None:
        try:
            for item in self.reader.items():
                if self.finish.is_set():
                    break
                _put(self.q, item, self.stop)
            _put(self.q, ("end", None), self.stop)
        except _Stop:
            pass
        except BaseException as exc:  # handed to the main thread
            try:
                _put(self.q, ("error", exc), self.stop)
            except _Stop:
                pass


class _Encoder(threading.Thread):
    def __init__(self, writer: VideoWriter, q: queue.Queue, stop: threading.Event):
        super().__init__(name="facedeid-encode", daemon=True)
        self.writer, self.q, self.stop = writer, q, stop
        self.error: BaseException | None = None
        self.closed = False

    def run(self) -> None:
        try:
            while True:
                kind, item = _get(self.q, self.stop)
                if kind == "frame":
                    image, pts, duration = item
                    self.writer.write(image, pts, duration)
                elif kind == "packet":
                    self.writer.write_packet(item)
                elif kind == "end":
                    self.writer.close()
                    self.closed = True
                    return
        except _Stop:
            pass
        except BaseException as exc:
            self.error = exc
            self.stop.set()


# ---------------------------------------------------------------- driver
def anonymize_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    anonymizer,
    *,
    hold: int | None = None,
    lookahead: int | None = None,
    codec: str | None = None,
    crf: int | float | None = None,
    keep_audio: bool = True,
    strip_metadata: bool = True,
    audit_path: str | os.PathLike | None = None,
    progress: bool | Callable[[int, int | None], None] = True,
    preset: str | None = None,
    scene_cuts: bool = True,
    input_format: str | None = None,
    input_options: dict[str, str] | None = None,
    max_frames: int | None = None,
    finish_on_interrupt: bool = False,
    on_frame: Callable[[int, np.ndarray, list[TrackBox]], None] | None = None,
    queue_size: int = 8,
    on_paint: Callable[[int, np.ndarray, np.ndarray, list, list[dict]], None] | None = None,
    pix_fmt: str | None = None,
    detect_max_side: int | None = DETECT_MAX_SIDE,
) -> VideoSummary:
    """De-identify every face of a video file or stream; write a new video.

    Args:
        src: video file, or stream URL / capture device (``file:``, ``rtsp://``,
            ``pipe:``, ``/dev/video0`` with ``input_format="v4l2"``); never seeked.
        dst: output file; its extension picks the container (``.mp4``, ``.mov``,
            ``.mkv``, ``.webm``, ``.avi``, ``.gif``, ``.h264``, ``.h265``, ``.ts``).
        anonymizer: a :class:`~facedeid.pipeline.Anonymizer` (method, detector,
            threshold, scale, shape...); used from the calling thread only. One built
            without a detector name detects with :data:`VIDEO_DETECTOR` here (a copy
            is used; the caller's Anonymizer is not changed).
        hold: frames a face stays painted after its last detection (None: 0.5 s).
        lookahead: frames of look-ahead; a face found late is painted this many
            frames back (None: 0.5 s, capped to keep the buffer under 1 GiB).
        codec: video encoder or alias (``h264``, ``h265``, ``vp9``, ``av1``,
            ``ffv1``, ``gif``...); None: H.264, or the container's only choice.
        crf: encoder quality (None: near-transparent default, CRF 18 for H.264).
        keep_audio: remux audio and subtitle streams unchanged (default); False drops them.
        strip_metadata: write no identifying container/stream tags (title, location,
            device, creation time, comments), no chapters (default True).
        audit_path: write a JSONL record per frame here, and the summary JSON
            beside it (``NAME.summary.json`` for ``NAME.jsonl``).
        progress: show a tqdm bar on stderr (True), nothing (False), or call
            ``progress(frames_done, frames_total_or_None)`` after each frame.
        preset: encoder speed preset (default: ``veryfast`` for H.264).
        scene_cuts: detect hard cuts and restart tracking at each.
        input_format, input_options: demuxer and its options (live sources).
        max_frames: stop after this many frames (live sources).
        finish_on_interrupt: the first Ctrl-C stops reading and finishes the
            output with the frames so far (for cameras); a second one aborts.
            Without it, Ctrl-C aborts and leaves no output file.
        on_frame: called as ``on_frame(index, painted_rgb, boxes)`` for each frame
            before it is encoded (audit or preview hook).
        queue_size: frames held between stages.
        on_paint: called as ``on_paint(index, original_rgb, painted_rgb, faces, records)``
            for every frame (display orientation; ``faces`` as painted, ``records``
            the Anonymizer's per-face records) before it is encoded: the reversible
            mode (:mod:`facedeid.keys.video`) encrypts the original regions here.
        pix_fmt: the encoder's pixel format (None: the source's where the encoder
            takes it); e.g. ``bgr0`` with ``codec="ffv1"`` stores the RGB frames losslessly.
        detect_max_side: detect on a copy scaled so its longer side is at most this
            many pixels (None: full resolution); ignored when the Anonymizer has a
            ``scale`` of its own. See :data:`DETECT_MAX_SIDE`.

    Returns:
        a :class:`VideoSummary`.

    Raises:
        InputError: the source cannot be read, has no video stream, or no frame decodes.
        OutputError: the output cannot be written (bad extension, codec/container mismatch).
        FaceDeidError: other failures (unknown codec...), the file named.
        KeyboardInterrupt: re-raised after cleaning up (no output left behind).
    """
    t0 = time.monotonic()
    src_s = str(src)
    dst_p = Path(dst)
    fmt = output_format(dst_p)
    resolve_codec(codec, fmt)                     # fail on a bad codec before any work
    protect = [] if is_stream_source(src_s) else [src_s]
    if hold is not None and hold < 0 or lookahead is not None and lookahead < 0:
        raise ValueError("hold and lookahead must be >= 0")

    reader = VideoReader(src_s, input_format=input_format, options=input_options,
                         copy_types=("audio", "subtitle") if keep_audio else (),
                         max_frames=max_frames)
    try:
        return _run(reader, src_s, dst_p, fmt, anonymizer, t0=t0, hold=hold, lookahead=lookahead,
                    codec=codec, crf=crf, preset=preset, strip_metadata=strip_metadata,
                    audit_path=Path(audit_path) if audit_path else None, progress=progress,
                    scene_cuts=scene_cuts, finish_on_interrupt=finish_on_interrupt,
                    on_frame=on_frame, queue_size=queue_size, protect=protect,
                    on_paint=on_paint, pix_fmt=pix_fmt, detect_max_side=detect_max_side)
    finally:
        if not getattr(reader, "in_use", False):   # never close under a stuck decoder thread
            reader.close()


def _run(reader: VideoReader, src: str, dst: Path, fmt: str, anonymizer, *, t0, hold, lookahead,
         codec, crf, preset, strip_metadata, audit_path, progress, scene_cuts,
         finish_on_interrupt, on_frame, queue_size, protect, on_paint=None,
         pix_fmt=None, detect_max_side=DETECT_MAX_SIDE) -> VideoSummary:
    first = reader.first_frame()                 # InputError when nothing decodes
    info: VideoInfo = reader.info()
    fps = float(info.rate) if info.rate else None
    rot = info.rotation if info.rotation % 90 == 0 else 0
    disp_w, disp_h = (info.height, info.width) if rot in (90, 270) else (info.width, info.height)
    if hold is None:
        hold = _frames_for(HOLD_SECONDS, fps)
    if lookahead is None:
        lookahead = _frames_for(LOOKAHEAD_SECONDS, fps)
        lookahead = max(0, min(lookahead, MAX_BUFFER_BYTES // max(1, first.image.nbytes) - 2))
    summary = VideoSummary(src=src, dst=str(dst), hold=hold, lookahead=lookahead,
                           metadata_stripped=strip_metadata, audit=str(audit_path) if audit_path else None)
    tracker = Tracker(hold=hold, lookahead=lookahead, size=(disp_w, disp_h))
    cutter = SceneCutDetector() if scene_cuts else None
    seed = anonymizer.seed if getattr(anonymizer, "seed", None) is not None else secrets.randbits(63)
    anonymizer = video_detection(anonymizer, disp_w, disp_h, detect_max_side)

    summary.method = {"name": anonymizer.method.name} if hasattr(anonymizer, "method") else {}
    try:
        summary.detector = anonymizer.detector_config()
    except Exception:
        summary.detector = {"name": getattr(anonymizer, "detector_name", "?")}

    bar = None
    callback = progress if callable(progress) else None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=info.frames, unit="frame", file=sys.stderr, dynamic_ncols=True,
                   desc=Path(src).name[:30] if not is_stream_source(src) else "stream", leave=True)

    stop = threading.Event()      # abort everything
    finish = threading.Event()    # stop reading, finish the file
    old_handler = None
    if finish_on_interrupt and threading.current_thread() is threading.main_thread():
        def _on_sigint(signum, frame):
            if finish.is_set():
                raise KeyboardInterrupt
            finish.set()
            summary.interrupted = True
            print("facedeid: stopping; finishing the output (Ctrl-C again to abort)", file=sys.stderr)
        old_handler = signal.signal(signal.SIGINT, _on_sigint)

    q_in: queue.Queue = queue.Queue(maxsize=queue_size)
    q_out: queue.Queue = queue.Queue(maxsize=queue_size)
    threads: list[threading.Thread] = []
    writer: VideoWriter | None = None
    encoder: _Encoder | None = None
    try:
        with ExitStack() as outputs:
            tmp = outputs.enter_context(atomic_output(dst, protect=protect))
            audit_fh = None
            if audit_path is not None:
                audit_tmp = outputs.enter_context(atomic_output(audit_path, protect=protect))
                audit_fh = outputs.enter_context(open(audit_tmp, "w", encoding="utf-8"))
            try:
                writer = VideoWriter(tmp, info, fmt=fmt, codec=codec, crf=crf, preset=preset,
                                     copy_streams=reader.copy_streams, strip_metadata=strip_metadata,
                                     src_metadata=dict(reader.container.metadata),
                                     chapters=_chapters(reader) if not strip_metadata else None,
                                     stream_infos=info.streams, name=str(dst), pix_fmt=pix_fmt)
                summary.output = {"format": fmt, "codec": writer.codec_name, "pix_fmt": writer.pix_fmt,
                                  "options": writer.options, "width": info.width,
                                  "height": info.height, "rotation": info.rotation}
                decoder = _Decoder(reader, q_in, stop, finish)
                encoder = _Encoder(writer, q_out, stop)
                threads = [decoder, encoder]
                decoder.start()
                encoder.start()
                try:
                    _process(reader, decoder, encoder, q_in, q_out, stop, anonymizer, tracker,
                             cutter, rot, seed, summary, audit_fh, on_frame, bar, callback,
                             info.frames, on_paint=on_paint)
                except _Stop:
                    if encoder.error is not None:       # the encoder failed: say why
                        raise _output_error(encoder.error, dst) from None
                    raise FaceDeidError(f"{dst}: processing stopped") from None
                decoder.join()
                _finish_summary(summary, reader, writer, tracker, info, t0)
            except BaseException:
                stop.set()
                _join(threads)
                if writer is not None and not (encoder is not None and encoder.closed) \
                        and not any(t.is_alive() for t in threads):
                    writer.abort()
                raise
        if audit_path is not None:
            with atomic_output(_summary_path(audit_path), protect=protect) as stmp:
                Path(stmp).write_text(json.dumps(summary.to_dict(), indent=1, default=str),
                                      encoding="utf-8")
        return summary
    finally:
        stop.set()
        _join(threads)
        reader.in_use = any(t.is_alive() for t in threads)
        if bar is not None:
            bar.close()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)


def _is_av_error(exc: BaseException) -> bool:
    try:
        import av

        return isinstance(exc, av.error.FFmpegError)
    except ImportError:  # pragma: no cover
        return False


def _output_error(exc: BaseException, dst) -> BaseException:
    """An encoder/muxer failure as a one-line OutputError naming the file."""
    if isinstance(exc, FaceDeidError) or not (_is_av_error(exc) or isinstance(exc, OSError)):
        return exc
    err = OutputError(f"{dst}: encoding failed: {exc}")
    err.__cause__ = exc
    return err


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        if t.is_alive():
            t.join(timeout=30)


def _process(reader, decoder, encoder, q_in, q_out, stop, anonymizer, tracker, cutter, rot, seed,
             summary: VideoSummary, audit_fh, on_frame, bar, callback, total,
             on_paint=None) -> None:
    """The middle stage: detect, track, paint, and hand frames and packets on in order."""
    buffer: dict[int, tuple[Any, np.ndarray, bool]] = {}
    order: deque = deque()          # ("frame", index) and ("packet", pkt) in demux order
    ready: dict[int, tuple] = {}

    def send(item):
        if encoder.error is not None:
            raise _output_error(encoder.error, summary.dst)
        try:
            _put(q_out, item, stop)
        except _Stop:
            if encoder.error is not None:
                raise _output_error(encoder.error, summary.dst) from None
            raise

    def finalize(k: int, boxes: list[TrackBox]) -> None:
        frame, disp, cut = buffer.pop(k)
        faces = [b.face for b in boxes]
        records: list[dict] = []
        painted = disp
        if faces:
            if getattr(anonymizer, "needs_landmarks68", False):
                faces = anonymizer.add_landmarks(disp, faces)
            painted, records = _paint(anonymizer, disp, faces, seed)
            summary.frames_with_faces += 1
        summary.faces_painted += sum(1 for r in records if r.get("painted", True))
        for b in boxes:
            summary.boxes[b.status] += 1
        if on_paint is not None:
            on_paint(k, disp, painted, faces, records)
        if on_frame is not None:
            on_frame(k, painted, boxes)
        if audit_fh is not None:
            faces_out = []
            for i, b in enumerate(boxes):
                d = b.to_dict()
                d["painted"] = bool(records[i].get("painted", True)) if i < len(records) else False
                faces_out.append(d)
            audit_fh.write(json.dumps({"frame": k, "pts": frame.pts, "time": round(frame.time, 6),
                                       "cut": cut, "faces": faces_out},
                                      separators=(",", ":")) + "\n")
        ready[k] = (unorient(painted, rot), frame.pts, frame.duration)

    def emit() -> None:
        while order:
            kind, x = order[0]
            if kind == "packet":
                send(("packet", x))
            elif x in ready:
                send(("frame", ready.pop(x)))
                summary.frames += 1
                if bar is not None:
                    bar.update(1)
                if callback is not None:
                    callback(summary.frames, total)
            else:
                return
            order.popleft()

    while True:
        kind, item = _get(q_in, stop, decoder)
        if kind == "end":
            break
        if kind == "error":
            if _is_av_error(item):
                raise InputError(f"{summary.src}: read error after {summary.frames} frame(s): "
                                 f"{item}") from item
            raise item
        if kind == "packet":
            order.append(("packet", item))
            if not buffer:
                emit()
            continue
        frame = item
        disp = orient(frame.image, rot)
        frame.image = None                         # the buffer keeps one copy
        cut = bool(cutter(disp)) if cutter is not None else False
        faces = anonymizer.detect(disp)
        buffer[frame.index] = (frame, disp, cut)
        order.append(("frame", frame.index))
        for k, boxes in tracker.update(frame.index, faces, cut=cut):
            finalize(k, boxes)
        emit()
    for k, boxes in tracker.flush():
        finalize(k, boxes)
    emit()
    send(("end", None))
    while encoder.is_alive():
        encoder.join(timeout=0.1)
    if encoder.error is not None:
        raise _output_error(encoder.error, summary.dst)
    if not encoder.closed:
        raise FaceDeidError(f"{summary.dst}: the encoder stopped before finishing")


def _finish_summary(summary: VideoSummary, reader: VideoReader, writer: VideoWriter,
                    tracker: Tracker, info: VideoInfo, t0: float) -> None:
    stats = reader.stats
    summary.decode_errors = stats.decode_errors
    summary.demux_errors = stats.demux_errors
    summary.corrupt_frames = stats.corrupt_frames
    if info.frames_indexed and reader.max_frames is None and not summary.interrupted:
        summary.expected_frames = info.frames_indexed
        summary.missing_frames = max(0, info.frames_indexed - summary.frames)
    summary.timestamp_fixes = stats.timestamp_fixes
    summary.synthesized_timestamps = stats.synthesized_timestamps
    summary.errors = list(stats.errors)
    summary.tracks = tracker.n_tracks
    summary.scene_cuts = list(tracker.cuts)
    summary.notes = list(writer.notes)
    summary.input = info.to_dict()
    summary.output["packets_copied"] = {str(k): v for k, v in writer.packets_copied.items()}
    if writer.packets_transcoded:
        summary.output["packets_transcoded"] = {str(k): v for k, v in writer.packets_transcoded.items()}
    summary.elapsed_s = time.monotonic() - t0
    if not summary.complete:
        log.warning("%s", summary.text())


def _chapters(reader: VideoReader):
    try:
        return reader.container.chapters()
    except Exception:
        return None
