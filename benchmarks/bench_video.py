"""Video de-identification side by side with deface 1.5.0: exposure, speed, memory, audio.

    .venv/bin/python -m benchmarks.bench_video [--clips NAME,...] [--no-coverage]
                                               [--strong-judge SPEC] [--facedeid-args "..."]

Clips: the four of ``$FACEDEID_DATA/video`` plus ``short_hamilton_clip.mp4``
upscaled to 720p and 1080p (bicubic, H.264 CRF 16, audio copied), and the 1080p
clip remuxed three times in a row (memory check). They are made at bench time
with PyAV in ``benchmarks/results/tmp/video/`` (git-ignored) and reused.

Each tool runs as its own process, at its defaults, at native resolution, one
after the other on the same clip (the order alternates from clip to clip), so
the machine's load falls on both alike; ``os.getloadavg()`` is recorded around
every run. deface runs through its CLI (``deface IN -o OUT``) where its CLI
accepts the file (it skips files whose MIME type is not ``video/*``: the raw
``.h265`` and the GIF); there its own ``video_detect`` is called with the CLI's
default arguments. Its imageio reader opens neither the GIF nor the raw HEVC
stream: the HEVC stream is given to it losslessly re-encoded into MP4 (every
decoded pixel identical), the GIF is reported as not processed. facedeid runs
``facedeid anonymize IN -o OUT -q`` on the files as they are.

Measured, per clip and tool:

* **exposure** (:mod:`benchmarks.videojudge`): the judge (YuNet at score 0.5 at
  full resolution, the issue's own measurement) finds the faces of every input
  frame; the output frame shown at the same time (matched by time stamp) is
  compared inside each face box; grayscale SSIM >= 0.9 is *exposed*. Reported per
  1,000 judged face-frames, with the faces the judge still detects in the output.
  A pure Gaussian blur cannot change a *very dark*, defocused face enough for
  SSIM to see it (the blur keeps its mean and its contrast was near zero to
  start with): deface's blur is judged exposed there; facedeid's blur adds a
  fine grain for that reason (``facedeid.methods.classic.DEFAULT_GRAIN``). To
  separate "painted too weakly" from "not painted at all", exposure is
  also measured on a second run of each tool that paints solid black
  (facedeid ``--method blackout``, deface ``--replacewith solid``): same
  detection and tracking, a paint no judge can miss. That is the *coverage*
  exposure: the face was not painted at all.
* a second, independent judge (``--strong-judge``, default ``yunet+centerface``
  at 0.5) on the clips at native resolution;
* frames, size, frame rate, first/last time stamp of the output, and time stamps
  added or lost;
* **throughput**: frames / wall seconds of the whole command (start-up included);
  the floor: facedeid's own decode -> convert -> encode pipeline with no
  detection (same codec and settings), and facedeid as a fraction of it;
* **peak memory**: the process's maximum RSS (``os.wait4``), for the 1080p clip
  and the same clip three times as long, run back to back, with the peak within each
  third of each run (VmRSS sampled every 0.25 s; ``--memory-only`` redoes just these);
* **audio**: whether every audio packet of the output is byte-identical (and at
  the same time) to the input's.

Results: ``benchmarks/results/video.json`` and ``video.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, md_table, require_data, write_results

TMP = RESULTS_DIR / "tmp" / "video"
JUDGE = "yunet@0.5"
STRONG_JUDGE = "yunet+centerface@0.5"
PACKAGES = ["facedeid", "av", "numpy", "opencv-python-headless", "onnxruntime", "deface",
            "imageio-ffmpeg", "scikit-image"]
NATIVE = ["short_hamilton_clip", "MOT17-13-SDP-raw", "MOT20-05-raw_even_shorter", "elon-musk-smoke"]
ALL_CLIPS = NATIVE + ["hamilton_720p", "hamilton_1080p"]


@dataclass
class Clip:
    name: str
    path: Path
    native: bool          # one of the shared clips (not an upscaled copy)


def prepare_clips(names: list[str]) -> dict[str, Clip]:
    """The clips to measure (upscaled copies made once, then reused)."""
    from benchmarks.videoclips import repeat_clip, upscale_clip

    video = require_data("video")
    files = {p.stem: p for p in video.iterdir() if p.is_file() and not p.name.startswith(".")}
    TMP.mkdir(parents=True, exist_ok=True)
    ham = files["short_hamilton_clip"]
    clips: dict[str, Clip] = {}
    for name in names:
        if name in files:
            clips[name] = Clip(name, files[name], True)
        elif name in ("hamilton_720p", "hamilton_1080p", "hamilton_1080p_x3"):
            p720, p1080 = TMP / "hamilton_720p.mp4", TMP / "hamilton_1080p.mp4"
            if name == "hamilton_720p" and not p720.exists():
                upscale_clip(ham, p720, 1280, 720)
            if name in ("hamilton_1080p", "hamilton_1080p_x3") and not p1080.exists():
                upscale_clip(ham, p1080, 1920, 1080)
            path = TMP / f"{name}.mp4"
            if name == "hamilton_1080p_x3" and not path.exists():
                repeat_clip(p1080, path, 3)
            clips[name] = Clip(name, path, False)
        else:
            raise SystemExit(f"unknown clip '{name}'; choose from {', '.join(ALL_CLIPS)}")
    return clips


# ---------------------------------------------------------------- running the tools
def run_process(cmd: list[str], timeout: float = 3600) -> dict[str, Any]:
    """Run ``cmd``: wall time, CPU time and peak RSS of its process tree, load, exit status.

    ``cmd`` is started by a small launcher process (``--launch``), which waits for it
    with ``os.wait4``: the peak RSS a Linux process reports includes its parent's at
    the time of ``exec``, so launching from this (large) process would inflate it.
    """
    import tempfile

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        usage_file = Path(tmp) / "usage.json"
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "benchmarks.bench_video", "--launch",
                            str(usage_file), str(timeout), *cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
    out = (p.stdout + p.stderr).decode(errors="replace").strip().splitlines()
    return {"cmd": " ".join(shlex.quote(c) for c in cmd), "rc": usage.get("rc", p.returncode),
            "wall_s": round(usage.get("wall_s", wall), 2),
            "max_rss_mb": round(usage.get("max_rss_kb", 0) / 1024, 1),
            "rss_by_third_mb": rss_by_part(usage.get("rss_trace") or []),
            "cpu_s": round(usage.get("cpu_s", 0.0), 2),
            "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "output_tail": [line[-300:] for line in out[-3:]]}


def launch_main(usage_file: str, timeout: str, cmd: list[str]) -> int:
    """Run ``cmd`` and write its exit status, wall time and rusage (``os.wait4``) as JSON."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd)
    deadline = t0 + float(timeout)
    trace: list[tuple[float, int]] = []      # (seconds, VmRSS kB) of the command's process
    next_sample = t0
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        now = time.perf_counter()
        if now > deadline:
            p.kill()
            pid, status, usage = os.wait4(p.pid, 0)
            break
        if now >= next_sample:
            rss = _vm_rss_kb(p.pid)
            if rss:
                trace.append((round(now - t0, 2), rss))
            next_sample = now + 0.25
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    p.returncode = rc = os.waitstatus_to_exitcode(status)
    Path(usage_file).write_text(json.dumps({
        "rc": rc, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss, "rss_trace": trace}))
    return 0


def _vm_rss_kb(pid: int) -> int | None:
    """The current resident set size of ``pid`` in kB (Linux ``/proc``), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_by_part(trace: list[tuple[float, int]], parts: int = 3) -> list[float | None]:
    """The peak RSS (MB) within each equal part of the run's duration.

    If memory grew with the length of the clip, the last part would hold the largest
    value; a flat profile shows the working set is bounded.

    >>> rss_by_part([(0.0, 1024), (1.0, 2048), (2.0, 2048), (3.0, 3072)], parts=3)
    [2.0, 2.0, 3.0]
    """
    if not trace:
        return [None] * parts
    end = trace[-1][0] or 1.0
    out: list[float | None] = []
    for i in range(parts):
        lo, hi = end * i / parts, end * (i + 1) / parts
        vals = [kb for s, kb in trace if lo <= s <= hi]
        out.append(round(max(vals) / 1024, 1) if vals else None)
    return out


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def facedeid_cmd(src: Path, dst: Path, extra: list[str]) -> list[str]:
    return [_bin("facedeid"), "anonymize", str(src), "-o", str(dst), "-q", *extra]


_DEFACE_API = ("import sys; from deface.centerface import CenterFace; "
               "from deface.deface import video_detect; "
               "video_detect(sys.argv[1], sys.argv[2], CenterFace(in_shape=None, backend='auto'), "
               "0.2, False, False, False, sys.argv[3], 1.3, True, False, {'codec': 'libx264'})")


RAW_STREAMS = (".h265", ".hevc", ".265", ".h264", ".264")


def deface_input(clip: Clip) -> Path:
    """What deface is given: the clip, or for a raw H.264/H.265 stream (which deface's
    imageio reader cannot open) the same frames losslessly re-encoded into MP4 (x264
    ``qp=0`` in the source's 4:2:0 YUV: every decoded pixel is identical; one frame per
    1/rate second). FFmpeg's stream copy of this raw HEVC loses and reorders frames."""
    if clip.path.suffix.lower() not in RAW_STREAMS:
        return clip.path
    out = TMP / f"{clip.name}.lossless.mp4"
    if not out.exists():
        import av

        tmp = out.with_name(out.stem + ".part.mp4")
        with av.open(str(clip.path)) as inp, av.open(str(tmp), "w") as dst:
            ivs = inp.streams.video[0]
            rate = ivs.average_rate or ivs.guessed_rate or 25
            ovs = dst.add_stream("libx264", rate=rate, options={"qp": "0", "preset": "ultrafast"})
            ovs.width, ovs.height = ivs.codec_context.width, ivs.codec_context.height
            ovs.pix_fmt = "yuv420p"
            for i, fr in enumerate(inp.decode(ivs)):
                fr = fr if fr.format.name == "yuv420p" else fr.reformat(format="yuv420p")
                fr.pts, fr.time_base = i, Fraction(1, 1) / Fraction(rate)
                dst.mux(ovs.encode(fr))
            dst.mux(ovs.encode(None))
        tmp.replace(out)
    return out


def deface_cmd(src: Path, dst: Path, replacewith: str = "blur") -> list[str]:
    """deface at its defaults (CLI where it takes the file, else its ``video_detect``)."""
    import mimetypes

    mime = mimetypes.guess_type(str(src))[0] or ""
    if mime.startswith("video"):
        cmd = [_bin("deface"), str(src), "-o", str(dst)]
        return cmd + (["--replacewith", replacewith] if replacewith != "blur" else [])
    return [sys.executable, "-c", _DEFACE_API, str(src), str(dst), replacewith]


def floor_cmd(src: Path, dst: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.bench_video", "--floor", str(src), str(dst)]


def floor_main(src: str, dst: str) -> int:
    """facedeid's pipeline (decode, convert, track, encode; same codec) with no detection."""
    from facedeid.pipeline import Anonymizer
    from facedeid.video import anonymize_video

    class NoFaces:
        name = "none"
        threshold = 1.0

        def detect(self, rgb):
            return []

    anon = Anonymizer(detector="yunet", scale=1.0)   # named and unscaled: used as it is
    anon._detector = NoFaces()
    anonymize_video(src, dst, anon, progress=False)
    return 0


# ---------------------------------------------------------------- one clip
def output_path(tool: str, clip: Clip, kind: str) -> Path:
    ext = clip.path.suffix.lower()
    if tool == "deface" or ext in (".h265", ".hevc", ".265", ".h264"):
        ext = ".mp4"     # deface writes H.264 in MP4 for any input; facedeid MP4 for raw streams
    return TMP / f"{clip.name}.{tool}.{kind}{ext}"


def measure_output(clip: Clip, out: Path, judged, spec: str | None, strong=None) -> dict[str, Any]:
    from benchmarks.videoclips import audio_identical, probe
    from benchmarks.videojudge import exposure

    res: dict[str, Any] = {"file": out.name, "probe": probe(out)}
    res["audio"] = audio_identical(clip.path, out)
    e = exposure(clip.path, out, judged, spec)
    res["exposure"] = e.to_dict()
    if strong is not None:
        s = exposure(clip.path, out, strong, None)
        res["exposure_strong"] = s.to_dict()
    return res


def bench_clip(clip: Clip, first: str, args, judged, strong) -> dict[str, Any]:
    from benchmarks.videoclips import probe

    order = ["facedeid", "deface"] if first == "facedeid" else ["deface", "facedeid"]
    order = [t for t in order if t in args.tools]
    inp = probe(clip.path)
    out: dict[str, Any] = {"input": inp, "runs": {}}
    kinds = ["default"] + (["solid"] if args.coverage == "all" or args.coverage == "native"
                           and clip.native else [])
    for kind in kinds:
        for tool in order:
            dst = output_path(tool, clip, kind)
            if tool == "facedeid":
                extra = shlex.split(args.facedeid_args)
                if kind == "solid":
                    extra += ["--method", "blackout"]
                cmd = facedeid_cmd(clip.path, dst, extra)
            else:
                cmd = deface_cmd(deface_input(clip), dst, "solid" if kind == "solid" else "blur")
            print(f"  {clip.name}: {tool} ({kind}) ...", flush=True)
            dst.unlink(missing_ok=True)           # never measure an older run's output
            run = run_process(cmd)
            run["fps"] = round(inp["frames"] / run["wall_s"], 3) if run["wall_s"] else None
            run["cpu_ms_per_frame"] = round(1000 * run["cpu_s"] / inp["frames"], 1)
            if run["rc"] == 0 and not dst.exists():
                run["no_output"] = True            # e.g. deface skipping a file it cannot open
            # the judge also looks at the output frames (faces it still finds there) on the
            # default runs of the shared clips (at 720p/1080p it would double the cost)
            redetect = JUDGE if kind == "default" and clip.native else None
            if run["rc"] == 0 and dst.exists():
                run.update(measure_output(clip, dst, judged, redetect, strong))
            out["runs"][f"{tool}/{kind}"] = run
            e = run.get("exposure", {})
            print(f"    {run['wall_s']} s, {run['fps']} fps, rss {run['max_rss_mb']} MB, exposed "
                  f"{e.get('exposed')}/{e.get('face_frames')}"
                  + (f", strong judge {run['exposure_strong']['exposed']}/"
                     f"{run['exposure_strong']['face_frames']}" if 'exposure_strong' in run else ""),
                  flush=True)
    return out


# ---------------------------------------------------------------- report
def _rate(run: dict, key: str = "exposure") -> str:
    e = run.get(key)
    if not e:
        return ("no output (file not processed)" if run.get("no_output")
                else "failed" if run.get("rc") else "-")
    return f"{e['exposed_per_1000']:.1f} ({e['exposed']}/{e['face_frames']})"


def render(results: dict[str, Any]) -> str:
    clips = results["clips"]
    lines = ["## Exposure (judge: YuNet @0.5, full resolution; SSIM >= 0.9 in the face box = exposed)\n",
             "Exposed face-frames per 1,000 judged face-frames (exposed / judged). *blur*: both tools "
             "at their defaults. *solid*: the same detection and tracking painting solid black "
             "(facedeid `--method blackout`, deface `--replacewith solid`), which SSIM cannot miss: "
             "a face exposed there was not painted at all.\n"]
    rows = []
    for name, c in clips.items():
        r = c["runs"]
        row = [name, f"{c['input']['width']}x{c['input']['height']}", c["input"]["frames"],
               _rate(r.get("deface/default", {})), _rate(r.get("facedeid/default", {})),
               _rate(r.get("deface/solid", {})), _rate(r.get("facedeid/solid", {}))]
        rows.append(row)
    lines.append(md_table(["clip", "size", "frames", "deface blur", "facedeid blur",
                           "deface solid", "facedeid solid"], rows))
    strong = [(n, c) for n, c in clips.items() if "exposure_strong" in c["runs"].get("facedeid/default", {})]
    if strong:
        lines.append(f"\nSecond judge ({results['config']['strong_judge']}, full resolution):\n")
        rows = []
        for name, c in strong:
            r = c["runs"]
            rows.append([name, _rate(r.get("deface/default", {}), "exposure_strong"),
                         _rate(r.get("facedeid/default", {}), "exposure_strong"),
                         _rate(r.get("deface/solid", {}), "exposure_strong"),
                         _rate(r.get("facedeid/solid", {}), "exposure_strong")])
        lines.append(md_table(["clip", "deface blur", "facedeid blur", "deface solid", "facedeid solid"],
                              rows))
    lines.append("\n## Frames, size, timing, audio (default runs)\n")
    rows = []
    for name, c in clips.items():
        i = c["input"]
        for tool in ("deface", "facedeid"):
            r = c["runs"].get(f"{tool}/default", {})
            p = r.get("probe")
            if not p:
                continue
            a = r.get("audio", {})
            audio = "no audio in input" if not a.get("source_has_audio") else (
                "dropped" if not a.get("output_has_audio") else
                ("bit-identical" if a.get("identical") else
                 f"differs ({a.get('packets_out')}/{a.get('packets_in')} packets, "
                 f"payloads identical: {a.get('payloads_identical')})"))
            e = r.get("exposure", {})
            rows.append([name, tool, f"{i['frames']} -> {p['frames']}",
                         f"{i['width']}x{i['height']} -> {p['width']}x{p['height']}",
                         f"{i['fps']} -> {p['fps']}",
                         f"{i['start_s']}-{i['end_s']} -> {p['start_s']}-{p['end_s']}",
                         e.get("extra_output_frames", "-"), e.get("shift_s", "-"), audio])
    lines.append(md_table(["clip", "tool", "frames", "size", "fps", "first-last time (s)",
                           "extra frames", "timeline shift (s)", "audio"], rows))
    lines.append("\n## Throughput (frames / wall second of the whole command, start-up included)\n")
    rows = []
    for name, c in clips.items():
        r = c["runs"]
        d, f = r.get("deface/default", {}), r.get("facedeid/default", {})
        d = {} if d.get("no_output") else d           # deface skipped the file
        fl = c.get("floor", {})
        ratio = f["fps"] / d["fps"] if d.get("fps") and f.get("fps") else None
        frac = f["fps"] / fl["fps"] if fl.get("fps") and f.get("fps") else None
        cpu = (d["cpu_ms_per_frame"] / f["cpu_ms_per_frame"]
               if d.get("cpu_ms_per_frame") and f.get("cpu_ms_per_frame") else None)
        rows.append([name, f"{c['input']['width']}x{c['input']['height']}", d.get("fps", "-"),
                     f.get("fps", "-"), f"{ratio:.2f}x" if ratio else "-",
                     d.get("cpu_ms_per_frame", "-"), f.get("cpu_ms_per_frame", "-"),
                     f"{cpu:.2f}x" if cpu else "-", fl.get("fps", "-"),
                     f"{frac:.0%}" if frac else "-",
                     d.get("max_rss_mb", "-"), f.get("max_rss_mb", "-")])
    lines.append(md_table(["clip", "size", "deface fps", "facedeid fps", "facedeid / deface",
                           "deface CPU ms/frame", "facedeid CPU ms/frame", "CPU ratio",
                           "floor fps (decode+encode)", "facedeid / floor", "deface peak RSS MB",
                           "facedeid peak RSS MB"], rows))
    lines.append("\nCPU ms/frame: user + system CPU time of the whole process tree (deface's "
                 "ffmpeg reader and writer included) per frame; on a loaded machine it is the "
                 "steadier measure of work. Peak RSS: the largest single process of the tree.\n")
    mem = results.get("memory")
    if mem:
        lines.append("\n## Peak memory, 1080p, 1x vs 3x length (facedeid defaults)\n")
        lines.append(md_table(
            ["clip", "frames", "wall s", "peak RSS MB", "peak RSS MB in 1st / 2nd / 3rd third of the run"],
            [[k, v["frames"], v["wall_s"], v["max_rss_mb"],
              " / ".join("-" if x is None else str(x) for x in v.get("rss_by_third_mb") or [])
              or "-"] for k, v in mem.items()]))
        lines.append("\nThe two runs are back to back. Peak RSS is `ru_maxrss` of the facedeid "
                     "process; the thirds come from sampling its VmRSS every 0.25 s. Memory that "
                     "grew with clip length would show in the last third and in the longer clip.\n")
    cfg = results["config"]
    lines.append(f"\nfacedeid arguments: `{cfg['facedeid_args'] or '(defaults)'}`; load average "
                 f"at start {cfg['load_start']}, at end {cfg['load_end']}.\n")
    return "\n".join(lines)


def memory_runs(args) -> dict[str, Any]:
    """facedeid (defaults) on the 1080p clip and on it three times as long, back to back:
    peak RSS of the whole run and within each third of it."""
    from benchmarks.videoclips import probe

    out: dict[str, Any] = {}
    for name in ("hamilton_1080p", "hamilton_1080p_x3"):
        clip = prepare_clips([name])[name]
        r = run_process(facedeid_cmd(clip.path, output_path("facedeid", clip, "mem"),
                                     shlex.split(args.facedeid_args)))
        out[name] = {"frames": probe(clip.path)["frames"], "wall_s": r["wall_s"],
                     "max_rss_mb": r["max_rss_mb"], "rss_by_third_mb": r["rss_by_third_mb"],
                     "rc": r["rc"]}
        print(f"  memory {name}: {out[name]}", flush=True)
    return out


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--floor"]:
        return floor_main(argv[1], argv[2])
    if argv[:1] == ["--launch"]:
        return launch_main(argv[1], argv[2], argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=",".join(ALL_CLIPS),
                    help=f"comma-separated subset of: {', '.join(ALL_CLIPS)}")
    ap.add_argument("--coverage", choices=["all", "native", "none"], default="native",
                    help="clips that get the solid-paint runs (default: the shared clips)")
    ap.add_argument("--strong-judge", default=STRONG_JUDGE,
                    help="second judge on the native clips ('' to skip)")
    ap.add_argument("--facedeid-args", default="", help="extra facedeid arguments (default: none)")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip the 1080p 1x vs 3x memory runs")
    ap.add_argument("--memory-only", action="store_true",
                    help="only redo the memory runs and update the saved results")
    ap.add_argument("--tools", default="facedeid,deface", help="tools to run (default: both)")
    ap.add_argument("--name", default="bench_video", help="results name (default: video)")
    args = ap.parse_args(argv)
    if args.memory_only:
        saved = RESULTS_DIR / f"{args.name.removeprefix('bench_')}.json"
        results = json.loads(saved.read_text())
        meta = results.pop("meta", None)             # the full run's, kept beside the new one
        results["meta_full_run"] = results.get("meta_full_run") or meta
        results["memory"] = memory_runs(args)
        results["config"]["memory_load"] = [round(x, 2) for x in os.getloadavg()]
        md = render(results)
        write_results(args.name, results, md, packages=PACKAGES)
        print(md)
        return 0
    from benchmarks.videojudge import judge_input

    names = [n for n in args.clips.split(",") if n]
    clips = prepare_clips(names)
    results: dict[str, Any] = {"config": {
        "clips": names, "judge": JUDGE, "strong_judge": args.strong_judge or None,
        "exposed_ssim": 0.9, "facedeid_args": args.facedeid_args,
        "deface": "CLI defaults: CenterFace at native resolution, threshold 0.2, blur, ellipse, "
                  "mask scale 1.3, libx264 via imageio-ffmpeg; audio dropped (its default)",
        "load_start": [round(x, 2) for x in os.getloadavg()]}, "clips": {}}
    for n, (name, clip) in enumerate(clips.items()):
        print(f"== {name}", flush=True)
        judged = judge_input(clip.path, JUDGE, TMP)
        strong = judge_input(clip.path, args.strong_judge, TMP) if args.strong_judge and clip.native \
            else None
        c = bench_clip(clip, "facedeid" if n % 2 == 0 else "deface", args, judged, strong)
        c["judged_face_frames"] = sum(len(j["boxes"]) for j in judged)
        if not clip.native:
            fl = run_process(floor_cmd(clip.path, output_path("floor", clip, "floor")))
            fl["fps"] = round(c["input"]["frames"] / fl["wall_s"], 3)
            c["floor"] = fl
            print(f"  floor: {fl['fps']} fps", flush=True)
        results["clips"][name] = c
    if args.memory:
        results["memory"] = memory_runs(args)
    results["config"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
    md = render(results)
    write_results(args.name, results, md, packages=PACKAGES)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
