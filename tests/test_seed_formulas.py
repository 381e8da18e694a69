"""Seed 000 (modified averaging, and its recovery) and seed 001 (Pythagorean fusion)."""

from __future__ import annotations

import numpy as np
import pytest

from facedeid.errors import InputError
from facedeid.landmarks.align import landmark_mask
from facedeid.methods import get_method
from facedeid.methods.base import CannotPaint
from facedeid.methods.seed_formulas import (
    SEED000_MAX,
    aligned_key_from_photo,
    modified_average,
    pythagorean,
    recover_face,
    recover_modified_average,
    to_gray,
)
from facedeid.pipeline import Anonymizer


@pytest.fixture(scope="module")
def lfw_pair(data_dir):
    """Two real LFW people (evaluation identities) with their 68 landmarks."""
    from facedeid.detect import get_detector
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.landmarks.dlib68 import Dlib68Predictor

    det, pred = get_detector("default"), Dlib68Predictor()
    out = []
    for rel in ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Abdullah/Abdullah_0001.jpg"):
        rgb = load_rgb(data_dir / "lfw" / "images" / rel)
        face = max(det.detect(rgb), key=lambda f: f.area)
        out.append((rgb, face.replace(landmarks68=pred.predict(rgb, face))))
    return out


def _psnr(a, b, mask):
    err = ((a.astype(float) - b.astype(float))[mask] ** 2).mean()
    return 10 * np.log10(255.0 ** 2 / err)


# ---------------------------------------------------------------- formulas, hand-computed


def test_seed000_formula_hand_computed():
    main = np.array([[0.0, 3.0, 100.0, 50.0, 255.0]])
    db = np.array([[0.0, 1.0, 96.0, 50.0, 255.0]])
    # sqrt(0)=0; sqrt(4)=2 -> 2/2*15=15; sqrt(196)=14 -> 105; sqrt(100)=10 -> 75; sqrt(510)/2*15
    np.testing.assert_allclose(modified_average(db, main), [[0, 15, 105, 75, 169.3738470]], atol=1e-6)
    assert SEED000_MAX == pytest.approx(169.3738470) and SEED000_MAX < 255  # never needs clipping
    # recovery ((2*deid)/15)^2 - main: (210/15)^2 - 100 = 96; (150/15)^2 - 50 = 50
    np.testing.assert_allclose(recover_modified_average([[105.0, 75.0]], [[100.0, 50.0]]), [[96, 50]])
    # exact on unrounded values, for every pair of 8-bit levels
    a, b = np.meshgrid(np.arange(256.0), np.arange(256.0))
    np.testing.assert_allclose(recover_modified_average(modified_average(a, b), b), a, atol=1e-9)
    # rounded to integers (as published): db=200, main=55 -> 7.5*sqrt(255)=119.76 -> 120 ->
    # (240/15)^2 - 55 = 201: off by one; the error bound sqrt(main+db)/7.5 + 1/56 holds everywhere
    assert recover_modified_average(np.rint(modified_average(200.0, 55.0)), 55.0) == 201.0
    err = np.abs(recover_modified_average(np.rint(modified_average(a, b)), b) - a)
    assert err.max() <= np.sqrt(510) / 7.5 + 1 / 56 and err.max() > 2.5
    # recovery never leaves 0..255 (rounding can push it below 0)
    assert recover_modified_average([[1.0]], [[0.0]]).item() == 0.0 + (2 / 15) ** 2
    assert recover_modified_average([[0.0]], [[30.0]]).item() == 0.0


def test_seed000_mismatched_key_is_a_clear_error():
    with pytest.raises(InputError, match="same size"):
        modified_average(np.zeros((128, 128, 3)), np.zeros((64, 64, 3)))
    with pytest.raises(InputError, match="same size"):
        recover_modified_average(np.zeros((128, 128)), np.zeros((128, 127)))
    with pytest.raises(ValueError, match="8-bit"):
        modified_average(np.full((2, 2), 300.0), np.zeros((2, 2)))


def test_seed001_formula_hand_computed():
    # sqrt(30^2 + 40^2) = 50 -> 25; sqrt(60^2 + 80^2) = 100 -> 50; 255, 255 -> 180.31
    np.testing.assert_allclose(pythagorean([[30.0, 60.0, 255.0, 0.0]], [[40.0, 80.0, 255.0, 0.0]]),
                               [[25.0, 50.0, 180.3122292, 0.0]], atol=1e-6)
    # equal pixels are darkened by 1/sqrt(2) (the seed divides by 2, not sqrt(2))
    assert pythagorean([[100.0]], [[100.0]]).item() == pytest.approx(70.7106781)
    assert pythagorean([[100.0]], [[100.0]], divisor=np.sqrt(2)).item() == pytest.approx(100.0)
    # per channel on colour, and the seed's gray conversion (OpenCV's BGR2GRAY weights)
    rgb1 = np.array([[[30.0, 60.0, 90.0]]])
    rgb2 = np.array([[[40.0, 80.0, 120.0]]])
    np.testing.assert_allclose(pythagorean(rgb1, rgb2), [[[25.0, 50.0, 75.0]]])
    assert to_gray([[[10.0, 20.0, 30.0]]]).item() == pytest.approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30)
    with pytest.raises(InputError):
        pythagorean(np.zeros((4, 4)), np.zeros((5, 4)))


# ---------------------------------------------------------------- methods end to end


def test_modified_averaging_end_to_end_and_recovery(lfw_pair, tmp_path):
    from facedeid.io.images import write_image

    (rgb, face), (other, oface) = lfw_pair
    key = aligned_key_from_photo(other, oface.landmarks68, 128)
    key_file = tmp_path / "key.png"
    write_image(key_file, key)
    anon = Anonymizer(method="modified-averaging", key=str(key_file))
    res = anon.anonymize(rgb, faces=[face])
    rec = res.record["faces"][0]
    assert rec["method"] == "modified-averaging" and "fallback" not in rec
    mask = landmark_mask(face.landmarks68, rgb.shape[:2], smooth=0, region="face_outline") > 0
    deid_psnr = _psnr(res.image, rgb, mask)
    assert deid_psnr < 22  # the face really changed
    # pixels inside stay within the formula's range: <= 169.4 (plus the smoothed edge)
    core = landmark_mask(face.landmarks68, rgb.shape[:2], region="face_outline") > 0.999
    assert res.image[core].max() <= 170
    # recovery with the key and the landmarks from the audit record
    lm = np.array(rec["landmarks68"])
    back = recover_face(res.image, lm, key=str(key_file))
    assert _psnr(back, rgb, mask) > 28 > deid_psnr + 6
    # the wrong key recovers something else
    wrong = recover_face(res.image, lm, key="mean")
    assert _psnr(wrong, rgb, mask) < _psnr(back, rgb, mask) - 5


def test_modified_averaging_bad_key(lfw_pair, tmp_path):
    from facedeid.io.images import write_image

    rgb, face = lfw_pair[0]
    small = tmp_path / "small.png"
    write_image(small, np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="64x64 pixels but the aligned frame is 128x128"):
        Anonymizer(method="modified-averaging", key=str(small)).anonymize(rgb, faces=[face])
    with pytest.raises(InputError, match="not found"):
        Anonymizer(method="modified-averaging", key=str(tmp_path / "nope.png")).anonymize(rgb, faces=[face])
    with pytest.raises(ValueError, match="recovered"):
        Anonymizer(method="modified-averaging", key="pool").anonymize(rgb, faces=[face])


@pytest.mark.parametrize("params", [{"second": "mean"}, {"second": "mean", "mode": "color"},
                                    {"second": "GALLERY"}])
def test_pythagorean_end_to_end(lfw_pair, tmp_path, params):
    from facedeid.io.images import write_image

    (rgb, face), (other, _) = lfw_pair
    if params["second"] == "GALLERY":
        write_image(tmp_path / "g1.jpg", other)
        params = {"second": str(tmp_path)}
    res = Anonymizer(method="pythagorean", seed=1, **params).anonymize(rgb, faces=[face])
    core = landmark_mask(face.landmarks68, rgb.shape[:2], region="face_outline") > 0.999
    out = res.image[core].astype(int)
    assert out.max() <= 181  # sqrt(255^2 + 255^2) / 2
    if params.get("mode", "gray") == "gray":
        assert np.abs(out[:, 0] - out[:, 1]).max() <= 1 and np.abs(out[:, 1] - out[:, 2]).max() <= 1
    else:
        assert np.abs(out[:, 0] - out[:, 2]).mean() > 5  # colour kept per channel
    outside = landmark_mask(face.landmarks68, rgb.shape[:2], region="face_outline") == 0
    np.testing.assert_array_equal(res.image[outside], rgb[outside])


def test_no_landmarks_falls_back(lfw_pair):
    rgb, face = lfw_pair[0]
    bare = face.replace(landmarks68=None)
    with pytest.raises(CannotPaint, match="landmarks"):
        get_method("pythagorean")(rgb, bare, dict(get_method("pythagorean").defaults))
    # the pipeline: no landmarks (as if the predictor failed) -> blackout (the default fallback)
    anon = Anonymizer(method="modified-averaging")
    anon.add_landmarks = lambda image, faces: faces  # the predictor finds nothing
    res = anon.anonymize(rgb, faces=[bare])
    rec = res.record["faces"][0]
    assert rec["method"] == "blackout" and "landmarks" in rec["fallback"]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    assert (res.image[(y1 + y2) // 2, (x1 + x2) // 2] == 0).all()


def test_gray_and_16_bit_crops(lfw_pair):
    rgb, face = lfw_pair[0]
    m = get_method("modified-averaging")
    p = dict(m.defaults)
    gray = to_gray(rgb).round().astype(np.uint8)
    g_out = m(gray, face, p)
    w_out = m(rgb.astype(np.uint16) * 257, face, p)
    c_out = m(rgb, face, p)
    assert g_out.shape == gray.shape and w_out.dtype == np.uint16
    assert np.abs(w_out.astype(float) / 257 - c_out).max() <= 1.0
    # gray: the formula on the gray face, i.e. close to the colour result's luma
    core = landmark_mask(face.landmarks68, rgb.shape[:2], region="face_outline") > 0.999
    assert (g_out[core] != gray[core]).mean() > 0.9
    assert np.abs(g_out[core].astype(float) - to_gray(c_out)[core]).mean() < 3.0
