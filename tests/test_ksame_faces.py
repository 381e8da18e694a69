"""k-Same building blocks without the shared data: the pool builder's privacy check,
texture reliability weights, weighted averages, painting every image layout."""

from __future__ import annotations

import numpy as np
import pytest

from facedeid.ksame import faces as F
from facedeid.ksame.methods import KSAME_EIGEN, KSAME_M, KSAME_PIXEL, assign
from facedeid.ksame.pool import build_pool, check_pool
from facedeid.landmarks.align import canonical_landmarks
from facedeid.methods.base import CannotPaint
from facedeid.types import Face


def _face_image(seed: int = 0, size: int = 160):
    """A synthetic RGB image with a face-like pattern and the canonical 68 points in it."""
    rng = np.random.default_rng(seed)
    lm = canonical_landmarks(128) * 0.8 + 16
    yy, xx = np.mgrid[:size, :size]
    img = np.stack([(xx * 0.8 + 40) % 256, (yy * 0.6 + 60) % 256,
                    np.full_like(xx, 120)], axis=2).astype(np.float64)
    img += rng.normal(0, 12, img.shape)
    for p in lm[36:48]:  # dark eyes so the textures differ from a plain gradient
        img[int(p[1]) - 2:int(p[1]) + 3, int(p[0]) - 2:int(p[0]) + 3] = 20
    return np.clip(img, 0, 255).astype(np.uint8), lm


def test_pool_entries_average_k_distinct_people_each_person_once():
    rng = np.random.default_rng(1)
    n, k = 57, 10
    tex = rng.random((n, 8, 8, 3)).astype(np.float32)
    ids = [f"p{i}" for i in range(n)]
    arrays, meta = build_pool(tex, tex, rng.random((n, 68, 2)), ids, k=k)
    assert meta["min_people_per_entry"] >= k
    assert meta["n_people"] == n                       # every face used, in one entry only
    assert (arrays["pool_people"] >= k).all()
    assert arrays["pool_texture"].dtype == np.uint8 and arrays["pool_texture"].shape[0] == meta["n_entries"]
    with pytest.raises(AssertionError, match="people"):
        check_pool(arrays, [[0, 1, 2]] * meta["n_entries"], ids, k)
    with pytest.raises(AssertionError, match="shares a person"):
        check_pool({"pool_people": np.ones(2)}, [list(range(10)), list(range(5, 15))], ids, k)
    with pytest.raises(ValueError):
        build_pool(tex, tex, rng.random((n, 68, 2)), ids, k=1)


def test_texture_reliability_is_high_for_a_frontal_face_and_drops_on_a_folded_side():
    canon = canonical_landmarks(128)
    w = F.texture_reliability(canon * 1.5 + 10, 128)
    assert w.shape == (128, 128) and w[30:100, 30:100].min() > 0.95
    turned = canon.copy()
    nose_x = canon[30, 0]
    turned[:, 0] = np.where(canon[:, 0] > nose_x, nose_x + (canon[:, 0] - nose_x) * 0.1,
                            canon[:, 0])              # the face's left half squashed flat
    wt = F.texture_reliability(turned, 128)
    right = (canon[:, 0] > nose_x + 10) & (canon[:, 1] > 40)
    pts = canon[right].astype(int)
    assert wt[pts[:, 1], pts[:, 0]].mean() < 0.3        # squashed side: unreliable
    assert wt[64, 25] > 0.9                             # the other side: fine


def test_weighted_texture_average_ignores_unreliable_pixels():
    a = F.Sample(np.zeros(1), {"texture": np.zeros((4, 4, 3), np.float32),
                               "weight": np.ones((4, 4), np.float32)})
    wb = np.ones((4, 4), np.float32)
    wb[0, 0] = 0.0
    b = F.Sample(np.zeros(1), {"texture": np.ones((4, 4, 3), np.float32), "weight": wb})
    avg = F.average([a, b])
    assert "weight" not in avg
    assert avg["texture"][0, 0, 0] < 0.01                # only a is reliable there
    assert abs(avg["texture"][2, 2, 0] - 0.5) < 1e-6     # plain mean elsewhere


@pytest.mark.parametrize("method", [KSAME_PIXEL, KSAME_EIGEN, KSAME_M])
@pytest.mark.parametrize("layout", ["rgb8", "gray8", "rgba8", "rgb16"])
def test_painting_keeps_shape_dtype_and_alpha(method, layout):
    kind = {"ksame-pixel": "pixel", "ksame-eigen": "eigen", "ksame-m": "m"}[method.name]
    params = method.params(2)
    samples = []
    for s in range(3):
        img, lm = _face_image(s)
        samples.append(F.encode(kind, img, lm, params))
    extras = assign(kind, samples, params)
    assert all(e["record"]["n_people"] >= 2 for e in extras)
    img, lm = _face_image(0)
    crop = {"rgb8": img, "gray8": img[..., 0].copy(),
            "rgba8": np.dstack([img, np.full(img.shape[:2], 77, np.uint8)]),
            "rgb16": img.astype(np.uint16) * 257}[layout]
    out = method(crop, Face(box=(20, 20, 140, 150), landmarks68=lm), {**params, **extras[0]})
    assert out.shape == crop.shape and out.dtype == crop.dtype
    if layout == "rgba8":
        assert (out[..., 3] == 77).all()
    assert not np.array_equal(out, crop)                              # the face was painted
    assert np.array_equal(out[:4, :4], crop[:4, :4])                  # far corner untouched


def test_no_target_means_the_fallback():
    img, lm = _face_image(0)
    with pytest.raises(CannotPaint, match="no target"):
        KSAME_M(img, Face(box=(20, 20, 140, 150), landmarks68=lm), KSAME_M.params())
    with pytest.raises(CannotPaint, match="too small"):
        KSAME_M.batch.encode(img, Face(box=(0, 0, 9, 9), landmarks68=lm * 0.05), KSAME_M.params())


def test_bad_parameters_are_clear_errors():
    img, lm = _face_image(0)
    for bad, msg in [({"k": 0}, "k must"), ({"k": 2.5}, "k must"), ({"color": "red"}, "color"),
                     ({"region": "eyes"}, "region"), ({"forehead": 2}, "forehead"),
                     ({"shape_weight": -1}, "shape_weight"), ({"size": 8}, "size")]:
        with pytest.raises(ValueError, match=msg):
            KSAME_M.batch.encode(img, Face(box=(20, 20, 140, 150), landmarks68=lm),
                                 {**KSAME_M.params(), **bad})


def test_shading_colour_mode_takes_the_targets_lighting_and_keeps_the_texture():
    """color=shading: the painted layer's low-frequency lightness becomes the target's (a
    lighting gradient), its fine texture stays the average's; outside the mask, unused."""
    import cv2

    from facedeid.ksame.faces import _match_color

    h, w = 96, 96
    yy, xx = np.mgrid[0:h, 0:w]
    texture = 0.08 * ((xx // 3 + yy // 3) % 2 - 0.5)                     # fine checker
    src = np.repeat((0.5 + texture)[..., None], 3, axis=2).astype(np.float32)
    ref = np.repeat((0.2 + 0.6 * xx / (w - 1))[..., None], 3, axis=2).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    mask[16:80, 16:80] = 1.0
    out = _match_color(src, ref, mask, "shading", shading=0.2)
    L = lambda im: cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2LAB)[..., 0]  # noqa: E731
    sel = mask > 0.5
    lo = lambda im: cv2.GaussianBlur(L(im), (0, 0), 6.0)[24:72, 24:72]  # noqa: E731
    # the lighting gradient is now there, left to right, as in the target
    prof_out, prof_ref = lo(out).mean(axis=0), lo(ref).mean(axis=0)
    assert np.corrcoef(prof_out, prof_ref)[0, 1] > 0.95
    assert prof_out[-1] - prof_out[0] > 0.5 * (prof_ref[-1] - prof_ref[0])
    # the fine texture survives: high-pass of the output correlates with the source's
    hp = lambda im: (L(im) - cv2.GaussianBlur(L(im), (0, 0), 2.0))[sel]  # noqa: E731
    assert np.corrcoef(hp(out), hp(src))[0, 1] > 0.9
    # "mean" alone does not carry the gradient
    flat = lo(_match_color(src, ref, mask, "mean")).mean(axis=0)
    assert abs(flat[-1] - flat[0]) < 0.2 * (prof_ref[-1] - prof_ref[0])


@pytest.mark.parametrize("bad", [0.0, 2.0, "x", True])
def test_bad_shading_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="shading"):
        F.check_params("eigen", {"k": 10, "color": "shading", "shading": bad})
