"""Video files and streams through PyAV: decode to RGB frames, encode them back.

:class:`VideoReader` opens a file, a device or a stream URL, picks the video
stream, and yields, **in demux order**, decoded frames (:class:`DecodedFrame`:
RGB ``uint8`` pixels with the frame's own ``pts`` and ``time_base``) and the
packets of the audio and subtitle streams, untouched, for remuxing. It never
seeks, so pipes, FIFOs and network streams work. Packets that fail to decode
are counted (:class:`DecodeStats`) and skipped: every decodable frame comes out.

:class:`VideoWriter` writes frames with the chosen encoder (default H.264,
CRF 18) keeping each frame's time stamp (variable frame rate included), the
resolution (never padded), the display matrix (rotation), the sample aspect
ratio, colour tags and, where the encoder allows, the pixel format; it remuxes
the copied packets unchanged, and writes no identifying metadata unless asked.

Colour: frames are converted YUV -> RGB -> YUV with the same matrix and range
both ways (the source's), so pixels outside painted regions come back within
rounding of the source.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import FaceDeidError, InputError, OutputError

log = logging.getLogger(__name__)

#: Extensions treated as video by the CLI (inputs).
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".gif", ".h264", ".264", ".avc",
    ".h265", ".265", ".hevc", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv",
})

#: Output extension -> FFmpeg muxer.
OUTPUT_FORMATS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".qt": "mov", ".mkv": "matroska",
    ".webm": "webm", ".avi": "avi", ".gif": "gif", ".h264": "h264", ".264": "h264",
    ".avc": "h264", ".h265": "hevc", ".265": "hevc", ".hevc": "hevc", ".ts": "mpegts",
    ".mts": "mpegts", ".m2ts": "mpegts",
}

#: Muxer -> default encoder.
DEFAULT_CODECS = {"webm": "libvpx-vp9", "gif": "gif", "hevc": "libx265"}
DEFAULT_CODEC = "libx264"

CODEC_ALIASES = {
    "h264": "libx264", "x264": "libx264", "avc": "libx264",
    "h265": "libx265", "hevc": "libx265", "x265": "libx265",
    "vp9": "libvpx-vp9", "vp8": "libvpx", "av1": "libsvtav1",
}

#: Per encoder: (option name for quality, default quality, other default options).
ENCODER_SETTINGS: dict[str, tuple[str | None, int | None, dict[str, str]]] = {
    "libx264": ("crf", 18, {"preset": "veryfast"}),
    "libx265": ("crf", 20, {"preset": "fast", "x265-params": "log-level=error"}),
    "libvpx-vp9": ("crf", 31, {"b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}),
    "libvpx": ("crf", 10, {"b": "2M", "deadline": "good", "cpu-used": "4"}),
    "libsvtav1": ("crf", 30, {"preset": "8"}),
    "mpeg4": (None, None, {}),
    "ffv1": (None, None, {}),
    "gif": (None, None, {}),
}

# muxers whose supported_codecs list is complete (they implement FFmpeg's query_codec)
_QUERYABLE_MUXERS = {"mp4", "mov", "matroska", "webm", "gif", "h264", "hevc", "avi"}

# metadata keys that describe the old file's encoding, never copied
_STALE_KEYS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration",
               "rotate", "number_of_frames", "number_of_bytes", "bps", "creation_time_utc"}


def is_video_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has a video extension (see :data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_stream_source(src: str | os.PathLike) -> bool:
    """True for URLs (``rtsp://``, ``file:``, ``pipe:``...) and capture devices (``/dev/video0``)."""
    s = str(src)
    return "://" in s or s.startswith(("file:", "pipe:")) or s.startswith("/dev/video")


def output_format(path: str | os.PathLike) -> str:
    """The FFmpeg muxer for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    try:
        return OUTPUT_FORMATS[ext]
    except KeyError:
        raise OutputError(
            f"{path}: unsupported video output extension '{ext or '(none)'}'; use one of: "
            + ", ".join(sorted(OUTPUT_FORMATS))) from None


def resolve_codec(codec: str | None, fmt: str) -> str:
    """The encoder name for ``codec`` (aliases allowed) or the muxer's default."""
    import av

    name = CODEC_ALIASES.get((codec or "").lower(), codec) if codec else DEFAULT_CODECS.get(fmt, DEFAULT_CODEC)
    try:
        av.Codec(name, "w")
    except Exception:
        raise FaceDeidError(f"unknown or unavailable video encoder '{codec or name}'") from None
    return name


# ---------------------------------------------------------------- colour helpers
# AVColorSpace -> swscale colour matrix (SWS_CS_*); unknown -> swscale default (BT.601)
_SWS_CS = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def _sws_colorspace(colorspace: int | None) -> int | None:
    return _SWS_CS.get(int(colorspace)) if colorspace is not None else None


def _range(color_range: int | None) -> int | None:
    return int(color_range) if color_range in (1, 2) else None


def _full_range_format(pix_fmt: str) -> bool:
    return pix_fmt.startswith("yuvj")


@dataclass(frozen=True)
class ColorInfo:
    """Colour tags of the source, used for both conversions and copied to the output."""

    colorspace: int = 2          # AVCOL_SPC_UNSPECIFIED
    color_range: int = 0         # AVCOL_RANGE_UNSPECIFIED
    color_primaries: int = 2
    color_trc: int = 2

    @classmethod
    def of(cls, frame) -> "ColorInfo":
        def val(name, default):
            try:
                return int(getattr(frame, name))
            except Exception:
                return default
        return cls(val("colorspace", 2), val("color_range", 0), val("color_primaries", 2),
                   val("color_trc", 2))


# ---------------------------------------------------------------- reading
@dataclass
class DecodedFrame:
    """One decoded video frame.

    Attributes:
        index: 0-based position among decoded frames.
        pts: presentation time stamp in ``time_base`` units (synthesized from the
            frame rate when the source has none, e.g. raw ``.h264``).
        time_base: seconds per ``pts`` unit.
        duration: display duration in ``time_base`` units (None if unknown).
        image: ``H x W x 3`` RGB ``uint8`` pixels as stored (before rotation).
        key_frame: decoder's key-frame flag.
        corrupt: the decoder flagged the frame as damaged (concealed errors).
    """

    index: int
    pts: int
    time_base: Fraction
    duration: int | None
    image: np.ndarray
    key_frame: bool = False
    corrupt: bool = False

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


@dataclass
class DecodeStats:
    frames: int = 0
    decode_errors: int = 0
    demux_errors: int = 0
    corrupt_frames: int = 0
    timestamp_fixes: int = 0
    synthesized_timestamps: bool = False
    errors: list[str] = field(default_factory=list)   # first few messages

    def note(self, kind: str, exc: BaseException) -> None:
        if len(self.errors) < 10:
            self.errors.append(f"{kind}: {exc}")


@dataclass
class StreamInfo:
    index: int
    type: str
    codec: str
    action: str = ""     # processed / copied / transcoded / dropped (reason)


@dataclass
class VideoInfo:
    """What :class:`VideoReader` found in the source."""

    source: str
    format: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    rate: Fraction | None
    time_base: Fraction
    frames: int | None           # container's count or duration x rate (None: unknown / live)
    duration: float | None       # seconds
    frames_indexed: int | None = None   # the container's exact count, where it has one
    rotation: int = 0            # display rotation, degrees counter-clockwise
    display_matrix: tuple[int, ...] | None = None
    sample_aspect_ratio: Fraction | None = None
    color: ColorInfo = field(default_factory=ColorInfo)
    streams: list[StreamInfo] = field(default_factory=list)
    metadata_keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "codec": self.codec, "width": self.width, "height": self.height,
            "pix_fmt": self.pix_fmt, "fps": float(self.rate) if self.rate else None,
            "time_base": str(self.time_base), "frames": self.frames,
            "frames_indexed": self.frames_indexed, "duration": self.duration,
            "rotation": self.rotation,
            "streams": [{"index": s.index, "type": s.type, "codec": s.codec, "action": s.action}
                        for s in self.streams],
            "metadata_keys": self.metadata_keys,
        }


def _av_errors():
    import av

    return (av.error.FFmpegError, OSError, ValueError)


class VideoReader:
    """Open a video source and iterate its frames and copyable packets.

    Args:
        src: a file path, ``file:``/``pipe:``/network URL, or capture device.
        input_format: force the demuxer (e.g. ``v4l2`` for a webcam).
        options: demuxer options (e.g. ``{"framerate": "30"}``).
        copy_types: stream types whose packets are yielded for remuxing.
        max_frames: stop after this many frames (live sources).

    Raises:
        InputError: missing, empty, unreadable, no video stream, unsupported codec.
    """

    def __init__(self, src: str | os.PathLike, *, input_format: str | None = None,
                 options: dict[str, str] | None = None,
                 copy_types: tuple[str, ...] = ("audio", "subtitle"),
                 max_frames: int | None = None):
        import av

        self.src = str(src)
        self.stats = DecodeStats()
        self.max_frames = max_frames
        if input_format is None and self.src.startswith("/dev/video"):
            input_format = "v4l2"
        if input_format is not None and input_format not in av.formats_available:
            hint = (" (this PyAV build has no camera input; pipe one in instead, e.g. "
                    "`ffmpeg -f v4l2 -i /dev/video0 -c:v mjpeg -f matroska - | facedeid ... pipe:0`)"
                    if input_format in ("v4l2", "video4linux2", "avfoundation", "dshow") else "")
            raise InputError(f"{src}: input format '{input_format}' is not available{hint}")
        live = is_stream_source(src) or input_format is not None
        if not live:
            p = Path(src)
            if not p.exists():
                raise InputError(f"{src}: no such file")
            if p.is_dir():
                raise InputError(f"{src}: is a folder, not a video file")
            if p.stat().st_size == 0:
                raise InputError(f"{src}: empty file (0 bytes)")
        try:
            self.container = av.open(self.src, "r", format=input_format, options=options or {},
                                     metadata_errors="ignore")
        except av.error.FileNotFoundError:
            raise InputError(f"{src}: no such file or stream") from None
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{src}: not a readable video ({_short(exc)})") from None
        try:
            self._setup(copy_types)
        except BaseException:
            self.container.close()
            raise

    def _setup(self, copy_types: tuple[str, ...]) -> None:
        import av

        c = self.container
        videos = [s for s in c.streams.video
                  if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not videos:
            kinds = sorted({s.type for s in c.streams}) or ["no streams"]
            raise InputError(f"{self.src}: no video stream (found: {', '.join(kinds)})")
        vs = videos[0]
        cc = vs.codec_context
        if cc is None or not getattr(cc, "name", None):
            raise InputError(f"{self.src}: unsupported video codec (FFmpeg has no decoder for it)")
        try:
            av.Codec(cc.name, "r")
        except Exception:
            raise InputError(f"{self.src}: unsupported video codec '{cc.name}'") from None
        self.video = vs
        vs.thread_type = "AUTO"
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        if rate is not None and (rate <= 0 or rate > 1000):
            rate = None
        self.rate: Fraction | None = Fraction(rate) if rate else None
        self.streams: list[StreamInfo] = []
        self.copy_streams = []
        for s in c.streams:
            codec = getattr(s, "codec", None)          # attachment streams have none
            name = s.codec_context.name if s.codec_context is not None else (codec.name if codec else "?")
            info = StreamInfo(s.index, s.type, name or "?")
            if s is vs:
                info.action = "processed"
            elif s.type == "video":
                info.action = "dropped (other video stream: not de-identified)"
            elif s.type in copy_types:
                info.action = "copied"
                self.copy_streams.append(s)
            elif s.type in ("audio", "subtitle"):
                info.action = "dropped (not kept)"
            else:
                info.action = f"dropped ({s.type} stream)"
            self.streams.append(info)
        frames = vs.frames or None
        self.frames_indexed = frames      # the container's own count (mp4/mov index), exact
        duration = None
        if vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif c.duration:
            duration = c.duration / 1e6
        if frames is None and duration and self.rate:
            frames = int(round(duration * self.rate))
        self._frames_estimate = frames
        self._duration = duration
        self._iter = self._items()
        self._first: DecodedFrame | None = None
        self._first_raw = None
        self._pending: list[tuple[str, Any]] = []

    # iteration ---------------------------------------------------------------
    def _demux(self):
        return self.container.demux([self.video] + self.copy_streams)

    def _items(self) -> Iterator[tuple[str, Any]]:
        import av

        errors = _av_errors()
        demux = self._demux()
        consecutive = 0
        while True:
            try:
                pkt = next(demux)
                consecutive = 0
            except StopIteration:
                break
            except av.error.EOFError:
                break
            except errors as exc:
                self.stats.demux_errors += 1
                self.stats.note("demux", exc)
                consecutive += 1
                if consecutive > 50:
                    break
                demux = self._demux()
                continue
            if pkt.stream is self.video:
                yield from self._decode(pkt)
                if self.max_frames is not None and self.stats.frames >= self.max_frames:
                    return
            elif pkt.size:
                yield "packet", pkt
        yield from self._decode(None)

    def _decode(self, pkt) -> Iterator[tuple[str, Any]]:
        import av

        try:
            frames = self.video.decode(pkt)
        except av.error.EOFError:       # decoder already flushed
            return
        except _av_errors() as exc:
            self.stats.decode_errors += 1
            self.stats.note("decode", exc)
            return
        for fr in frames:
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                return
            yield "frame", self._convert(fr)

    def _convert(self, fr) -> DecodedFrame:
        st = self.stats
        index = st.frames
        st.frames += 1
        if index == 0:
            self._first_raw = fr
            self.color = ColorInfo.of(fr)
            self.display_matrix = _display_matrix(fr)
            self.rotation = _rotation(fr)
            self.pix_fmt = fr.format.name
            self.width, self.height = fr.width, fr.height
            if fr.pts is None:
                # raw streams: the demuxer's rate is a guess (25); the bitstream's timing wins
                st.synthesized_timestamps = True
                for cand in (self.video.codec_context.framerate, self.video.guessed_rate, self.rate):
                    if cand and 0 < cand <= 1000:
                        self.rate = Fraction(cand)
                        break
                rate = self.rate or Fraction(25)
                self.time_base = Fraction(rate.denominator, rate.numerator)
            else:
                self.time_base = Fraction(fr.time_base or self.video.time_base)
            self._nominal = self._nominal_duration()
            self._last_pts = None
        tb = self.time_base
        dur = self._nominal
        if st.synthesized_timestamps:
            pts = index
        else:
            pts = fr.pts
            if fr.duration and fr.time_base:
                d = Fraction(fr.duration) * Fraction(fr.time_base) / tb
                if d.denominator == 1 and d > 0:
                    dur = int(d)
            if pts is not None and fr.time_base is not None and Fraction(fr.time_base) != tb:
                pts = int(round(Fraction(pts) * Fraction(fr.time_base) / tb))
            if pts is None:
                pts = (self._last_pts + (dur or 1)) if self._last_pts is not None else 0
                st.timestamp_fixes += 1
            elif self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1
                st.timestamp_fixes += 1
        self._last_pts = pts
        if getattr(fr, "is_corrupt", False):
            st.corrupt_frames += 1
        image = _to_rgb(fr, self.color)
        if (fr.width, fr.height) != (self.width, self.height):
            import cv2

            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
            msg = f"frame {index} is {fr.width}x{fr.height}; scaled to {self.width}x{self.height}"
            st.note("resize", ValueError(msg))
            log.warning("%s: %s", self.src, msg)
        return DecodedFrame(index=index, pts=int(pts), time_base=tb, duration=dur, image=image,
                            key_frame=bool(fr.key_frame), corrupt=bool(getattr(fr, "is_corrupt", False)))

    def _nominal_duration(self) -> int | None:
        if self.rate:
            d = 1 / (self.rate * self.time_base)
            return max(1, int(round(d)))
        return None

    def first_frame(self) -> DecodedFrame:
        """Decode up to the first frame (packets before it are kept for :meth:`items`).

        Raises:
            InputError: the source holds no decodable video frame.
        """
        if self._first is None:
            for kind, item in self._iter:
                self._pending.append((kind, item))
                if kind == "frame":
                    self._first = item
                    break
            else:
                detail = f" ({self.stats.decode_errors} decode errors: {self.stats.errors[0]})" \
                    if self.stats.errors else ""
                raise InputError(f"{self.src}: no decodable video frame{detail}")
        return self._first

    def items(self) -> Iterator[tuple[str, Any]]:
        """``("frame", DecodedFrame)`` and ``("packet", av.Packet)`` in demux order."""
        self.first_frame()
        pending, self._pending = self._pending, []
        yield from pending
        yield from self._iter

    def info(self) -> VideoInfo:
        first = self.first_frame()
        c = self.container
        return VideoInfo(
            source=self.src, format=c.format.name, codec=self.video.codec_context.name,
            width=self.width, height=self.height, pix_fmt=self.pix_fmt, rate=self.rate,
            time_base=first.time_base, frames=self._frames_estimate, duration=self._duration,
            frames_indexed=self.frames_indexed,
            rotation=self.rotation, display_matrix=self.display_matrix,
            sample_aspect_ratio=_sar(self.video), color=self.color, streams=self.streams,
            metadata_keys=sorted(c.metadata.keys()),
        )

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # pragma: no cover - closing a broken container
            pass

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _to_rgb(fr, color: ColorInfo) -> np.ndarray:
    if fr.format.name == "rgb24":
        return fr.to_ndarray()
    kwargs = {}
    if fr.format.name.startswith(("yuv", "nv", "p0", "p2")):
        cs = _sws_colorspace(color.colorspace)
        if cs is not None:
            kwargs["src_colorspace"] = cs
        rng = 2 if _full_range_format(fr.format.name) else _range(color.color_range)
        if rng is not None:
            kwargs["src_color_range"] = rng
    return fr.reformat(format="rgb24", **kwargs).to_ndarray()


def _display_matrix(fr) -> tuple[int, ...] | None:
    try:
        import av

        sd = fr.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX) if hasattr(fr.side_data, "get") else None
        if sd is None:
            for item in fr.side_data:
                if "DISPLAYMATRIX" in str(item.type):
                    sd = item
                    break
        if sd is None:
            return None
        raw = bytes(sd)
        if len(raw) < 36:
            return None
        matrix = struct.unpack("<9i", raw[:36])
        identity = (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
        return None if matrix == identity else matrix
    except Exception:  # no side data support: treat as unrotated
        return None


def _rotation(fr) -> int:
    try:
        rot = int(round(float(fr.rotation)))
    except Exception:
        return 0
    return rot % 360


def _sar(stream) -> Fraction | None:
    try:
        sar = stream.codec_context.sample_aspect_ratio
        return Fraction(sar) if sar and sar != 1 and sar > 0 else None
    except Exception:
        return None


def orient(image: np.ndarray, rotation: int) -> np.ndarray:
    """Stored frame -> display orientation (``rotation``: degrees counter-clockwise)."""
    k = (rotation // 90) % 4 if rotation % 90 == 0 else 0
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def unorient(image: np.ndarray, rotation: int) -> np.ndarray:
    """Inverse of :func:`orient`."""
    k = (rotation // 90) % 4 if rotation % 90 == 0 else 0
    return np.ascontiguousarray(np.rot90(image, -k)) if k else image


# ---------------------------------------------------------------- writing
def _choose_pix_fmt(codec, src_fmt: str, width: int, height: int) -> str:
    formats = [f.name for f in (codec.video_formats or [])]
    if not formats:
        return src_fmt if src_fmt else "yuv420p"
    odd = width % 2 or height % 2
    subsampled = ("420", "422", "411", "410", "nv12", "nv21", "nv16")
    if src_fmt in formats and not (odd and any(s in src_fmt for s in subsampled)):
        return src_fmt
    if odd:
        for f in ("yuv444p", "gbrp", "yuva444p", "bgr0", "bgra"):
            if f in formats:
                return f
    if "yuv420p" in formats:
        return "yuv420p"
    return formats[0]


def _copy_metadata(src: dict, dst) -> None:
    for key, value in src.items():
        low = key.lower()
        if low in _STALE_KEYS or low.startswith(("_statistics", "bps", "number_of", "duration")):
            continue
        try:
            dst[key] = value
        except Exception:  # a value the muxer refuses
            pass


class VideoWriter:
    """Encode RGB frames into a new file, remuxing copied streams.

    Args:
        path: file to write (typically the temporary path of an atomic output).
        info: the source's :class:`VideoInfo` (size, rate, time base, colour, rotation).
        fmt: FFmpeg muxer name (see :func:`output_format`).
        codec: encoder name or alias; None for the muxer's default.
        crf: quality (encoder-specific scale; None for the default).
        preset: encoder speed preset (None for the default).
        copy_streams: input streams whose packets will be remuxed (or transcoded
            when the container cannot hold their codec; dropped when impossible).
        strip_metadata: write no title/location/device/date/comment tags (default).
        src_metadata: the source container's metadata (copied when not stripping).
        chapters: the source's chapters (copied when not stripping).
        stream_infos: the reader's stream list, updated with what happens to each.
        name: the file name error messages give (the final name, not the temporary one).
        pix_fmt: the encoder's pixel format (None: the source's, where the encoder takes it).
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo, *, fmt: str,
                 codec: str | None = None, crf: int | float | None = None,
                 preset: str | None = None, copy_streams=(), strip_metadata: bool = True,
                 src_metadata: dict | None = None, chapters=None,
                 stream_infos: list[StreamInfo] | None = None, name: str | None = None,
                 pix_fmt: str | None = None):
        import av

        self.path = str(path)
        self.name = name or self.path       # the file name errors mention
        self.info = info
        self.fmt = fmt
        self.codec_name = resolve_codec(codec, fmt)
        self.frames = 0
        self.packets_copied: dict[int, int] = {}
        self.packets_transcoded: dict[int, int] = {}
        self.notes: list[str] = []
        self._want_pix_fmt = pix_fmt
        try:
            self.container = av.open(self.path, "w", format=fmt)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise OutputError(f"{self.name}: cannot open for writing ({_short(exc)})") from None
        try:
            self._setup(crf, preset, copy_streams, strip_metadata, src_metadata, chapters,
                        {s.index: s for s in (stream_infos or [])})
        except BaseException:
            self._abort()
            raise

    def _setup(self, crf, preset, copy_streams, strip_metadata, src_metadata, chapters, infos):
        import av

        out, info = self.container, self.info
        codec = av.Codec(self.codec_name, "w")
        # only muxers that answer codec queries list what they hold (mpegts lists nothing useful)
        supported = out.supported_codecs if self.fmt in _QUERYABLE_MUXERS else set()
        if supported and codec.canonical_name not in supported and self.codec_name not in supported:
            raise OutputError(f"{self.name}: the '{self.fmt}' container cannot hold "
                              f"{codec.canonical_name} video (codec '{self.codec_name}')")
        rate = info.rate if info.rate else None
        options = dict(ENCODER_SETTINGS.get(self.codec_name, (None, None, {}))[2])
        qname, qdefault, _ = ENCODER_SETTINGS.get(self.codec_name, (None, None, {}))
        if qname and (crf is not None or qdefault is not None):
            options[qname] = str(crf if crf is not None else qdefault)
        elif crf is not None:
            self.notes.append(f"encoder {self.codec_name} has no CRF setting; crf ignored")
        if preset is not None:
            options["preset" if self.codec_name != "libvpx-vp9" else "deadline"] = str(preset)
        self.options = dict(options)
        vs = out.add_stream(self.codec_name, rate=rate, options=options)
        vs.width, vs.height = info.width, info.height
        self.gif = self.codec_name == "gif"
        want = self._want_pix_fmt
        if want and not self.gif and codec.video_formats and \
                want not in [f.name for f in codec.video_formats]:
            raise OutputError(f"{self.name}: encoder {self.codec_name} cannot store pixel format {want}")
        self.pix_fmt = "pal8" if self.gif else (want or _choose_pix_fmt(codec, info.pix_fmt, info.width,
                                                                         info.height))
        vs.pix_fmt = self.pix_fmt
        tb = info.time_base
        vs.codec_context.time_base = tb
        vs.time_base = tb
        if self.codec_name == "mpeg4":
            fps = float(rate) if rate else 25.0
            vs.codec_context.bit_rate = int(info.width * info.height * fps * 0.25)
            if tb.denominator > 65535:
                raise OutputError(f"{self.name}: mpeg4 cannot use time base {tb}; choose another codec")
        if info.sample_aspect_ratio:
            try:
                vs.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
            except Exception:
                pass
        col = info.color
        self._dst_cs = _sws_colorspace(col.colorspace)
        self._dst_range = 2 if _full_range_format(self.pix_fmt) else _range(col.color_range)
        if not self.gif:
            unspecified = {"colorspace": 2, "color_range": 0, "color_primaries": 2, "color_trc": 2}
            for name, none in unspecified.items():
                value = getattr(col, name)
                if value != none:
                    try:
                        setattr(vs.codec_context, name, value)
                    except Exception:
                        pass
        if info.display_matrix is not None:
            try:
                vs.set_display_matrix(list(info.display_matrix))
            except Exception as exc:  # pragma: no cover - old PyAV
                self.notes.append(f"rotation not written: {exc}")
        self.video = vs
        # copied streams
        self._map: dict[int, Any] = {}
        self._gap_fillers: set[int] = set()
        self._transcode: dict[int, tuple[Any, Any]] = {}
        for s in copy_streams:
            sinfo = infos.get(s.index)
            name = s.codec_context.name if s.codec_context is not None else "?"
            if self.gif or (supported and name not in supported and s.type == "subtitle"):
                why = "GIF holds no other streams" if self.gif else \
                    f"the '{self.fmt}' container cannot hold {name} subtitles"
                self.notes.append(f"stream {s.index} ({s.type} {name}) dropped: {why}")
                if sinfo:
                    sinfo.action = f"dropped ({why})"
                continue
            if self.fmt in ("h264", "hevc"):
                self.notes.append(f"stream {s.index} ({s.type}) dropped: raw video output")
                if sinfo:
                    sinfo.action = "dropped (raw video output)"
                continue
            if supported and name not in supported and s.type == "audio":
                target = out.default_audio_codec
                try:
                    rate = s.codec_context.sample_rate
                    rates = av.Codec(target, "w").audio_rates
                    if rates and rate not in rates:
                        rate = 48000 if 48000 in rates else max(rates)
                    ost = out.add_stream(target, rate=rate)
                    layout = s.codec_context.layout
                    if layout is not None:
                        ost.layout = layout
                    self._transcode[s.index] = (s, ost)
                    self.packets_transcoded[s.index] = 0
                    self.notes.append(f"stream {s.index} (audio {name}) re-encoded to {target}: "
                                      f"the '{self.fmt}' container cannot hold {name}")
                    if sinfo:
                        sinfo.action = f"transcoded to {target}"
                    self._stream_meta(s, ost, strip_metadata)
                except Exception as exc:
                    self.notes.append(f"stream {s.index} (audio {name}) dropped: {_short(exc)}")
                    if sinfo:
                        sinfo.action = "dropped (cannot re-encode)"
                continue
            try:
                ost = out.add_stream_from_template(s)
            except Exception as exc:
                self.notes.append(f"stream {s.index} ({s.type} {name}) dropped: {_short(exc)}")
                if sinfo:
                    sinfo.action = f"dropped ({_short(exc)})"
                continue
            self._stream_meta(s, ost, strip_metadata)
            self._map[s.index] = ost
            self.packets_copied[s.index] = 0
            if name == "mov_text" and self.fmt in ("mp4", "mov"):
                self._gap_fillers.add(s.index)
        if not strip_metadata:
            _copy_metadata(src_metadata or {}, out.metadata)
            if chapters:
                try:
                    out.set_chapters(chapters)
                except Exception:
                    pass
        self._gif_palette_cache = None

    @staticmethod
    def _stream_meta(src, dst, strip: bool) -> None:
        try:
            dst.disposition = src.disposition
        except Exception:
            pass
        if strip:
            lang = src.metadata.get("language")
            if lang:
                dst.metadata["language"] = lang
        else:
            _copy_metadata(dict(src.metadata), dst.metadata)

    # frames --------------------------------------------------------------------
    def _make_frame(self, image: np.ndarray):
        import av

        if self.gif:
            return _pal8_frame(image)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        # area-averaged chroma: RGB from a decoded frame goes back to (nearly) the same YUV
        # (max error 2 levels on a high-contrast texture; the default bilinear gives 8)
        kwargs: dict[str, Any] = {"interpolation": _ENCODE_SWS_FLAGS}
        if self._dst_cs is not None:
            kwargs["dst_colorspace"] = self._dst_cs
        if self._dst_range is not None:
            kwargs["dst_color_range"] = self._dst_range
        return vf.reformat(format=self.pix_fmt, **kwargs)

    def write(self, image: np.ndarray, pts: int, duration: int | None = None) -> None:
        """Encode one RGB frame at ``pts`` (in the source's time base)."""
        h, w = image.shape[:2]
        if (w, h) != (self.info.width, self.info.height):
            raise ValueError(f"frame is {w}x{h}, output is {self.info.width}x{self.info.height}")
        vf = self._make_frame(image)
        vf.pts = int(pts)
        vf.time_base = self.info.time_base
        if duration:
            try:
                vf.duration = int(duration)
            except Exception:
                pass
        self.container.mux(self.video.encode(vf))
        self.frames += 1

    def write_packet(self, pkt) -> None:
        """Remux (or transcode) a packet of a copied stream; others are ignored."""
        idx = pkt.stream.index
        ost = self._map.get(idx)
        if ost is not None:
            if pkt.dts is None and pkt.pts is None:
                return
            if idx in self._gap_fillers and bytes(pkt) == b"\x00\x00":
                return          # an empty mov_text sample: the muxer writes its own gap fillers
            pkt.stream = ost
            self.container.mux(pkt)
            self.packets_copied[idx] += 1
            return
        pair = self._transcode.get(idx)
        if pair is not None:
            ist, ost = pair
            for frame in ist.decode(pkt):
                self.container.mux(ost.encode(frame))
            self.packets_transcoded[idx] += 1

    def close(self) -> None:
        """Flush encoders and finish the file."""
        self.container.mux(self.video.encode(None))
        for ist, ost in self._transcode.values():
            try:
                for frame in ist.decode(None):
                    self.container.mux(ost.encode(frame))
            except Exception:
                pass
            self.container.mux(ost.encode(None))
        self.container.close()

    def _abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass

    abort = _abort


def _encode_flags() -> int:
    from av.video.reformatter import Interpolation

    return int(Interpolation.AREA | Interpolation.FULL_CHR_H_INP)


try:
    _ENCODE_SWS_FLAGS = _encode_flags()
except Exception:  # pragma: no cover - PyAV without these names
    _ENCODE_SWS_FLAGS = None


def _pal8_frame(image: np.ndarray):
    """An 8-bit palette frame for the GIF encoder (median-cut palette per frame, no dither:
    GIF sources, which already have <= 256 colours per frame, come back exactly)."""
    import av
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image[..., :3])).quantize(
        256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    idx = np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    pal = np.asarray(im.getpalette()[:768], dtype=np.uint8).reshape(-1, 3)
    table = np.zeros((256, 4), dtype=np.uint8)
    # PyAV's pal8 palette array is laid out A, R, G, B per entry (checked by the tests)
    table[:, 0] = 255
    table[: len(pal), 1:] = pal
    return av.VideoFrame.from_ndarray((idx, table), format="pal8")
