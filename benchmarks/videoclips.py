"""Clips for the video benchmark, made at bench time with PyAV (never committed).

* :func:`upscale_clip`: a clip resized to another resolution (e.g. the 640x360
  ``short_hamilton_clip.mp4`` as 720p and 1080p), every frame keeping its time
  stamp, audio packets copied unchanged.
* :func:`repeat_clip`: a clip's video packets remuxed ``n`` times one after the
  other (no re-encoding): the same content, ``n`` times as long.
* :func:`probe`: frames, size, rate, time stamps and streams of a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any



def upscale_clip(src: Path, dst: Path, width: int, height: int, *, crf: int = 16,
                 preset: str = "veryfast") -> Path:
    """Write ``src`` resized to ``width x height`` (bicubic) as H.264 in MP4, audio copied.

    Time stamps (and so the frame rate, start offset and duration) are the source's.
    Written to a temporary name and renamed, so a half-made clip is never reused.
    """
    import av
    import cv2

    tmp = dst.with_name(dst.stem + ".part" + dst.suffix)
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        ivs = inp.streams.video[0]
        ias = inp.streams.audio[0] if inp.streams.audio else None
        ovs = out.add_stream("libx264", rate=ivs.average_rate,
                             options={"crf": str(crf), "preset": preset})
        ovs.width, ovs.height, ovs.pix_fmt = width, height, "yuv420p"
        ovs.codec_context.time_base = ivs.time_base
        ovs.time_base = ivs.time_base
        oas = out.add_stream_from_template(ias) if ias is not None else None
        streams = [ivs] + ([ias] if ias is not None else [])
        for pkt in inp.demux(streams):
            if pkt.stream is ivs:
                for fr in pkt.decode():
                    rgb = fr.to_ndarray(format="rgb24")
                    big = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
                    vf = av.VideoFrame.from_ndarray(big, format="rgb24").reformat(format="yuv420p")
                    vf.pts, vf.time_base = fr.pts, fr.time_base
                    out.mux(ovs.encode(vf))
            elif oas is not None and pkt.dts is not None:
                pkt.stream = oas
                out.mux(pkt)
        out.mux(ovs.encode(None))      # (demux's final empty packet flushed the decoder)
    tmp.replace(dst)
    return dst


def repeat_clip(src: Path, dst: Path, n: int) -> Path:
    """Remux the video packets of ``src`` ``n`` times in a row (time stamps shifted), no audio.

    The source must start with a key frame and hold no frame referencing across
    its end (true of any closed-GOP encode such as :func:`upscale_clip`'s).
    """
    import av

    tmp = dst.with_name(dst.stem + ".part" + dst.suffix)
    with av.open(str(src)) as inp:
        ivs = inp.streams.video[0]
        pkts = [(p.pts, p.dts, p.duration, p.is_keyframe, bytes(p)) for p in inp.demux(ivs) if p.size]
        tb = ivs.time_base
        with av.open(str(tmp), "w", format="mp4") as out:
            ovs = out.add_stream_from_template(ivs)
            first = min(p[0] for p in pkts)
            last = max(p[0] + (p[2] or 0) for p in pkts)
            span = last - first
            for k in range(n):
                for pts, dts, dur, key, data in pkts:
                    q = av.Packet(data)
                    q.pts, q.dts = pts + k * span, dts + k * span
                    q.duration = dur
                    q.is_keyframe = key
                    q.time_base = tb
                    q.stream = ovs
                    out.mux(q)
    tmp.replace(dst)
    return dst


def probe(path: Path) -> dict[str, Any]:
    """What a file holds: video frames (count, first/last time), size, rate, streams."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times = []
        for fr in c.decode(vs):
            times.append(float(fr.pts * fr.time_base) if fr.pts is not None else None)
        w, h = vs.codec_context.width, vs.codec_context.height
        rate = vs.average_rate or vs.guessed_rate
        streams = [s.type for s in c.streams]
    known = [t for t in times if t is not None]
    return {"frames": len(times), "width": w, "height": h,
            "fps": round(float(rate), 3) if rate else None,
            "start_s": round(min(known), 4) if known else None,
            "end_s": round(max(known), 4) if known else None,
            "streams": streams}


def audio_packets(path: Path) -> list[tuple[float | None, bytes]] | None:
    """(time, payload) of every packet of the first audio stream; None without audio."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        st = c.streams.audio[0]
        tb = st.time_base
        return [(float(p.pts * tb) if p.pts is not None else None, bytes(p))
                for p in c.demux(st) if p.size]


def audio_identical(src: Path, dst: Path) -> dict[str, Any]:
    """Compare the audio packets of two files byte for byte (and their times, to 1 ms)."""
    a, b = audio_packets(src), audio_packets(dst)
    if a is None:
        return {"source_has_audio": False}
    if b is None:
        return {"source_has_audio": True, "output_has_audio": False, "identical": False}
    same_bytes = len(a) == len(b) and all(x[1] == y[1] for x, y in zip(a, b))
    offsets = sorted({round((y[0] or 0) - (x[0] or 0), 3) for x, y in zip(a, b)})
    return {"source_has_audio": True, "output_has_audio": True, "packets_in": len(a),
            "packets_out": len(b), "payloads_identical": same_bytes,
            "time_offsets_s": offsets[:5], "identical": same_bytes and offsets == [0.0]}


__all__ = ["upscale_clip", "repeat_clip", "probe", "audio_packets", "audio_identical"]
