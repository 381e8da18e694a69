"""Alignment to the canonical frame, piecewise-affine (shape-free) warps, landmark masks, paste."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedeid.facemodel import load_face_model
from facedeid.landmarks.align import (
    FACE_CENTER_Y,
    FACE_FRACTION,
    affine_matrix,
    align_face,
    apply_aligned,
    apply_shape_free,
    blend,
    canonical_landmarks,
    invert_matrix,
    landmark_mask,
    piecewise_affine_warp,
    shape_free,
    similarity_matrix,
    transform_points,
    warp_back,
    warp_texture_to,
)

LFW_SAMPLES = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Abdullah/Abdullah_0003.jpg",
               "Juanes/Juanes_0002.jpg"]  # pair identities: not in the face model


@pytest.fixture(scope="module")
def lfw_faces(data_dir):
    """A few real LFW faces with their 68 landmarks (default detector + dlib)."""
    from facedeid.detect import get_detector
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.landmarks.dlib68 import Dlib68Predictor

    det, pred = get_detector("default"), Dlib68Predictor()
    out = []
    for rel in LFW_SAMPLES:
        rgb = load_rgb(data_dir / "lfw" / "images" / rel)
        faces = det.detect(rgb)
        face = min(faces, key=lambda f: np.hypot(f.center[0] - 125, f.center[1] - 125))
        out.append((rgb, pred.predict(rgb, face)))
    return out


# ---------------------------------------------------------------- transforms


def test_similarity_and_affine_recover_known_transforms():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (68, 2))
    ang, s, t = 0.3, 1.7, np.array([12.0, -5.0])
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ rot.T + t
    m = similarity_matrix(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-7)
    aff = np.array([[1.2, 0.3, 4.0], [-0.1, 0.8, 7.0]])
    dst2 = transform_points(aff, src)
    np.testing.assert_allclose(affine_matrix(src, dst2), aff, atol=1e-9)
    # a similarity cannot shear: the least-squares fit differs from the affine one
    assert np.abs(similarity_matrix(src, dst2) - aff).max() > 0.05
    back = transform_points(invert_matrix(m), transform_points(m, src))
    np.testing.assert_allclose(back, src, atol=1e-9)


def test_degenerate_and_bad_landmarks_are_errors():
    with pytest.raises(ValueError, match="coincide"):
        similarity_matrix(np.ones((68, 2)), np.zeros((68, 2)))
    with pytest.raises(ValueError, match="collinear"):
        affine_matrix([[0, 0], [1, 1], [2, 2]], [[0, 0], [1, 0], [2, 0]])
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="finite"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.full((68, 2), np.nan))
    pts = canonical_landmarks(64)
    with pytest.raises(ValueError, match="transform"):
        align_face(np.zeros((64, 64, 3), np.uint8), pts, 64, transform="projective")
    with pytest.raises(ValueError, match="size"):
        canonical_landmarks(8)


def test_canonical_frame_layout():
    for size in (64, 128, 256):
        pts = canonical_landmarks(size)
        assert pts.shape == (68, 2)
        unit = (pts + 0.5) / size
        lo, hi = unit.min(axis=0), unit.max(axis=0)
        assert max(hi - lo) == pytest.approx(FACE_FRACTION, abs=1e-9)
        np.testing.assert_allclose((lo + hi) / 2, [0.5, FACE_CENTER_Y], atol=1e-9)
        eye_r, eye_l = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
        assert abs(eye_r[1] - eye_l[1]) < 1e-6 * size and eye_r[0] < eye_l[0]
        assert pts[8, 1] > pts[33, 1] > pts[27, 1]  # chin below nose tip below nose bridge
    np.testing.assert_allclose(canonical_landmarks(128) + 0.5, 2 * (canonical_landmarks(64) + 0.5))
    meta = load_face_model().meta
    assert meta["n_faces"] >= 1000  # an average over many people, not a template of one


# ---------------------------------------------------------------- round trips on real faces


def _mark(rgb, pts, radius=2):
    """A copy with small white discs at ``pts`` (on a darkened image, so they stand out)."""
    out = (rgb // 3).copy()
    for x, y in pts:
        cv2.circle(out, (int(round(x * 8)), int(round(y * 8))), radius * 8, (255, 255, 255), -1,
                   lineType=cv2.LINE_AA, shift=3)
    return out


def _find(img, guess, win=6):
    """Intensity-weighted centroid of the bright disc near ``guess``."""
    g = img.astype(np.float64).mean(axis=2) if img.ndim == 3 else img.astype(np.float64)
    x0, y0 = int(round(guess[0])), int(round(guess[1]))
    sub = g[y0 - win:y0 + win + 1, x0 - win:x0 + win + 1]
    w = np.clip(sub - 140, 0, None)
    ys, xs = np.mgrid[y0 - win:y0 + win + 1, x0 - win:x0 + win + 1]
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


# points far enough apart for the disc test: jaw ends, eye corners, nose tip, mouth corners, chin
MARKS = [0, 16, 36, 45, 30, 48, 54, 8]  # far apart (a brow tip is ~9 px from an eye corner)


@pytest.mark.parametrize("transform", ["similarity", "affine"])
def test_alignment_round_trip_within_one_pixel(lfw_faces, transform):
    for rgb, lm in lfw_faces:
        marked = _mark(rgb, lm[MARKS])
        al = align_face(marked, lm, size=256, transform=transform)
        # the image warp and the point transform agree: each disc lies where its landmark maps
        for i, p in zip(MARKS, al.landmarks[MARKS]):
            assert np.hypot(*(_find(al.image, p) - p)) < 1.0, (transform, i)
        # the inverse warp puts every disc back on its original landmark
        back = warp_back(al.image, al.matrix, rgb.shape[:2])
        for i, p in zip(MARKS, lm[MARKS]):
            assert np.hypot(*(_find(back, p) - p)) < 1.0, (transform, i)
        if transform == "similarity":  # the aligned face sits on the mean shape (least squares)
            resid = np.hypot(*(al.landmarks - canonical_landmarks(256)).T)
            assert np.median(resid) < 0.06 * 256


def test_pixels_survive_align_and_warp_back(lfw_faces):
    rgb, lm = lfw_faces[0]
    al = align_face(rgb, lm, size=256)
    back = warp_back(al.image, al.matrix, rgb.shape[:2])
    inside = landmark_mask(lm, rgb.shape[:2], smooth=0) > 0
    err = np.abs(back.astype(float) - rgb.astype(float))[inside]
    assert err.mean() < 4.0  # two bilinear resamplings, no geometric error


def test_piecewise_affine_round_trip(lfw_faces):
    for rgb, lm in lfw_faces:
        marked = _mark(rgb, lm[MARKS])
        tex = shape_free(marked, lm, 256)
        canon = canonical_landmarks(256)
        # every landmark lands on its mean-shape vertex: the disc drawn there is under it
        # (its centroid is not a fair test here: the triangles meeting at a vertex stretch it unevenly)
        for i in MARKS:
            x, y = np.rint(canon[i]).astype(int)
            assert tex[y, x].min() > 200, i
        back, cov = warp_texture_to(tex, lm, rgb.shape[:2], return_coverage=True)
        for i in MARKS:
            assert np.hypot(*(_find(back, lm[i]) - lm[i])) < 1.0, i
        inside = landmark_mask(lm, rgb.shape[:2], smooth=0) > 0
        assert cov[inside].min() == 1.0
        err = np.abs(back.astype(float) - marked.astype(float))[inside]
        assert err.mean() < 5.0


def test_piecewise_affine_warp_maps_triangles_affinely():
    # a pure translation of all points is a translation of the image
    img = np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)
    src = np.array([[0, 0], [39, 0], [39, 39], [0, 39], [20, 20]], float)
    out, cov = piecewise_affine_warp(img, src, src + [3, 0], (40, 40), return_coverage=True)
    np.testing.assert_array_equal(out[:, 4:39], img[:, 1:36])
    assert cov[:, :3].sum() == 0 and (out[:, :3] == 0).all()


def test_shape_free_keeps_dtype_and_channels(lfw_faces):
    rgb, lm = lfw_faces[1]
    for img in (rgb, rgb[..., 0].copy(), rgb.astype(np.uint16) * 257):
        tex = shape_free(img, lm, 64)
        assert tex.shape == (64, 64) + img.shape[2:] and tex.dtype == img.dtype


# ---------------------------------------------------------------- mask and paste


def test_landmark_mask_is_seed004_hull_with_adaptive_smoothing(lfw_faces):
    from facedeid.composite import polygon_mask
    from facedeid.landmarks.regions import region_polygon

    rgb, lm = lfw_faces[0]
    hw = rgb.shape[:2]
    hard = landmark_mask(lm, hw, smooth=0)
    ref = polygon_mask(hw[0], hw[1], region_polygon(lm, "face_hull") + 0.5)
    np.testing.assert_array_equal(hard > 0.5, ref)
    soft = landmark_mask(lm, hw)
    c = lm[30].astype(int)
    assert soft[c[1], c[0]] == pytest.approx(1.0, abs=1e-3)  # nose tip: fully inside
    assert soft[5, 5] == 0.0
    edge = (hard > 0) & ~(cv2.erode(hard, np.ones((3, 3))) > 0)
    assert 0.2 < soft[edge].mean() < 0.8  # the boundary is soft, around one half
    # adaptive: twice the face -> twice the blur width (count of partial pixels ~ doubles)
    big = landmark_mask(lm * 2, (hw[0] * 2, hw[1] * 2))
    part = lambda m: ((m > 0.05) & (m < 0.95)).sum()  # noqa: E731
    assert 3.0 < part(big) / part(soft) < 5.0
    outline = landmark_mask(lm, hw, smooth=0, region="face_outline")
    assert outline[int(lm[8, 1]) - 2, int(lm[8, 0])] == 1.0 and hard[int(lm[8, 1]) - 2, int(lm[8, 0])] == 0
    with pytest.raises(ValueError, match="region"):
        landmark_mask(lm, hw, region="eyes")


def test_blend_exact_at_zero_and_one_and_keeps_alpha():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (20, 30, 4), dtype=np.uint8)
    over = rng.integers(0, 255, (20, 30, 4), dtype=np.uint8)
    a = np.zeros((20, 30))
    a[:, 10:20] = 0.5
    a[:, 20:] = 1.0
    out = blend(base, over, a)
    np.testing.assert_array_equal(out[:, :10], base[:, :10])
    np.testing.assert_array_equal(out[:, 20:, :3], over[:, 20:, :3])
    np.testing.assert_array_equal(out[..., 3], base[..., 3])
    mid = np.rint((base[:, 10:20, :3].astype(float) + over[:, 10:20, :3]) / 2)
    assert np.abs(out[:, 10:20, :3] - mid).max() <= 1
    with pytest.raises(ValueError):
        blend(base, over[:10], a)


def test_apply_helpers_change_only_the_masked_face(lfw_faces):
    rgb, lm = lfw_faces[2]
    mask = landmark_mask(lm, rgb.shape[:2])
    for out in (apply_aligned(rgb, lm, lambda a: 255 - a, size=128),
                apply_shape_free(rgb, lm, lambda t: 255 - t, size=64)):
        assert out.shape == rgb.shape and out.dtype == rgb.dtype
        np.testing.assert_array_equal(out[mask == 0], rgb[mask == 0])
        inner = mask > 0.99
        assert np.abs(out[inner].astype(int) + rgb[inner] - 255).mean() < 12  # inverted inside
