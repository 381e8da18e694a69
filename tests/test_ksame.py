"""The k-Same methods end to end on real LFW faces: grouping across a folder, the
average really is the group's, the shipped pool for a single photo, the gallery,
fallback for faces that cannot be aligned."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from facedeid.batch import assign_extras, encode_image
from facedeid.cli import main
from facedeid.io.images import read_image
from facedeid.ksame import faces as F
from facedeid.pipeline import Anonymizer
from facedeid.types import Face

N_PEOPLE = 20


def _lfw_people(data_dir: Path, n: int, offset: int = 0) -> list[Path]:
    """The first image of n different LFW people (a fixed, spread-out selection)."""
    root = data_dir / "lfw" / "images"
    people = sorted(p for p in root.iterdir() if p.is_dir())
    step = len(people) // (n + offset + 1)
    chosen = people[step * (offset + 1)::step][:n]
    return [sorted(p.glob("*.jpg"))[0] for p in chosen]


@pytest.fixture(scope="module")
def folder(data_dir: Path, tmp_path_factory) -> Path:
    """A folder of 20 LFW photos of 20 different people."""
    d = tmp_path_factory.mktemp("ksame") / "in"
    d.mkdir()
    for src in _lfw_people(data_dir, N_PEOPLE):
        shutil.copy(src, d / src.name)
    return d


@pytest.fixture(scope="module")
def encoded_faces(folder: Path):
    """Images and their faces with 68-point landmarks (detected once for all tests)."""
    anon = Anonymizer("ksame-m", seed=0)
    images = [read_image(p).pixels for p in sorted(folder.iterdir())]
    faces = [anon.add_landmarks(im, anon.detect(im)) for im in images]
    return images, faces


@pytest.mark.parametrize("method", ["ksame-pixel", "ksame-eigen", "ksame-m"])
def test_every_face_is_painted_with_the_average_of_its_group(method, encoded_faces):
    images, faces = encoded_faces
    k = 5
    anon = Anonymizer(method, strength=k, seed=0)
    enc = [encode_image(anon, im, f) for im, f in zip(images, faces)]
    extras = assign_extras(anon, enc)
    # group the painted faces by the group they were given, check the average
    by_group: dict[int, list[tuple[int, int]]] = {}
    for i, per_face in enumerate(extras):
        for j, extra in enumerate(per_face):
            if enc[i].samples[j] is None:
                continue
            assert extra["record"]["source"] == "set"
            assert extra["record"]["n_people"] >= k
            by_group.setdefault(extra["record"]["group"], []).append((i, j))
    n_samples = sum(s is not None for e in enc for s in e.samples)
    assert n_samples >= N_PEOPLE - 1                      # LFW: the subject's face, aligned
    assert sum(len(v) for v in by_group.values()) == n_samples   # every input covered once
    for members in by_group.values():
        assert len(members) >= k                          # >= k distinct inputs (one face each)
        target = extras[members[0][0]][members[0][1]]["target"]
        want = F.average([enc[i].samples[j] for i, j in members])
        for key, arr in want.items():
            np.testing.assert_allclose(target.data[key], arr, rtol=1e-5, atol=1e-5)
        for i, j in members:                              # all members share the same average
            assert extras[i][j]["target"] is target
    # and it is painted: the face changes, the image corners do not
    out = anon.anonymize(images[0], faces=faces[0], extras=extras[0])
    face = faces[0][0]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    diff = np.abs(out.image.astype(int) - images[0].astype(int))
    assert diff[y1:y2, x1:x2].mean() > 5
    assert diff[:20, :20].max() == 0
    assert out.record["faces"][0]["group"]["n_people"] >= k


def test_grouping_is_deterministic_given_the_seed(encoded_faces):
    images, faces = encoded_faces
    groups = []
    for _ in range(2):
        anon = Anonymizer("ksame-pixel", strength=4, seed=3)
        enc = [encode_image(anon, im, f) for im, f in zip(images, faces)]
        groups.append([[e.get("record", {}).get("group") for e in per] for per in
                       assign_extras(anon, enc)])
    assert groups[0] == groups[1]


def test_cli_folder_groups_across_all_images(folder: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    rc = main(["anonymize", str(folder), "-o", str(out), "--method", "ksame-m", "--k", "5",
               "--json", "-q"])
    assert rc == 0
    groups: dict[int, int] = {}
    for src in sorted(folder.iterdir()):
        rec = json.loads((out / (src.name + ".json")).read_text())
        assert rec["method"]["name"] == "ksame-m"
        for f in rec["faces"]:
            assert f["painted"] is True
            if f.get("fallback") is None:
                assert f["group"]["source"] == "set" and f["group"]["n_people"] >= 5
                groups[f["group"]["group"]] = groups.get(f["group"]["group"], 0) + 1
        before = read_image(src).pixels.astype(int)
        after = read_image(out / src.name).pixels.astype(int)
        assert after.shape == before.shape
        assert np.abs(after - before).max() > 40          # the face was replaced
    assert sum(groups.values()) >= N_PEOPLE - 1 and min(groups.values()) >= 5


def test_single_photo_uses_the_shipped_pool(data_dir: Path):
    import facedeid

    photo = read_image(_lfw_people(data_dir, 1, offset=30)[0]).pixels
    anon = Anonymizer("ksame-m", strength=10, seed=0)
    res = anon.anonymize(photo)
    subject = [f for f in res.record["faces"] if "group" in f]
    assert subject, res.record
    g = subject[0]["group"]
    assert g["source"] == "pool" and g["n_people"] >= 10
    # the pool is built from people excluded from the evaluation pairs, and every entry
    # averages >= k people: k=25 needs several entries
    res25 = Anonymizer("ksame-eigen", strength=25, seed=0).anonymize(photo)
    g25 = [f["group"] for f in res25.record["faces"] if "group" in f][0]
    assert g25["n_people"] >= 25 and len(g25["pool_entries"]) >= 3
    out = facedeid.anonymize(photo, method="ksame-pixel", strength=10)
    assert out.shape == photo.shape and np.abs(out.astype(int) - photo.astype(int)).max() > 40


def test_paint_without_extras_groups_the_image_alone(encoded_faces):
    """Video paints frame by frame through Anonymizer.paint: each frame's faces are
    completed by the pool there too (never the fallback for lack of a group)."""
    images, faces = encoded_faces
    anon = Anonymizer("ksame-m", strength=10, seed=0)
    out, records = anon.paint(images[0], faces[0])
    assert records[0]["method"] == "ksame-m" and records[0]["group"]["source"] == "pool"
    assert not np.array_equal(out, images[0])


def test_gallery_completes_groups_and_too_small_a_gallery_is_an_error(data_dir, folder, tmp_path,
                                                                      capsys):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for src in _lfw_people(data_dir, 3, offset=50):
        shutil.copy(src, gallery / src.name)
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(sorted(folder.iterdir())[0], one / "a.jpg")
    rc = main(["anonymize", str(one), "-o", str(tmp_path / "o1"), "--method", "ksame-pixel",
               "--k", "5", "--gallery", str(gallery), "-q"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "k=5" in err and "usable face(s) in 3 image(s)" in err and str(gallery) in err
    # a gallery large enough: the single face is grouped with k-1 gallery faces
    rc = main(["anonymize", str(one), "-o", str(tmp_path / "o2"), "--method", "ksame-pixel",
               "--k", "3", "--gallery", str(gallery), "--json", "-q"])
    assert rc == 0
    rec = json.loads((tmp_path / "o2" / "a.jpg.json").read_text())
    g = [f["group"] for f in rec["faces"] if f.get("group")][0]
    assert g["source"] == "set+gallery" and g["n_people"] >= 3 and g["n_gallery"] >= 2


def test_faces_without_usable_landmarks_get_the_fallback(encoded_faces, monkeypatch, caplog):
    images, faces = encoded_faces
    image = images[0]
    face = faces[0][0]
    # 1) no landmarks at all (the predictor fails): blackout, recorded
    anon = Anonymizer("ksame-m", strength=2, seed=0, fallback="blackout")
    monkeypatch.setattr(type(anon.predictor), "predict",
                        lambda self, rgb, f: (_ for _ in ()).throw(RuntimeError("no shape")))
    bare = Face(box=face.box, score=face.score, landmarks5=face.landmarks5)
    with caplog.at_level(logging.WARNING):
        res = anon.anonymize(image, faces=[bare])
    rec = res.record["faces"][0]
    assert rec["method"] == "blackout" and rec["fallback"] == "no 68-point landmarks"
    cx, cy = (int(v) for v in bare.center)
    assert (res.image[cy - 5:cy + 5, cx - 5:cx + 5] == 0).all()
    monkeypatch.undo()
    # 2) degenerate landmarks (all points the same): cannot be averaged -> fallback, not untouched
    flat = face.replace(landmarks68=np.tile(face.landmarks68.mean(axis=0), (68, 1)))
    anon = Anonymizer("ksame-pixel", strength=2, seed=0, fallback="pixelate")
    res = anon.anonymize(image, faces=[face, flat])
    recs = res.record["faces"]
    assert recs[0]["method"] == "ksame-pixel" and recs[0]["group"]["source"] == "pool"
    assert recs[1]["method"] == "pixelate" and "too small" in recs[1]["fallback"]


def test_bad_k_is_a_clear_error(encoded_faces):
    images, faces = encoded_faces
    with pytest.raises(ValueError, match="k must be a whole number"):
        Anonymizer("ksame-m", strength=0).anonymize(images[0], faces=faces[0])
    with pytest.raises(Exception, match="k=5000"):
        Anonymizer("ksame-m", strength=5000).anonymize(images[0], faces=faces[0])
