"""Reversible video: per-track keys, MKV attachment or sidecar, binding to the stream."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_video import decode_all, make_clip, scripted_anonymizer  # noqa: E402

from facedeid.cli import main  # noqa: E402
from facedeid.keys import FaceKey, MasterKey, TamperError, WrongKeyError, load_key  # noqa: E402
from facedeid.keys.embed import sidecar_path  # noqa: E402
from facedeid.keys.video import (  # noqa: E402
    anonymize_video_reversible,
    describe_payload,
    recover_video,
    video_stream_digest,
)

BOXES = [(20, 20, 70, 80), (90, 30, 140, 90)]


def key() -> MasterKey:
    return MasterKey.from_bytes(os.urandom(32))


@pytest.fixture()
def clip(tmp_path) -> Path:
    src = tmp_path / "in.mp4"
    make_clip(src, n=12, size=(160, 120), audio=True)
    return src


def inner(box):
    x0, y0, x1, y1 = box
    return slice((3 * y0 + y1) // 4, (y0 + 3 * y1) // 4), slice((3 * x0 + x1) // 4, (x0 + 3 * x1) // 4)


def test_lossless_rgb_video_round_trip_is_pixel_exact(clip, tmp_path):
    k = key()
    out = tmp_path / "out.mkv"
    summary, info = anonymize_video_reversible(clip, out, scripted_anonymizer(default=BOXES), k,
                                               progress=False, codec="ffv1", pix_fmt="bgr0")
    assert info.where.startswith("Matroska attachment") and info.faces == [0, 1]
    assert not sidecar_path(out).exists() and summary.dst == str(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv"]   # no temporary left
    with av.open(str(out)) as c:
        assert {s.type for s in c.streams} >= {"video", "audio", "attachment"}
    report = recover_video(out, k, dst=tmp_path / "back.mkv")
    assert report.exact == "pixel-exact" and report.verified and report.extra["frames"] == 12
    original = decode_all(clip)
    back = decode_all(tmp_path / "back.mkv")
    painted = decode_all(out)
    assert len(back) == len(original) == 12
    for (_, o), (_, b), (_, p) in zip(original, back, painted):
        assert np.array_equal(o, b)
        assert not np.array_equal(p[inner(BOXES[0])], o[inner(BOXES[0])])


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_lossy_video_round_trip_is_exact_inside_the_tracks(clip, tmp_path, ext):
    k = key()
    out = tmp_path / f"out{ext}"
    _, info = anonymize_video_reversible(clip, out, scripted_anonymizer(default=BOXES), k, progress=False)
    assert sidecar_path(out).exists() == (ext == ".mp4")
    report = recover_video(out, k, dst=tmp_path / "back.mkv")
    assert report.exact == "regions" and report.recovered == [0, 1]
    assert "lossy" in report.detail
    for (_, o), (_, b) in zip(decode_all(clip), decode_all(tmp_path / "back.mkv")):
        for box in BOXES:
            assert np.array_equal(o[inner(box)], b[inner(box)])
    d = describe_payload(out)
    assert d["kind"] == "video" and [f["id"] for f in d["faces"]] == [0, 1]
    assert d["faces"][0]["entries"] == 12


def test_track_key_opens_one_track_wrong_key_and_tampered_stream(clip, tmp_path, capsys):
    kf = tmp_path / "m.key"
    assert main(["keygen", "-o", str(kf)]) == 0
    k = MasterKey.from_key_file(kf)
    out = tmp_path / "out.mkv"
    anonymize_video_reversible(clip, out, scripted_anonymizer(default=BOXES), k, progress=False,
                               codec="ffv1", pix_fmt="bgr0")
    tk = tmp_path / "track1.key"
    assert main(["keygen", "--derive", str(out), "--face", "1", "--key-file", str(kf), "-o", str(tk)]) == 0
    track_key = load_key(tk)
    assert isinstance(track_key, FaceKey)
    assert main(["recover", str(out), "--key-file", str(tk), "-o", str(tmp_path / "one.mkv"), "-q"]) == 0
    original, painted = decode_all(clip), decode_all(out)
    for (_, o), (_, p), (_, b) in zip(original, painted, decode_all(tmp_path / "one.mkv")):
        assert np.array_equal(b[inner(BOXES[1])], o[inner(BOXES[1])])     # track 1 restored
        assert np.array_equal(b[inner(BOXES[0])], p[inner(BOXES[0])])     # track 0 stays painted
    with pytest.raises(WrongKeyError, match="does not open face 0"):
        recover_video(out, track_key, faces=[0], dst=tmp_path / "x.mkv")
    with pytest.raises(WrongKeyError, match="opens none"):
        recover_video(out, key(), dst=tmp_path / "x.mkv")
    # the same payload next to a re-encoded copy of the video: refused, nothing written
    reenc = tmp_path / "re.mp4"
    anonymize_video_reversible(clip, tmp_path / "lossy.mp4", scripted_anonymizer(default=BOXES), k,
                               progress=False)
    make_clip(reenc, n=12, size=(160, 120))
    sidecar_path(reenc).write_bytes(sidecar_path(tmp_path / "lossy.mp4").read_bytes())
    with pytest.raises(TamperError, match="modified after writing"):
        recover_video(reenc, k, dst=tmp_path / "x.mkv")
    assert not (tmp_path / "x.mkv").exists()
    assert video_stream_digest(out) != video_stream_digest(reenc)


def test_cli_reversible_video(clip, tmp_path, capsys, monkeypatch):
    kf = tmp_path / "m.key"
    assert main(["keygen", "-o", str(kf)]) == 0
    import facedeid.pipeline as pipeline
    from facedeid.types import Face

    real = pipeline.Anonymizer.detect          # a scripted face instead of the detector
    monkeypatch.setattr(pipeline.Anonymizer, "detect",
                        lambda self, image: [Face(BOXES[0], 0.9, face_id=0)])
    out = tmp_path / "out.mp4"
    rc = main(["anonymize", str(clip), "-o", str(out), "--reversible", "--key-file", str(kf), "-q",
               "--json"])
    assert rc == 0 and sidecar_path(out).exists()
    assert "reversible" in (tmp_path / "out.mp4.summary.json").read_text()
    monkeypatch.setattr(pipeline.Anonymizer, "detect", real)
    assert main(["recover", str(out), "--key-file", str(kf), "--json"]) == 0
    assert '"kind": "video"' in capsys.readouterr().out
    assert (tmp_path / "out_recovered.mkv").exists()
