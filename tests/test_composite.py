"""Region masks, feathering and pasting (facedeid.composite)."""

from __future__ import annotations


import numpy as np
import pytest

from facedeid.composite import (
    SHAPES,
    crop_for,
    face_size,
    paint_face,
    paste,
    polygon_mask,
    region_mask,
    region_polygon_for,
)
from facedeid.errors import UnknownNameError
from facedeid.landmarks.regions import region_polygon
from facedeid.types import Face


def synthetic_landmarks(box) -> np.ndarray:
    """A plausible frontal 68-point layout inside ``box`` (mean-shape-like, no model needed)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    t = np.linspace(np.pi, 0, 17)
    jaw = np.stack([0.5 + 0.48 * np.cos(t), 0.35 + 0.62 * np.sin(t)], 1)
    brow_r = np.stack([np.linspace(0.12, 0.42, 5), [0.30, 0.25, 0.23, 0.24, 0.27]], 1)
    brow_l = np.stack([1 - brow_r[::-1, 0], brow_r[::-1, 1]], 1)
    nose = np.array([[.5, .38], [.5, .45], [.5, .52], [.5, .58], [.42, .62], [.46, .63], [.5, .64], [.54, .63], [.58, .62]])
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    eye_r = np.stack([0.30 + 0.08 * np.cos(np.pi - a), 0.38 + 0.03 * np.sin(a)], 1)
    eye_l = eye_r + [0.40, 0]
    b = np.linspace(0, 2 * np.pi, 13)[:-1]
    outer = np.stack([0.5 - 0.16 * np.cos(b), 0.78 - 0.06 * np.sin(b)], 1)
    c = np.linspace(0, 2 * np.pi, 9)[:-1]
    inner = np.stack([0.5 - 0.10 * np.cos(c), 0.78 - 0.02 * np.sin(c)], 1)
    pts = np.vstack([jaw, brow_r, brow_l, nose, eye_r, eye_l, outer, inner])
    assert pts.shape == (68, 2)
    return pts * [w, h] + [x1, y1]


def face_with_landmarks(box) -> Face:
    return Face(box, landmarks68=synthetic_landmarks(box))


def shoelace(poly) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return abs((x * np.roll(y, -1) - np.roll(x, -1) * y).sum()) / 2


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize("scale", [1.0, 1.3])
def test_mask_areas(scale):
    face = face_with_landmarks((100, 120, 220, 280))  # 120 x 160
    box_area = (120 * scale) * (160 * scale)
    m, bb = region_mask(600, 600, face, "box", scale, 0.0)
    assert m.sum() == pytest.approx(box_area, rel=0.02)
    assert set(np.unique(m)) <= {0.0, 1.0} and m.dtype == np.float32
    assert m.shape == (bb[3] - bb[1], bb[2] - bb[0])
    m, _ = region_mask(600, 600, face, "ellipse", scale, 0.0)
    assert m.sum() == pytest.approx(np.pi / 4 * box_area, rel=0.02)
    m, bb = region_mask(600, 600, face, "hull", scale, 0.0)
    assert m.sum() == pytest.approx(shoelace(region_polygon(face.landmarks68, "face_hull")) * scale ** 2, rel=0.03)
    poly = region_polygon_for(face, scale)
    assert bb[0] <= poly[:, 0].min() and bb[2] >= poly[:, 0].max()


def test_box_mask_pixel_convention():
    face = Face((10, 20, 30, 50))
    m, bb = region_mask(100, 100, face, "box", 1.0, 0.0)
    assert bb == (10, 20, 30, 50) and m.all()


def test_bbox_is_clipped_at_image_borders():
    face = face_with_landmarks((-40, -30, 60, 90))
    for shape in SHAPES:
        m, (x0, y0, x1, y1) = region_mask(80, 50, face, shape, 1.3, 0.2)
        assert 0 <= x0 <= x1 <= 50 and 0 <= y0 <= y1 <= 80
        assert m.shape == (y1 - y0, x1 - x0)
        assert x0 == 0 and y0 == 0
    far = Face((500, 500, 600, 600))
    m, bb = region_mask(100, 100, far, "ellipse", 1.3, 0.1)
    assert m.size == 0 and bb[0] == bb[2]
    img = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    np.testing.assert_array_equal(paste(img, img[bb[1]:bb[3], bb[0]:bb[2]], m, bb), img)


@pytest.mark.parametrize("shape", SHAPES)
def test_feather_extends_outwards_and_is_monotonic(shape):
    face = face_with_landmarks((200, 200, 300, 330))
    H = W = 600
    hard, hb = region_mask(H, W, face, shape, 1.2, 0.0)
    soft, sb = region_mask(H, W, face, shape, 1.2, 0.15)
    full_h, full_s = np.zeros((H, W)), np.zeros((H, W))
    full_h[hb[1]:hb[3], hb[0]:hb[2]] = hard
    full_s[sb[1]:sb[3], sb[0]:sb[2]] = soft
    # the whole nominal region stays fully painted
    assert (full_s[full_h == 1] == 1).all()
    # the soft edge is outside it and at most f wide
    band = (full_s > 0) & (full_s < 1)
    assert band.any() and not (band & (full_h == 1)).any()
    f = 0.15 * face_size(face)
    ys, xs = np.nonzero(full_s > 0)
    ys_h, xs_h = np.nonzero(full_h > 0)
    assert xs.min() >= xs_h.min() - f - 1 and xs.max() <= xs_h.max() + f + 1
    assert ys.min() >= ys_h.min() - f - 1 and ys.max() <= ys_h.max() + f + 1
    assert (full_s >= full_h).all() and 0 <= full_s.min() and full_s.max() == 1
    # monotonic: the distance to a convex region only grows along a row (column)
    # walked outwards from an inside pixel, so the mask never increases there
    for grid_h, grid_s in ((full_h, full_s), (full_h.T, full_s.T)):
        for row_h, row_s in zip(grid_h, grid_s):
            inside = np.flatnonzero(row_h == 1)
            if len(inside) == 0:
                continue
            mid = inside[len(inside) // 2]
            assert (np.diff(row_s[mid:]) <= 1e-6).all()
            assert (np.diff(row_s[: mid + 1]) >= -1e-6).all()
    # wider feather: mask is pointwise larger
    wider, wb = region_mask(H, W, face, shape, 1.2, 0.3)
    full_w = np.zeros((H, W))
    full_w[wb[1]:wb[3], wb[0]:wb[2]] = wider
    assert (full_w >= full_s - 1e-6).all()


def test_bad_arguments():
    face = Face((10, 10, 50, 50))
    with pytest.raises(ValueError, match="68-point"):
        region_mask(100, 100, face, "hull")
    with pytest.raises(UnknownNameError, match="ellipse"):
        region_mask(100, 100, face, "circle")
    with pytest.raises(ValueError):
        region_mask(100, 100, face, "box", mask_scale=0)
    with pytest.raises(ValueError):
        region_mask(100, 100, face, "box", feather=-0.1)
    face_lm = face_with_landmarks((10, 10, 50, 50))
    m1, _ = region_mask(100, 100, face_lm, "hull", 1.0, region="face_hull")
    m2, _ = region_mask(100, 100, face_lm, "hull", 1.0, region="face_outline")
    assert m2.sum() > 1.3 * m1.sum()  # the outline also covers the chin


def test_polygon_mask_matches_pixel_centres():
    sq = np.array([[2, 3], [7, 3], [7, 9], [2, 9]], float)
    m = polygon_mask(12, 12, sq)
    assert m.sum() == 5 * 6 and m[3:9, 2:7].all()
    assert not polygon_mask(12, 12, sq + 100).any()


# ---------------------------------------------------------------- paste


def test_paste_exact_values():
    img = np.array([[10, 20, 30, 40]], np.uint8)
    painted = np.array([[110, 120, 130, 140]], np.uint8)
    mask = np.array([[0.0, 1.0, 0.5, 0.25]], np.float32)
    out = paste(img, painted, mask, (0, 0, 4, 1))
    assert out.tolist() == [[10, 120, 80, 65]]
    assert img.tolist() == [[10, 20, 30, 40]]  # input untouched
    u16 = paste(img.astype(np.uint16) * 257, painted.astype(np.uint16) * 257, mask, (0, 0, 4, 1))
    assert u16.tolist() == [[2570, 30840, 20560, 16705]]
    with pytest.raises(ValueError):
        paste(img, painted[:, :3], mask, (0, 0, 4, 1))
    with pytest.raises(ValueError):
        paste(img, painted.astype(np.uint16), mask, (0, 0, 4, 1))
    with pytest.raises(ValueError):
        paste(img, painted, mask[:, :3], (0, 0, 4, 1))


def test_crop_for():
    img = np.arange(100 * 80 * 3, dtype=np.uint16).reshape(100, 80, 3)
    face = Face((20, 30, 40, 60), landmarks5=[[25, 40], [35, 40], [30, 45], [26, 52], [34, 52]])
    crop, fc = crop_for(img, face, (10, 20, 50, 70))
    np.testing.assert_array_equal(crop, img[20:70, 10:50])
    crop[...] = 0
    assert img[20, 10, 0] != 0 or img[20, 10, 1] != 0  # a copy
    assert fc.box == (10, 10, 30, 40)
    np.testing.assert_allclose(fc.landmarks5, face.landmarks5 - [10, 20])


def _layouts(rng, h, w):
    for dtype in (np.uint8, np.uint16):
        top = int(np.iinfo(dtype).max)
        rgb = rng.integers(0, top + 1, (h, w, 3), dtype=dtype)
        alpha = rng.integers(0, top + 1, (h, w, 1), dtype=dtype)
        yield dtype, "gray", rgb[..., 0].copy()
        yield dtype, "gray1", rgb[..., :1].copy()
        yield dtype, "rgb", rgb
        yield dtype, "rgba", np.concatenate([rgb, alpha], axis=2)


def _method_params(method, img, face) -> dict:
    """The method's defaults (and, for a dataset method such as k-Same, the face's group
    average: this one face alone, completed by the shipped pool)."""
    params = dict(method.defaults, rng=np.random.default_rng(5))
    if "protect" in params:
        # identity protection is tested in test_protect / test_replace / test_fatm; here
        # it would only spend a minute per call optimising noise against SFace
        params["protect"] = "none"
    if method.batch is not None:
        from facedeid.imageops import to_rgb8

        sample = method.batch.encode(to_rgb8(img), face, params)
        params.update(method.batch.assign([sample], params)[0])
    return params


def test_every_method_shape_dtype_layout_leaves_outside_bit_identical():
    """Property-style: method x shape x feather x dtype x channel layout."""
    from facedeid.methods import METHODS, get_method

    rng = np.random.default_rng(1)
    H, W = 90, 110
    face = face_with_landmarks((-15, 20, 55, 100))  # partly off the image
    for method_name in METHODS.names():
        method = get_method(method_name)
        for dtype, layout, img in _layouts(rng, H, W):
            for shape in SHAPES:
                for feather in (0.0, 0.2):
                    params = _method_params(method, img, face)
                    mask, bb = region_mask(H, W, face, shape, 1.3, feather)
                    crop, fc = crop_for(img, face, bb)
                    painted = method(crop, fc, params)
                    assert painted.shape == crop.shape and painted.dtype == crop.dtype
                    out = paste(img, painted, mask, bb)
                    assert out.dtype == img.dtype and out.shape == img.shape
                    full = np.zeros((H, W), np.float32)
                    full[bb[1]:bb[3], bb[0]:bb[2]] = mask
                    where = full == 0
                    np.testing.assert_array_equal(out[where], img[where], err_msg=f"{method_name} {shape}")
                    nc = 1 if img.ndim == 2 else min(img.shape[2], 3)
                    sub_out = out[bb[1]:bb[3], bb[0]:bb[2]]
                    if img.ndim == 3:
                        if img.shape[2] == 4:
                            np.testing.assert_array_equal(out[..., 3], img[..., 3])
                        sub_out, pc = sub_out[..., :nc], painted[..., :nc]
                    else:
                        pc = painted
                    one = mask == 1
                    np.testing.assert_array_equal(sub_out[one], pc[one])
                    # in the soft band the value lies between original and painted
                    part = (mask > 0) & (mask < 1)
                    if part.any():
                        o = img[bb[1]:bb[3], bb[0]:bb[2]]
                        o = o[..., :nc] if o.ndim == 3 else o
                        lo = np.minimum(o[part], pc[part]).astype(np.int64)
                        hi = np.maximum(o[part], pc[part]).astype(np.int64)
                        v = sub_out[part].astype(np.int64)
                        assert (v >= lo).all() and (v <= hi).all()
                    # paint_face does the same thing
                    again = paint_face(img, face, method, _method_params(method, img, face),
                                       shape=shape, mask_scale=1.3, feather=feather)
                    np.testing.assert_array_equal(again, out)


def test_many_faces_on_a_large_photo_paints_every_face():
    """36 hull-shaped regions on a 1024 px photo: each face is painted, the rest is kept.

    (Speed is measured in `make bench`, never asserted in a unit test.)"""
    from facedeid.methods import get_method

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    faces = [face_with_landmarks((x, y, x + 90, y + 110)) for x in range(20, 900, 150) for y in range(20, 900, 170)]
    assert len(faces) == 36
    blur = get_method("blur")
    out = img
    for f in faces:
        out = paint_face(out, f, blur, dict(blur.defaults), shape="hull", feather=0.1)
    for f in faces:
        x1, y1, x2, y2 = (int(v) for v in f.box)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        centre = (slice(cy - 10, cy + 10), slice(cx - 10, cx + 10))
        assert (out[centre] != img[centre]).mean() > 0.5
    assert np.array_equal(out[1000:, 1000:], img[1000:, 1000:])
