"""The exposure judge of the video benchmark (issue 4).

A judge is a detector run at the frame's full resolution with a low threshold
(default: YuNet at score 0.5, the issue's own measurement). For each input frame
it finds the faces; the output frame shown at the same time is compared with the
input inside each face box: a face whose box has grayscale SSIM >= 0.9 to the
original is **exposed** (left as it was), anything lower was painted.

Frames are matched by time stamp, never by position: a tool that adds frames
(deface repeats the first frame to start its output at 0 s) or shifts the
timeline is compared frame by frame with what it shows at each input time.
Among the output frames within 1.5 frame durations of the input frame's time,
the one whose thumbnail is closest to the input frame is taken (this resolves a
half-frame offset in favour of the tool). An output of another size (deface
writes 640x368 for 640x360) is resized back to the input size before comparing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

EXPOSED_SSIM = 0.9


@dataclass
class Frame:
    time: float
    rgb: np.ndarray


def frames(path: Path) -> Iterator[Frame]:
    """Decoded RGB frames of the first video stream, with their times (seconds).

    Frames without a time stamp (raw streams) are timed by the stream's rate.
    """
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        rate = vs.average_rate or vs.guessed_rate or 25
        for i, fr in enumerate(c.decode(vs)):
            t = float(fr.pts * fr.time_base) if fr.pts is not None else i / float(rate)
            yield Frame(t, fr.to_ndarray(format="rgb24"))


def make_judge(spec: str):
    """``"yunet@0.5"`` / ``"yunet+centerface@0.5"``: (name, detector at full resolution)."""
    from facedeid.detect import get_detector

    name, _, thr = spec.partition("@")
    return spec, get_detector(name, threshold=float(thr) if thr else None)


def judge_input(path: Path, spec: str, cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Per input frame: ``{"time", "boxes": [[x1, y1, x2, y2, score], ...]}`` (cached by file + spec)."""
    cache = None
    if cache_dir is not None:
        st = path.stat()
        key = f"{path.name}-{st.st_size}-{int(st.st_mtime)}-{spec}".replace("/", "_").replace("+", "_")
        cache = cache_dir / f"judge-{key}.json"
        if cache.exists():
            return json.loads(cache.read_text())
    _, det = make_judge(spec)
    out = []
    for fr in frames(path):
        h, w = fr.rgb.shape[:2]
        boxes = []
        for f in det.detect(fr.rgb):
            x1, y1, x2, y2 = f.clipped(w, h).box
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                boxes.append([round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2), round(f.score, 4)])
        out.append({"time": round(fr.time, 6), "boxes": boxes})
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(out))
    return out


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def box_ssim(a: np.ndarray, b: np.ndarray, box) -> float:
    """Grayscale SSIM of two RGB frames inside ``box`` (pixels, clipped)."""
    from skimage.metrics import structural_similarity

    h, w = a.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    ga, gb = _gray(a[y1:y2, x1:x2]), _gray(b[y1:y2, x1:x2])
    side = min(ga.shape)
    if side < 3:
        return float(1.0 - np.abs(ga - gb).mean() / 255.0)
    win = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(ga, gb, data_range=255.0, win_size=win))


def _thumb(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(_gray(rgb), (64, 36), interpolation=cv2.INTER_AREA)


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Exposure:
    """What the judge found in one output."""

    input_frames: int = 0
    output_frames: int = 0
    matched_frames: int = 0
    unmatched_input_frames: int = 0     # no output frame near that time: counted as exposed
    extra_output_frames: int = 0        # output frames no input frame was matched to
    face_frames: int = 0                # judged faces (input), summed over frames
    exposed: int = 0                    # of which SSIM >= 0.9 in the output (or frame missing)
    redetected: int = 0                 # of which the judge still finds a face in the output
    frames_with_exposure: int = 0
    shift_s: float = 0.0                # output timeline minus input timeline
    exposed_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def per_1000(self) -> float:
        return 1000.0 * self.exposed / self.face_frames if self.face_frames else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["exposed_per_1000"] = round(self.per_1000, 2)
        return d


def match(src: Path, out: Path, judged: list[dict[str, Any]]) -> dict[str, Any]:
    """Which output frame shows each input frame: by time stamp, after a global shift.

    The shift (the output's timeline minus the input's) is the median, over all
    input frames, of the offset to the output frame whose thumbnail is closest
    among those within 1.5 frame durations; each input frame is then matched to
    the output frame nearest to its time plus the shift (none if further than
    1.5 frame durations: counted as exposed).

    Returns ``{"choice": [output index or None per input frame], "shift_s",
    "output_frames", "output_times", "extra_output_frames"}``.
    """
    outs = list(_output_index(out))        # (time, thumbnail) of every output frame
    if not outs:
        return {"choice": [None] * len(judged), "shift_s": 0.0, "output_frames": 0,
                "extra_output_frames": 0}
    out_times = np.array([t for t, _ in outs])
    dt = float(np.median(np.diff(out_times))) if len(out_times) > 1 else 0.05
    in_times = np.array([j["time"] for j in judged])
    in_dt = float(np.median(np.diff(in_times))) if len(judged) > 1 else dt
    tol = 1.5 * max(dt, in_dt)
    best_offsets = []
    for j, fr in zip(judged, frames(src)):
        near = np.flatnonzero(np.abs(out_times - fr.time) <= tol)
        if len(near):
            th = _thumb(fr.rgb)
            errs = [float(np.mean((outs[k][1] - th) ** 2)) for k in near]
            best_offsets.append(out_times[near[int(np.argmin(errs))]] - fr.time)
    shift = float(np.median(best_offsets)) if best_offsets else 0.0
    choice: list[int | None] = []
    for t in in_times:
        k = int(np.argmin(np.abs(out_times - (t + shift))))
        choice.append(k if abs(out_times[k] - (t + shift)) <= tol else None)
    used = {k for k in choice if k is not None}
    return {"choice": choice, "shift_s": round(shift, 4), "output_frames": len(outs),
            "extra_output_frames": len(outs) - len(used)}


def pairs(src: Path, out: Path, choice: list[int | None], wanted: set[int] | None = None
          ) -> Iterator[tuple[int, Frame, np.ndarray]]:
    """``(input index, input frame, matched output RGB at the input's size)`` in input order."""
    import cv2

    out_iter = frames(out)
    recent: dict[int, np.ndarray] = {}      # the last output frames decoded, by index
    cur_k = -1
    for i, fr in enumerate(frames(src)):
        if i >= len(choice):
            break
        k = choice[i]
        if k is None or (wanted is not None and i not in wanted):
            continue
        while cur_k < k:
            recent[cur_k + 1] = next(out_iter).rgb
            cur_k += 1
            recent.pop(cur_k - 16, None)
        o = recent[k]
        if o.shape != fr.rgb.shape:
            o = cv2.resize(o, (fr.rgb.shape[1], fr.rgb.shape[0]), interpolation=cv2.INTER_AREA)
        yield i, fr, o


def exposure(src: Path, out: Path, judged: list[dict[str, Any]], spec: str | None = None,
             examples: int = 10) -> Exposure:
    """Count exposed face-frames of ``out`` against the judged faces of ``src``.

    Args:
        src, out: input and output video files.
        judged: :func:`judge_input` of ``src``.
        spec: also run this judge on each matched output frame and count the
            input faces it still finds there (IoU >= 0.3); None skips it.
        examples: how many exposed faces to list (frame, time, box, SSIM).
    """
    det = make_judge(spec)[1] if spec else None
    res = Exposure(input_frames=len(judged))
    m = match(src, out, judged)
    choice = m["choice"]
    res.output_frames = m["output_frames"]
    res.shift_s = m["shift_s"]
    res.matched_frames = sum(c is not None for c in choice)
    res.unmatched_input_frames = len(choice) - res.matched_frames
    res.extra_output_frames = m["extra_output_frames"]
    for i, c in enumerate(choice):
        if c is None:               # nothing shown at that time: its faces count as exposed
            n = len(judged[i]["boxes"])
            res.face_frames += n
            res.exposed += n
            res.frames_with_exposure += bool(n)
    wanted = {i for i, c in enumerate(choice) if c is not None and judged[i]["boxes"]}
    for i, fr, o in pairs(src, out, choice, wanted):
        found = [f.box for f in det.detect(o)] if det is not None else []
        any_exposed = False
        for box in judged[i]["boxes"]:
            res.face_frames += 1
            s = box_ssim(fr.rgb, o, box)
            if s >= EXPOSED_SSIM:
                res.exposed += 1
                any_exposed = True
                if len(res.exposed_examples) < examples:
                    res.exposed_examples.append({"frame": i, "time": round(fr.time, 3),
                                                 "box": box[:4], "score": box[4], "ssim": round(s, 3)})
            if any(_iou(box, b) >= 0.3 for b in found):
                res.redetected += 1
        res.frames_with_exposure += any_exposed
    return res


def _output_index(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    for fr in frames(path):
        yield fr.time, _thumb(fr.rgb)


__all__ = ["EXPOSED_SSIM", "Exposure", "box_ssim", "exposure", "frames", "judge_input", "make_judge",
           "match", "pairs"]
