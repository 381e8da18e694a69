"""`facedeid anonymize` on video files: batches with a bad file, video options, a real Ctrl-C.

Synthetic clips made with PyAV in ``tmp_path`` (see ``test_video.py``); the
real detector runs (they hold no face), so this exercises the CLI end to end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

av = pytest.importorskip("av")

from facedeid.cli import main  # noqa: E402
from test_video import decode_all, make_clip, packets, stream_info  # noqa: E402


def test_cli_video_batch_goes_on_past_a_bad_file(tmp_path, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    make_clip(inp / "a_good.mp4", n=8, audio=True)
    (inp / "b_bad.mp4").write_bytes(b"this is not a video " * 200)
    make_clip(inp / "c_good.mkv", n=5)
    out = tmp_path / "out"
    rc = main(["anonymize", str(inp), "-o", str(out), "--json", "--detector", "yunet"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "b_bad.mp4" in captured.err and "error" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "a_good.mp4", "a_good.mp4.jsonl", "a_good.mp4.summary.json",
        "c_good.mkv", "c_good.mkv.jsonl", "c_good.mkv.summary.json"]
    assert len(decode_all(out / "a_good.mp4")) == 8 and len(decode_all(out / "c_good.mkv")) == 5
    assert packets(inp / "a_good.mp4", "audio") == packets(out / "a_good.mp4", "audio")
    lines = (out / "a_good.mp4.jsonl").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == list(range(8))
    assert "failed: " in captured.out and "b_bad.mp4" in captured.out


def test_cli_video_options_reach_the_pipeline(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, n=10, audio=True, size=(128, 96))
    dst = tmp_path / "out.mkv"
    rc = main(["anonymize", str(src), "-o", str(dst), "-q", "--json", "--detector", "yunet",
               "--hold", "3", "--lookahead", "2", "--codec", "h265", "--crf", "30", "--no-audio"])
    assert rc == 0
    summary = json.loads((tmp_path / "out.mkv.summary.json").read_text())
    assert summary["hold"] == 3 and summary["lookahead"] == 2
    assert summary["output"]["codec"] == "libx265" and summary["output"]["options"]["crf"] == "30"
    info = stream_info(dst)
    assert info["codec"] == "hevc" and info["types"] == ["video"]
    assert len(decode_all(dst)) == 10


def _spawn_cli(args: list[str]) -> subprocess.Popen:
    code = "import sys; from facedeid.cli import main; sys.exit(main())"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def test_ctrl_c_leaves_no_output_file(tmp_path):
    """A real SIGINT to a running `facedeid anonymize`: exit 130, nothing under the output
    name, no temporary file left, an existing file of that name untouched."""
    src = tmp_path / "long.mkv"
    make_clip(src, n=700, size=(320, 240))   # long: a loaded machine must not finish it first
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / "clip.mp4"
    old = out_dir / "clip.mp4.jsonl"
    old.write_text("an older file of the same name\n")
    p = _spawn_cli(["anonymize", str(src), "-o", str(dst), "--json", "-q", "--detector", "yunet"])
    try:
        deadline = time.monotonic() + 120
        # wait until the output is being written (its temporary file exists)
        while not [x for x in out_dir.iterdir() if x.name.startswith(".")]:
            assert p.poll() is None, p.stderr.read().decode()
            assert time.monotonic() < deadline, "the output was never started"
            time.sleep(0.02)
        time.sleep(0.3)
        assert p.poll() is None, "finished before the interrupt: make the clip longer"
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode()
    assert rc == 130, err
    assert "interrupted" in err
    assert sorted(x.name for x in out_dir.iterdir()) == ["clip.mp4.jsonl"]
    assert old.read_text() == "an older file of the same name\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["long.mkv", "out"]


def test_interrupted_batch_keeps_finished_files_only(tmp_path):
    """Ctrl-C during the second video of a batch: the first output is complete, the second
    does not exist under its name."""
    inp = tmp_path / "in"
    inp.mkdir()
    make_clip(inp / "a.mp4", n=6)
    make_clip(inp / "b.mkv", n=300, size=(320, 240))
    out = tmp_path / "out"
    p = _spawn_cli(["anonymize", str(inp), "-o", str(out), "-q", "--detector", "yunet"])
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and [x for x in out.iterdir() if x.name.startswith(".b")]):
            assert p.poll() is None, p.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 130
    assert sorted(x.name for x in out.iterdir()) == ["a.mp4"]
    assert len(decode_all(out / "a.mp4")) == 6
    assert Path(inp / "b.mkv").stat().st_size > 0
