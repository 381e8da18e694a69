"""The command line end to end, on real photos (folders, JSON, bad input)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedeid.cli import main
from facedeid.io.images import read_image


@pytest.fixture()
def photo_tree(tmp_path: Path, astronaut: np.ndarray, data_dir: Path) -> Path:
    """in/astronaut.jpg, in/sub/group.jpg (real group photo), in/sub/empty.png (no face)."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(root / "astronaut.jpg", quality=95)
    shutil.copy(data_dir / "multiface" / "misc" / "couple.jpg", root / "sub" / "group.jpg")
    Image.fromarray(np.full((64, 80, 3), 127, np.uint8)).save(root / "sub" / "empty.png")
    return root


def test_anonymize_folder_mirrors_tree_and_writes_records(photo_tree: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    rc = main(["anonymize", str(photo_tree), "-o", str(out), "--json", "-q",
               "--summary-json", str(tmp_path / "summary.json")])
    assert rc == 0
    for rel in ["astronaut.jpg", "sub/group.jpg", "sub/empty.png"]:
        assert (out / rel).is_file(), rel
        record = json.loads((out / (rel + ".json")).read_text())
        assert record["schema"] == "facedeid.audit.image/1"
        assert record["input"]["path"].endswith(rel)
        assert record["output"]["sha256"]
    astro = json.loads((out / "astronaut.jpg.json").read_text())
    assert astro["n_faces"] == 1 and astro["faces"][0]["painted"] is True
    assert astro["method"]["name"] == "blur"
    group = json.loads((out / "sub/group.jpg.json").read_text())
    assert group["n_faces"] >= 2
    empty = json.loads((out / "sub/empty.png.json").read_text())
    assert empty["no_face_found"] is True and empty["n_faces"] == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_processed"] == 3 and summary["n_failed"] == 0
    assert summary["no_face_found"] == [str(photo_tree / "sub" / "empty.png")]
    # the face really changed, the corners did not move much (JPEG re-encode only)
    before = read_image(photo_tree / "astronaut.jpg").pixels.astype(int)
    after = read_image(out / "astronaut.jpg").pixels.astype(int)
    x1, y1, x2, y2 = (int(v) for v in astro["faces"][0]["box"])
    assert np.abs(after[y1:y2, x1:x2] - before[y1:y2, x1:x2]).mean() > 10
    assert np.abs(after[-60:, :60] - before[-60:, :60]).mean() < 3


def test_batch_goes_on_past_a_bad_file_and_exits_nonzero(photo_tree: Path, tmp_path: Path, capsys):
    (photo_tree / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (photo_tree / "zero.png").write_bytes(b"")
    out = tmp_path / "out"
    rc = main(["anonymize", str(photo_tree), "-o", str(out), "--summary-json",
               str(tmp_path / "s.json")])
    assert rc == 1
    err = capsys.readouterr()
    assert "broken.jpg" in err.err and "zero.png" in err.err
    assert "2 failed" in err.out
    assert (out / "astronaut.jpg").is_file() and (out / "sub" / "group.jpg").is_file()
    assert not (out / "broken.jpg").exists() and not (out / "zero.png").exists()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert {f["path"] for f in summary["failed"]} == {str(photo_tree / "broken.jpg"),
                                                      str(photo_tree / "zero.png")}


def test_default_output_beside_input_and_never_overwrites(photo_tree: Path, capsys):
    src = photo_tree / "astronaut.jpg"
    original = src.read_bytes()
    assert main(["anonymize", str(src), "-q"]) == 0
    assert (photo_tree / "astronaut_anonymized.jpg").is_file()
    assert src.read_bytes() == original
    rc = main(["anonymize", str(src), "-o", str(src)])
    assert rc == 2
    assert "astronaut.jpg" in capsys.readouterr().err
    assert src.read_bytes() == original


def test_unwritable_output_is_a_clear_error(photo_tree: Path, tmp_path: Path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc = main(["anonymize", str(photo_tree / "astronaut.jpg"), "-o", str(blocker / "out.jpg")])
    assert rc != 0
    assert "out.jpg" in capsys.readouterr().err


def test_detect_json_lines(photo_tree: Path, capsys):
    rc = main(["detect", str(photo_tree / "astronaut.jpg"), str(photo_tree / "sub"), "--json"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(d["image"]).name for d in lines] == ["astronaut.jpg", "empty.png", "group.jpg"]
    astro = lines[0]
    assert (astro["width"], astro["height"]) == (512, 512)
    (face,) = astro["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 220
    assert len(face["landmarks5"]) == 5 and 0 < face["score"] <= 1
    assert lines[1]["faces"] == []


def test_landmarks_visualisation_and_json(photo_tree: Path, tmp_path: Path):
    png, js = tmp_path / "lm.png", tmp_path / "lm.json"
    assert main(["landmarks", str(photo_tree / "astronaut.jpg"), "-o", str(png), "--json", str(js)]) == 0
    payload = json.loads(js.read_text())
    (face,) = payload["faces"]
    pts = np.array(face["landmarks68"])
    assert pts.shape == (68, 2)
    vis = read_image(png).pixels.astype(int)
    src = read_image(photo_tree / "astronaut.jpg").pixels.astype(int)
    x1, y1 = pts.min(0).astype(int)
    x2, y2 = pts.max(0).astype(int)
    assert np.abs(vis[y1:y2, x1:x2] - src[y1:y2, x1:x2]).mean() > 5   # drawn on the face
    assert np.abs(vis[-50:, -50:] - src[-50:, -50:]).mean() < 3        # not elsewhere


def test_method_options_reach_the_method(photo_tree: Path, tmp_path: Path):
    out = tmp_path / "black.png"
    rc = main(["anonymize", str(photo_tree / "astronaut.jpg"), "-o", str(out), "--method",
               "blackout", "-p", "color=255,0,0", "--boxes", "--json", "-q"])
    assert rc == 0
    rec = json.loads(Path(str(out) + ".json").read_text())
    x1, y1, x2, y2 = (int(round(v)) for v in rec["faces"][0]["region"]["box"])
    px = read_image(out).pixels
    cy, cx = (y1 + y2) // 2, (x1 + x2) // 2
    assert tuple(px[cy, cx]) == (255, 0, 0)
    assert rec["faces"][0]["region"]["shape"] == "box"


@pytest.mark.parametrize("argv, needle", [
    (["anonymize", "{img}", "--method", "nosuch"], "nosuch"),
    (["anonymize", "{img}", "--detector", "nosuch"], "nosuch"),
    (["anonymize", "{img}", "-p", "bogus=1"], "bogus"),
    (["anonymize", "/no/such/file.jpg"], "/no/such/file.jpg"),
])
def test_usage_errors_are_one_clear_line(photo_tree: Path, capsys, argv, needle):
    argv = [a.format(img=photo_tree / "astronaut.jpg") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith("facedeid: error:")
