"""68-point landmarks: dlib predictor and its box adaptation, named regions, visualisation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedeid.errors import UnknownNameError
from facedeid.landmarks import (
    COMPOSITES,
    REGIONS,
    Dlib68Predictor,
    box_from_landmarks5,
    draw_landmarks,
    region_names,
    region_points,
    region_polygon,
    region_polygons,
)
from facedeid.landmarks.regions import eyes_band_corners, seed004_side_points
from facedeid.landmarks.visualize import SEED_COLORS
from facedeid.models import model_path
from facedeid.types import Face

dlib = pytest.importorskip("dlib")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def predictor() -> Dlib68Predictor:
    return Dlib68Predictor()


@pytest.fixture(scope="module")
def hog():
    return dlib.get_frontal_face_detector()


def hog_faces(hog, rgb) -> list[Face]:
    """dlib HOG detections, best score first (dlib's own convention: inclusive right/bottom)."""
    rects, scores, _ = hog.run(rgb, 1, 0.0)
    order = np.argsort(scores)[::-1]
    return [Face((rects[i].left(), rects[i].top(), rects[i].right() + 1, rects[i].bottom() + 1),
                 score=scores[i], detector="dlib-hog") for i in order]


@pytest.fixture(scope="module")
def astro_face(astronaut, hog, predictor) -> Face:
    face = hog_faces(hog, astronaut)[0]
    assert 150 < face.center[0] < 300 and 60 < face.center[1] < 200  # her face, not the flag
    return predictor.add_landmarks(astronaut, [face])[0]


def five_from_68(pts: np.ndarray) -> np.ndarray:
    """Detector-style 5 points (eye centres, nose tip, mouth corners) from 68 points."""
    return np.array([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])


def nme(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a - ref, axis=1).mean() / np.linalg.norm(ref[36] - ref[45]))


def coded_landmarks() -> np.ndarray:
    """Point i = (i, 1000 + i): the index can be read back from the coordinates."""
    i = np.arange(68, dtype=float)
    return np.stack([i, 1000 + i], axis=1)


# ---------------------------------------------------------------- regions


def test_region_index_ranges_exact():
    assert REGIONS == {
        "jaw": (0, 17), "right_eyebrow": (17, 22), "left_eyebrow": (22, 27), "nose": (27, 36),
        "right_eye": (36, 42), "left_eye": (42, 48), "mouth": (48, 68),
    }
    pts = coded_landmarks()
    for name, (a, b) in REGIONS.items():
        assert region_points(pts, name)[:, 0].tolist() == list(range(a, b))
    assert region_points(pts, "eyes")[:, 0].tolist() == list(range(36, 48))
    assert region_points(pts, "eyebrows")[:, 0].tolist() == list(range(17, 27))
    assert region_points(pts, "face_outline")[:, 0].tolist() == list(range(0, 27))
    # the basic regions tile 0..67 exactly once
    covered = sorted(i for a, b in REGIONS.values() for i in range(a, b))
    assert covered == list(range(68))


def test_unknown_region_lists_choices():
    with pytest.raises(UnknownNameError) as err:
        region_points(coded_landmarks(), "ears")
    msg = str(err.value)
    assert "ears" in msg and all(n in msg for n in region_names())
    with pytest.raises(KeyError):  # UnknownNameError is also a KeyError
        region_polygon(coded_landmarks(), "ears")
    with pytest.raises(ValueError):
        region_points(np.zeros((5, 2)), "jaw")


def test_face_hull_follows_seed_004(astro_face):
    pts = astro_face.landmarks68
    hull_pts = region_points(pts, "face_hull")
    assert hull_pts.shape == (25, 2)
    np.testing.assert_array_equal(hull_pts[:10], pts[17:27])
    np.testing.assert_array_equal(hull_pts[10:17], pts[[54, 55, 56, 57, 58, 59, 48]])
    # the printed recursion, step by step, for both sides
    for p0, p5, got in ((pts[17], pts[48], hull_pts[17:21]), (pts[26], pts[54], hull_pts[21:25])):
        x, expect = p0[0], []
        for i in range(1, 5):
            x = x + i / 15 * (p5[0] - p0[0])
            expect.append((x, p0[1] + i / 5 * (p5[1] - p0[1])))
        np.testing.assert_allclose(got, expect)
        # the points bow outwards: on the far side of the chord from the face centre
        centre = pts[27:36].mean(0)
        chord = p5 - p0
        side = lambda q: np.sign(chord[0] * (q[1] - p0[1]) - chord[1] * (q[0] - p0[0]))  # noqa: E731
        assert all(side(q) == -side(centre) for q in got)
    # x_4 = x0 + 2/3 (x5 - x0): the closed form of the recursion
    s = seed004_side_points((0.0, 0.0), (30.0, 50.0))
    np.testing.assert_allclose(s[:, 0], [2, 6, 12, 20])
    np.testing.assert_allclose(s[:, 1], [10, 20, 30, 40])
    # the mask spans eyebrows to lower lip, not the chin
    poly = region_polygon(pts, "face_hull")
    assert poly[:, 1].min() == pytest.approx(pts[17:27, 1].min())
    assert poly[:, 1].max() == pytest.approx(pts[54:60, 1].max())
    assert poly[:, 1].max() < pts[8, 1]


def test_eyes_band_is_a_rectangle_covering_eyes_and_brows_and_follows_roll(astro_face):
    pts = astro_face.landmarks68
    corners = eyes_band_corners(pts)
    sides = np.roll(corners, -1, axis=0) - corners
    for a, b in zip(sides, np.roll(sides, -1, axis=0)):
        assert abs(float(a @ b)) < 1e-6 * float(a @ a + b @ b)  # right angles
    from facedeid.composite import polygon_mask

    m = polygon_mask(512, 512, corners)
    for x, y in np.vstack([pts[17:27], pts[36:48]]):
        assert m[int(y), int(x)]
    assert not m[int(pts[57, 1]), int(pts[57, 0])]  # mouth not covered
    # rotate the face 25 degrees: the band rotates with it
    c = pts.mean(0)
    t = np.deg2rad(25)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    turned = eyes_band_corners((pts - c) @ rot.T + c)
    np.testing.assert_allclose(turned, (corners - c) @ rot.T + c, atol=1e-6)


def test_polygons_are_convex_and_closed(astro_face):
    pts = astro_face.landmarks68
    for name in region_names():
        poly = region_polygon(pts, name)
        assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
        e = np.roll(poly, -1, axis=0) - poly
        f = np.roll(e, -1, axis=0)
        cross = e[:, 0] * f[:, 1] - e[:, 1] * f[:, 0]
        assert (cross >= -1e-9).all() or (cross <= 1e-9).all(), name
    assert len(region_polygons(pts, "eyes")) == 2
    assert len(region_polygons(pts, "eyebrows")) == 2
    assert len(region_polygons(pts, "mouth")) == 1
    assert set(COMPOSITES) <= set(region_names())


# ---------------------------------------------------------------- predictor


def test_predictor_is_lazy():
    p = Dlib68Predictor()
    assert p._predictor is None
    assert p.add_landmarks(np.zeros((10, 10, 3), np.uint8), []) == []
    assert p._predictor is None


def test_landmarks_on_a_real_face(astronaut, astro_face):
    pts = astro_face.landmarks68
    assert pts.shape == (68, 2)
    x1, y1, x2, y2 = astro_face.box
    w, h = astro_face.width, astro_face.height
    # all points in the box, grown by 15 % (the jaw reaches the box edge)
    assert (pts[:, 0] > x1 - 0.15 * w).all() and (pts[:, 0] < x2 + 0.15 * w).all()
    assert (pts[:, 1] > y1 - 0.15 * h).all() and (pts[:, 1] < y2 + 0.15 * h).all()
    # eyebrows above eyes above nose tip above mouth above chin; subject's right eye on the image left
    assert pts[17:27, 1].mean() < pts[36:48, 1].mean() < pts[33, 1] < pts[48:68, 1].mean() < pts[8, 1]
    assert pts[36:42, 0].mean() < pts[42:48, 0].mean()
    # eye centres agree with dlib's independent 5-point model (eye corners)
    sp5 = dlib.shape_predictor(str(model_path("dlib5")))
    r = dlib.rectangle(int(x1), int(y1), int(x2) - 1, int(y2) - 1)
    s5 = sp5(astronaut, r)
    p5 = np.array([(s5.part(i).x, s5.part(i).y) for i in range(5)], float)
    eyes5 = sorted([(p5[0] + p5[1]) / 2, (p5[2] + p5[3]) / 2], key=lambda p: p[0])
    iod = np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))
    assert np.linalg.norm(eyes5[0] - pts[36:42].mean(0)) < 0.1 * iod
    assert np.linalg.norm(eyes5[1] - pts[42:48].mean(0)) < 0.1 * iod


def test_add_landmarks_keeps_other_fields(astronaut, astro_face, predictor):
    f = Face(astro_face.box, score=0.7, detector="dlib-hog", face_id=3, extra={"a": 1})
    assert astro_face.score != 0.7
    (g,) = predictor.add_landmarks(astronaut, [f])
    assert g is not f and f.landmarks68 is None
    assert g.score == 0.7 and g.face_id == 3 and g.extra == {"a": 1} and g.box == f.box
    np.testing.assert_array_equal(g.landmarks68, astro_face.landmarks68)
    # other layouts are converted: gray and RGBA give (nearly) the same points
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert nme(predictor.predict(gray, f), astro_face.landmarks68) < 0.02
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(predictor.predict(rgba, f), astro_face.landmarks68)


def test_cnn_style_box_is_adapted_with_landmarks5(astronaut, astro_face, predictor):
    """A YuNet-like box (taller, higher) alone misplaces the points; with 5 points they come back."""
    ref = astro_face.landmarks68
    cx, cy = astro_face.center
    w = astro_face.width
    tall = (cx - 0.45 * w, cy - 0.75 * w, cx + 0.45 * w, cy + 0.55 * w)
    raw = predictor.predict(astronaut, Face(tall), refine=0)
    with5 = predictor.predict(astronaut, Face(tall, landmarks5=five_from_68(ref)))
    assert nme(with5, ref) < 0.03
    assert nme(with5, ref) < nme(raw, ref)
    # the derived box is close to the HOG box itself
    from facedeid.types import box_iou

    assert box_iou(box_from_landmarks5(five_from_68(ref)), astro_face.box) > 0.7


def test_refinement_without_landmarks5(astronaut, astro_face, predictor):
    ref = astro_face.landmarks68
    cx, cy = astro_face.center
    w = astro_face.width
    tall = Face((cx - 0.45 * w, cy - 0.75 * w, cx + 0.45 * w, cy + 0.55 * w))
    raw = nme(predictor.predict(astronaut, tall, refine=0), ref)
    refined = nme(predictor.predict(astronaut, tall, refine=2), ref)
    assert predictor.refine == 1 and Dlib68Predictor(refine=2).refine == 2
    assert refined < raw and refined < 0.04


def test_face_cut_by_the_image_border(astronaut, astro_face, predictor):
    """The left third of the face is outside the image: the visible points stay put."""
    cut = int(astro_face.box[0] + astro_face.width / 3)
    img = np.ascontiguousarray(astronaut[:, cut:])
    face = astro_face.transformed(dx=-cut).replace(landmarks68=None)
    assert face.box[0] < 0
    ref = astro_face.landmarks68
    iod = np.linalg.norm(ref[36] - ref[45])
    visible = ref[:, 0] > cut + 0.1 * iod

    def err(pts):
        return np.linalg.norm(pts + [cut, 0] - ref, axis=1)[visible].mean() / iod

    pts = predictor.predict(img, face)
    assert np.isfinite(pts).all() and err(pts) < 0.05
    # a HOG detector clips its box to the image; a clipped box is not square, so it is
    # refined instead of being trusted as a native HOG box
    clipped = face.clipped(img.shape[1], img.shape[0])
    assert not predictor.is_native(clipped) and predictor.is_native(astro_face)
    as_is = err(predictor.predict(img, clipped, refine=0))
    refined = err(predictor.predict(img, clipped))
    assert refined < as_is and refined < 0.05


@pytest.mark.data
def test_yunet_faces_on_lfw_match_hog_reference(data_dir, hog, predictor):
    """Real CNN detections (YuNet box + 5 points) give landmarks at HOG-box quality."""
    people = [ln.split("\t")[0] for ln in (data_dir / "lfw/peopleDevTrain.txt").read_text().splitlines()[1:]]
    files = [data_dir / f"lfw/images/{p}/{p}_0001.jpg" for p in people[:400:20]]
    yn = cv2.FaceDetectorYN.create(str(model_path("yunet")), "", (250, 250), 0.6, 0.3, 50)
    raw_err, adapted_err = [], []
    for path in files:
        bgr = cv2.imread(str(path))
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        ref_faces = hog_faces(hog, rgb)
        _, det = yn.detect(bgr)
        if not ref_faces or det is None:
            continue
        ref_face = ref_faces[0]
        d = max(det, key=lambda r: r[2] * r[3])
        box = (d[0], d[1], d[0] + d[2], d[1] + d[3])
        if ref_face.iou(Face(box)) < 0.3:
            continue
        ref = predictor.predict(rgb, ref_face)
        raw_err.append(nme(predictor.predict(rgb, Face(box), refine=0), ref))
        adapted_err.append(nme(predictor.predict(rgb, Face(box, landmarks5=d[4:14].reshape(5, 2))), ref))
    assert len(adapted_err) >= 15
    # held-out study (dlib68.py docstring): mean 0.013 vs 0.035 over 771 faces
    assert np.median(adapted_err) < 0.015
    assert np.mean(adapted_err) < 0.03
    assert np.mean(adapted_err) < 0.7 * np.mean(raw_err)


# ---------------------------------------------------------------- visualisation


def test_visualisation_paints_inside_hulls(astronaut, astro_face):
    out = draw_landmarks(astronaut, [astro_face], points=False)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    assert out is not astronaut
    pts = astro_face.landmarks68
    # region centres are coloured towards the region's colour
    for name in ("mouth", "right_eye", "left_eye", "nose", "right_eyebrow", "left_eyebrow"):
        a, b = REGIONS[name]
        x, y = np.round(pts[a:b].mean(0) - 0.5).astype(int)
        want = 0.75 * np.array(SEED_COLORS[name]) + 0.25 * astronaut[y, x]
        assert np.abs(out[y, x] - want).max() <= 2, name
    # far from every drawing nothing changes, bit for bit
    changed = (out != astronaut).any(axis=2)
    x1, y1, x2, y2 = astro_face.box
    assert not changed[:, : int(x1) - 20].any() and not changed[:, int(x2) + 20:].any()
    assert not changed[: int(pts[:, 1].min()) - 5].any()
    # most changed pixels lie inside the region hulls (or on the jaw line)
    from facedeid.composite import polygon_mask

    inside = np.zeros(changed.shape, np.uint8)
    for name in REGIONS:
        inside |= polygon_mask(*changed.shape, region_polygon(pts, name)).astype(np.uint8)
    near = cv2.dilate(inside, np.ones((5, 5), np.uint8)).astype(bool)  # line width + anti-aliasing
    assert (changed & near).sum() > 0.97 * changed.sum()
    for name in REGIONS:
        if name != "jaw":  # the jaw is a line, its hull is not filled
            assert changed[polygon_mask(*changed.shape, region_polygon(pts, name))].all(), name
    # distinct colours per region
    assert len(set(SEED_COLORS.values())) == len(SEED_COLORS)


def test_visualisation_options(astronaut, astro_face):
    none = draw_landmarks(astronaut, [astro_face], alpha=0.0, points=False)
    np.testing.assert_array_equal(none, astronaut)
    dots = draw_landmarks(astronaut, [astro_face], alpha=0.0, points=True)
    assert (dots != astronaut).any()
    no_lm = draw_landmarks(astronaut, [astro_face.replace(landmarks68=None)])
    np.testing.assert_array_equal(no_lm, astronaut)
    with pytest.raises(ValueError):
        draw_landmarks(astronaut, [astro_face], alpha=1.5)
    with pytest.raises(ValueError):
        draw_landmarks(astronaut, [astro_face], colors={"ears": (1, 2, 3)})
    red = draw_landmarks(astronaut, [astro_face], alpha=1.0, points=False, colors={"mouth": (255, 0, 0)})
    x, y = np.round(astro_face.landmarks68[48:68].mean(0) - 0.5).astype(int)
    assert tuple(red[y, x]) == (255, 0, 0)
