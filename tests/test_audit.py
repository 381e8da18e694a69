"""Audit records: fields, JSON safety, atomic pretty writing, batch summaries."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facedeid
from facedeid.io import read_image, write_image
from facedeid.io.audit import (
    BATCH_SCHEMA,
    IMAGE_SCHEMA,
    BatchSummary,
    FaceEntry,
    ImageRecord,
    detector_info,
    dumps_record,
    json_safe,
    read_record,
    record_path,
    write_record,
)
from facedeid.types import Face


class FakeDetector:
    name = "fake"

    def __init__(self):
        self.threshold = np.float32(0.6)
        self.input_size = (640, 640)
        self.nms_iou = 0.4
        self.model_path = Path("/models/fake.onnx")
        self.session = object()  # not JSON: dropped
        self._cache = {"big": "private"}


def gps_jpeg(path: Path) -> Path:
    """A JPEG whose EXIF holds a GPS IFD (made with Pillow)."""
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.97)
    a = np.zeros((30, 40, 3), np.uint8)
    a[5:25, 10:30] = 200
    Image.fromarray(a).save(path, exif=exif.tobytes(), quality=95)
    return path


@pytest.fixture()
def processed(tmp_path):
    src = gps_jpeg(tmp_path / "in.jpg")
    loaded = read_image(src)
    written = write_image(tmp_path / "in_anonymized.jpg", loaded.pixels, like=loaded)
    return src, loaded, written


def test_image_record_fields(processed):
    src, loaded, written = processed
    face = Face(box=(10, 5, 30, 25), score=np.float32(0.93), landmarks5=np.ones((5, 2)), detector="fake", face_id=0)
    rng = np.random.default_rng(0)
    rec = ImageRecord.build(
        "in.jpg",
        loaded=loaded,
        written=written,
        detector=FakeDetector(),
        method="blur",
        params={"strength": np.int64(31), "rng": rng, "sigma": np.float64(4.5), "kernel": (31, 31),
                "fn": len, "nan": float("nan")},
        faces=[FaceEntry(face, region_shape="ellipse", region_scale=1.3, region_box=(8, 3, 32, 27)),
               Face(box=(0, 0, 4, 4), score=0.5)],
        timings_s={"detect": np.float64(0.012)},
    )
    d = rec.to_dict()
    json.dumps(d, allow_nan=False)  # strictly JSON
    assert d["schema"] == IMAGE_SCHEMA and d["tool"] == "facedeid" and d["version"] == facedeid.__version__
    assert datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert d["input"] == {"path": "in.jpg", "sha256": loaded.sha256, "format": "JPEG", "orientation": 1}
    assert d["output"] == {"path": str(written.path), "sha256": written.sha256, "format": "JPEG"}
    assert (d["width"], d["height"]) == (40, 30)
    assert d["detector"]["name"] == "fake" and d["detector"]["threshold"] == pytest.approx(0.6)
    assert d["detector"]["config"] == {"input_size": [640, 640], "nms_iou": 0.4, "model_path": "/models/fake.onnx"}
    assert d["method"] == {"name": "blur", "params": {"strength": 31, "sigma": 4.5, "kernel": [31, 31],
                                                       "nan": None}}
    assert d["n_faces"] == 2 and d["no_face_found"] is False
    f0 = d["faces"][0]
    assert f0["box"] == [10.0, 5.0, 30.0, 25.0] and f0["score"] == pytest.approx(0.93, abs=1e-4)
    assert f0["landmarks5"] == [[1.0, 1.0]] * 5 and f0["id"] == 0 and f0["detector"] == "fake"
    assert f0["region"] == {"shape": "ellipse", "scale": 1.3, "box": [8.0, 3.0, 32.0, 27.0]}
    assert f0["painted"] is True and f0["fallback"] is None
    assert d["faces"][1]["region"] == {"shape": None, "scale": None}
    md = d["metadata"]
    assert md["policy"] == "strip"
    assert {"exif", "gps"} <= set(md["input_found"]) and "gps" in md["input_identifying"]
    assert {"exif", "gps"} <= set(md["removed"])
    assert md["output_identifying"] == []
    assert d["timings_s"] == {"detect": 0.012}
    assert d["errors"] == []


def test_no_face_and_failure_record(tmp_path):
    rec = ImageRecord.build("missing.jpg", errors=["missing.jpg: no such file"])
    d = rec.to_dict()
    assert d["n_faces"] == 0 and d["no_face_found"] is True and d["faces"] == []
    assert d["output"] is None and d["input"]["sha256"] is None
    assert d["errors"] == ["missing.jpg: no such file"]
    assert d["detector"] == {"name": None, "threshold": None, "config": {}}


def test_fallback_face_entry():
    e = FaceEntry(Face(box=(1, 2, 3, 4)), region_shape="box", region_scale=1.0, painted=True,
                  fallback="no 68-point landmarks: used the box")
    d = e.to_dict()
    assert d["fallback"].startswith("no 68-point") and d["region"]["shape"] == "box"
    e = FaceEntry(Face(box=(1, 2, 3, 4)), painted=False, fallback="face smaller than 2 px")
    assert e.to_dict()["painted"] is False


def test_json_safe():
    @dataclass
    class Cfg:
        size: tuple
        path: Path

    value = {
        "a": np.arange(3, dtype=np.int16), "b": np.float32(1.5), "c": np.bool_(True), "d": {3, 1, 2},
        "e": Cfg((1, 2), Path("/x")), "f": float("inf"), "g": b"bytes", "h": np.random.default_rng(),
        "i": [np.random.default_rng(), 1], 5: "int key", "j": lambda x: x,
    }
    out = json_safe(value)
    assert out == {"a": [0, 1, 2], "b": 1.5, "c": True, "d": [1, 2, 3], "e": {"size": [1, 2], "path": "/x"},
                   "f": None, "i": [1], "5": "int key"}
    json.dumps(out, allow_nan=False)
    assert json_safe(object()) is None
    assert json_safe(math.nan) is None


def test_detector_info_variants():
    assert detector_info("yunet") == {"name": "yunet", "threshold": None, "config": {}}
    info = detector_info(FakeDetector())
    assert "session" not in info["config"] and "_cache" not in info["config"]


def test_write_record_pretty_and_atomic(tmp_path, processed):
    src, loaded, written = processed
    rec = ImageRecord.build(src, loaded=loaded, written=written, detector="yunet", method="pixelate",
                            params={"blocks": 8}, faces=[])
    path = record_path(written.path)
    assert path.name == "in_anonymized.jpg.json"
    write_record(path, rec)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "schema": ')
    data = read_record(path)
    assert data == json.loads(dumps_record(rec))
    assert data["no_face_found"] is True
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["in.jpg", "in_anonymized.jpg", "in_anonymized.jpg.json"]
    # the record never carries metadata values
    assert "48" not in json.dumps(data["metadata"]) and "Cam" not in text
    with pytest.raises(ValueError):
        (tmp_path / "other.json").write_text('{"hello": 1}')
        read_record(tmp_path / "other.json")


def test_write_record_failure_leaves_nothing(tmp_path):
    bad = {"x": float("nan")}
    write_record(tmp_path / "ok.json", bad)  # json_safe turns NaN into null
    assert json.loads((tmp_path / "ok.json").read_text()) == {"x": None}

    class Exploding:
        def to_dict(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_record(tmp_path / "never.json", Exploding())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.json"]


def test_batch_summary(tmp_path, processed):
    src, loaded, written = processed
    batch = BatchSummary()
    batch.add(ImageRecord.build("a.jpg", loaded=loaded, written=written,
                                faces=[Face(box=(0, 0, 5, 5)), Face(box=(5, 5, 9, 9))]))
    batch.add(ImageRecord.build("b.jpg", loaded=loaded, written=written, faces=[]))
    batch.add(ImageRecord.build("c.jpg", errors=["c.jpg: truncated file"]))
    batch.add_failure("d.png", ValueError("d.png: corrupt\nimage data"))
    d = batch.finish().to_dict()
    assert d["schema"] == BATCH_SCHEMA and d["version"] == facedeid.__version__
    assert d["n_processed"] == 2 and d["processed"] == ["a.jpg", "b.jpg"]
    assert d["faces"] == 2 and d["no_face_found"] == ["b.jpg"] and d["n_no_face"] == 1
    assert d["n_failed"] == 2
    assert d["failed"] == [{"path": "c.jpg", "error": "c.jpg: truncated file"},
                           {"path": "d.png", "error": "d.png: corrupt image data"}]
    assert d["finished"] is not None and d["finished"] >= d["started"]
    write_record(tmp_path / "batch.json", batch)
    assert read_record(tmp_path / "batch.json")["n_failed"] == 2


def test_keep_metadata_record(tmp_path):
    src = gps_jpeg(tmp_path / "k.jpg")
    loaded = read_image(src)
    written = write_image(tmp_path / "k_out.jpg", loaded.pixels, like=loaded, keep_metadata=True)
    d = ImageRecord.build(src, loaded=loaded, written=written, keep_metadata=True).to_dict()
    assert d["metadata"]["policy"] == "keep-allowlist"
    assert "exif:Make" in d["metadata"]["kept"] and "gps" in d["metadata"]["removed"]
    assert d["metadata"]["output_identifying"] == []


def test_records_hold_reading_notes(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 3] = 100
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, "PNG")
    (tmp_path / "t.png").write_bytes(buf.getvalue())
    loaded = read_image(tmp_path / "t.png")
    written = write_image(tmp_path / "t.jpg", loaded.pixels, like=loaded)
    d = ImageRecord.build("t.png", loaded=loaded, written=written).to_dict()
    assert any("alpha flattened" in n for n in d["notes"])
