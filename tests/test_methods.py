"""The classic methods (blackout, mask, blur, pixelate) and noise: contract and strength semantics."""

from __future__ import annotations

import numpy as np
import pytest

from facedeid.composite import crop_for, paint_face, polygon_mask, region_mask
from facedeid.errors import UnknownNameError
from facedeid.landmarks.regions import region_polygons
from facedeid.methods import METHODS, get_method
from facedeid.methods.classic import (
    AUTO_BLUR_RATIO,
    DEFAULT_GRAIN,
    blur_kernel_size,
    gaussian_blur,
    parse_color,
    sigma_for_kernel,
)
from facedeid.types import Face

from test_composite import face_with_landmarks  # noqa: E402  (tests/ is on sys.path under pytest)

ASTRO_BOX = (175.0, 76.0, 266.0, 167.0)  # dlib HOG box of the astronaut's face


@pytest.fixture(scope="module")
def astro_face(astronaut) -> Face:
    from facedeid.landmarks import Dlib68Predictor

    return Dlib68Predictor().add_landmarks(astronaut, [Face(ASTRO_BOX, detector="dlib-hog")])[0]


def crop_of(img, face, scale=1.3):
    mask, bb = region_mask(img.shape[0], img.shape[1], face, "box", scale, 0.0)
    return crop_for(img, face, bb)


def hf_energy(img) -> float:
    """Mean squared Laplacian-like high-frequency energy."""
    a = img.astype(np.float64)
    if a.ndim == 3:
        a = a.mean(axis=2)
    return float(((4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]) ** 2).mean())


def lag_energy(img, lag) -> float:
    """Mean squared difference between pixels ``lag`` apart (both axes)."""
    a = img.astype(np.float64)
    return float(((a[lag:] - a[:-lag]) ** 2).mean() + ((a[:, lag:] - a[:, :-lag]) ** 2).mean())


def run(name, crop, face, **params):
    m = get_method(name)
    p = dict(m.defaults)
    p.update(params)
    p.setdefault("rng", np.random.default_rng(0))
    out = m(crop, face, p)
    assert out.shape == crop.shape and out.dtype == crop.dtype
    assert out is not crop
    return out


# ---------------------------------------------------------------- registry / contract


def test_registry_and_docs():
    assert set(METHODS.names()) >= {"blackout", "mask", "blur", "pixelate", "noise"}
    for name in ("blackout", "mask", "blur", "pixelate", "noise"):
        m = get_method(name)
        assert m.name == name and m.strength_doc
        assert m.strength is None or m.strength in m.defaults
    assert get_method("mask").needs_landmarks68 and not get_method("mask").paints_whole_region
    assert get_method("blur").params(strength=21)["k"] == 21
    assert get_method("noise").params(strength=30, kind="impulse") == {"kind": "impulse", "k": 30}
    with pytest.raises(ValueError):
        get_method("blackout").params(strength=3)


@pytest.mark.parametrize("name", ["blackout", "mask", "blur", "pixelate", "noise"])
def test_every_layout_and_dtype(name, astronaut, astro_face):
    crop, fc = crop_of(astronaut, astro_face)
    for dtype in (np.uint8, np.uint16):
        rgb = crop.astype(dtype) * (257 if dtype == np.uint16 else 1)
        alpha = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, rgb.shape[:2], dtype=dtype)
        for img in (rgb, rgb[..., 0].copy(), rgb[..., :1].copy(), np.dstack([rgb, alpha])):
            out = run(name, img, fc)
            assert (out != img).any()
            if img.ndim == 3 and img.shape[2] == 4:
                np.testing.assert_array_equal(out[..., 3], img[..., 3])
            # uint16 results track the 8-bit ones (same operation, 257x the scale)
            if dtype == np.uint16 and name in ("blackout", "pixelate", "blur"):
                ref = run(name, (img // 257).astype(np.uint8), fc)
                assert np.abs(out.astype(np.int64) / 257 - ref).max() <= 1.5


# ---------------------------------------------------------------- blackout


def test_parse_color():
    assert parse_color("black") == (0, 0, 0)
    assert parse_color("#F80") == (255, 136, 0)
    assert parse_color("10,20,30") == (10, 20, 30)
    assert parse_color((1.4, 2, 3)) == (1, 2, 3)
    assert parse_color(200) == (200, 200, 200)
    for bad in ("nocolour", (1, 2), (0, 0, 300), "#12345"):
        with pytest.raises(ValueError):
            parse_color(bad)


def test_blackout_exact_colour(astronaut, astro_face):
    crop, fc = crop_of(astronaut, astro_face)
    assert (run("blackout", crop, fc) == 0).all()
    out = run("blackout", crop, fc, color="#102030")
    assert (out.reshape(-1, 3) == [16, 32, 48]).all()
    out16 = run("blackout", crop.astype(np.uint16), fc, color=(255, 0, 128))
    assert (out16.reshape(-1, 3) == [65535, 0, 128 * 257]).all()
    gray = run("blackout", crop[..., 0].copy(), fc, color="white")
    assert (gray == 255).all()
    red_gray = run("blackout", crop[..., 0].copy(), fc, color="red")
    assert (red_gray == round(0.299 * 255)).all()


# ---------------------------------------------------------------- blur


def test_blur_kernel_semantics():
    face = Face((0, 0, 100, 144))  # face size 120
    assert blur_kernel_size(1, face) == 1
    assert blur_kernel_size(30, face) == 31 and blur_kernel_size("31", face) == 31
    assert blur_kernel_size("auto", face) == blur_kernel_size(None, face)
    assert blur_kernel_size("auto", face) in (int(AUTO_BLUR_RATIO * 120), int(AUTO_BLUR_RATIO * 120) + 1)
    assert blur_kernel_size("25%", face) == 31
    for bad in (0, -3, "x", "-5%"):
        with pytest.raises(ValueError):
            blur_kernel_size(bad, face)
    assert sigma_for_kernel(5) == pytest.approx(1.1)


def test_blur_gets_stronger_with_k(astronaut, astro_face):
    """Strength semantics of the Gaussian blur itself (grain=0, seed 003's pure blur)."""
    crop, fc = crop_of(astronaut, astro_face)
    np.testing.assert_array_equal(run("blur", crop, fc, k=1, grain=0), crop)  # k = 1 is the original
    energy = [hf_energy(run("blur", crop, fc, k=k, grain=0)) for k in (3, 7, 15, 31)]
    assert all(a > b for a, b in zip(energy, energy[1:])), energy
    assert energy[0] < hf_energy(crop)
    # beyond that the 1-pixel energy is down to rounding noise: compare 6-pixel detail
    detail = [lag_energy(run("blur", crop, fc, k=k, grain=0), 6) for k in (31, 61, 121, 241)]
    assert all(a > 1.5 * b for a, b in zip(detail, detail[1:])), detail
    var = [run("blur", crop, fc, k=k, grain=0).astype(float).var(axis=(0, 1)).sum() for k in (5, 31, 121)]
    assert var[0] > var[1] > var[2]
    # auto scales with the face: the same face twice as large gets twice the kernel
    big = Face((0, 0, 2 * fc.width, 2 * fc.height))
    assert abs(blur_kernel_size("auto", big) - 2 * blur_kernel_size("auto", fc)) <= 3  # odd rounding


def test_blur_borders_do_not_pull_in_other_colours():
    """Mirrored borders: a flat crop stays flat (no black or outside pixels enter)."""
    flat = np.full((40, 60, 3), 200, np.uint8)
    for k in (5, 31, 151):
        np.testing.assert_array_equal(run("blur", flat, Face((10, 10, 50, 30)), k=k, grain=0), flat)


def test_blur_grain_is_monochrome_zero_mean_seeded_and_optional(astronaut, astro_face):
    crop, fc = crop_of(astronaut, astro_face)
    pure = run("blur", crop, fc, grain=0)
    np.testing.assert_array_equal(pure, gaussian_blur(crop, blur_kernel_size("auto", fc)))
    a = run("blur", crop, fc, rng=np.random.default_rng(5))
    b = run("blur", crop, fc, rng=np.random.default_rng(5))
    c = run("blur", crop, fc, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)               # reproducible from the generator
    assert (a != c).any()
    diff = a.astype(float) - pure.astype(float)
    inner = (slice(20, -20), slice(20, -20))          # away from clipping at 0/255
    d = diff[inner]
    assert abs(d.std() - DEFAULT_GRAIN) < 0.6 and abs(d.mean()) < 0.3
    # one grain value per pixel in all channels (up to rounding), not colour speckle
    assert np.abs(d[..., 0] - d[..., 1]).max() <= 1 and np.abs(d[..., 0] - d[..., 2]).max() <= 1
    strong = run("blur", crop, fc, grain=20, rng=np.random.default_rng(5)).astype(float) - pure
    assert strong[inner].std() > 3 * d.std()
    for bad in (-1, "x"):
        with pytest.raises(ValueError):
            run("blur", crop, fc, grain=bad)
    # 16-bit images get the grain on their own scale
    c16 = crop.astype(np.uint16) * 257
    d16 = (run("blur", c16, fc, rng=np.random.default_rng(1)).astype(float)
           - run("blur", c16, fc, grain=0).astype(float))[inner]
    assert abs(d16.std() - DEFAULT_GRAIN * 257) < 0.1 * DEFAULT_GRAIN * 257


def test_blur_grain_changes_a_smooth_dark_face_that_blur_alone_cannot():
    """The reason for the grain: a dark, defocused face survives any Gaussian blur (SSIM >= 0.9)."""
    from skimage.metrics import structural_similarity

    yy, xx = np.mgrid[0:60, 0:48]
    blob = 28 + 10 * np.exp(-(((xx - 24) / 12.0) ** 2 + ((yy - 30) / 16.0) ** 2))  # a dim, soft face
    face = np.repeat(blob[..., None], 3, axis=2).astype(np.uint8)
    fc = Face((4, 4, 44, 56))

    def ssim(img):
        return structural_similarity(face[..., 0].astype(float), img[..., 0].astype(float), data_range=255)

    for k in ("auto", "300%"):
        assert ssim(run("blur", face, fc, k=k, grain=0)) >= 0.9
        assert ssim(run("blur", face, fc, k=k, rng=np.random.default_rng(0))) < 0.9


def test_fast_large_blur_matches_direct_gaussian(astronaut):
    import cv2

    img = astronaut[40:300, 120:330]
    for k in (101, 151):
        sigma = sigma_for_kernel(k)
        direct = cv2.GaussianBlur(img, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101).astype(float)
        fast = gaussian_blur(img, k).astype(float)
        assert np.abs(fast - direct).mean() < 1.0
        assert np.abs(fast - direct).max() < 8


# ---------------------------------------------------------------- pixelate


@pytest.mark.parametrize("k", [1, 3, 8, 16])
def test_pixelate_has_k_by_k_blocks_on_the_face_box(astronaut, astro_face, k):
    crop, fc = crop_of(astronaut, astro_face)
    out = run("pixelate", crop, fc, k=k)
    x1, y1, x2, y2 = (int(round(v)) for v in fc.box)
    inner = out[y1:y2, x1:x2]
    # constant on each cell of the k x k grid over the face box
    ys = ((np.arange(y1, y2) + 0.5 - fc.box[1]) // (fc.height / k)).astype(int)
    xs = ((np.arange(x1, x2) + 0.5 - fc.box[0]) // (fc.width / k)).astype(int)
    cell = ys[:, None] * k + xs[None, :]
    assert cell.min() == 0 and cell.max() == k * k - 1
    for c in range(k * k):
        vals = inner[cell == c]
        assert (vals == vals[0]).all()
    distinct = len(np.unique(inner.reshape(-1, 3), axis=0))
    assert distinct <= k * k and distinct >= 0.9 * k * k
    # each block is the (rounded) mean of its pixels
    src = crop[y1:y2, x1:x2]
    for c in (0, k * k // 2, k * k - 1):
        assert np.abs(inner[cell == c][0].astype(float) - src[cell == c].mean(0)).max() <= 0.5 + 1e-9
    # blocks outside the face box keep the same size
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= (k * 1.3 + 3) ** 2


def test_pixelate_strength_and_limits(astronaut, astro_face):
    crop, fc = crop_of(astronaut, astro_face)
    energies = [hf_energy(run("pixelate", crop, fc, k=k)) for k in (64, 16, 4)]
    assert energies[0] > energies[1] > energies[2]  # smaller k = stronger
    big = run("pixelate", crop, fc, k=1000)  # blocks below one pixel: nothing to average
    np.testing.assert_array_equal(big, crop)
    for bad in (0, 2.5, "x"):
        with pytest.raises(ValueError):
            run("pixelate", crop, fc, k=bad)


# ---------------------------------------------------------------- noise


def _gray_crop(level=128, shape=(120, 100, 3), dtype=np.uint8):
    return np.full(shape, level, dtype)


@pytest.mark.parametrize("k", [5, 30, 50, 90])
def test_noise_replace_fraction(k):
    img = _gray_crop()
    face = Face((10, 10, 90, 110))
    out = run("noise", img, face, kind="replace", k=k)
    changed = (out != img).any(axis=2).mean()
    assert changed == pytest.approx(k / 100, abs=0.01)
    u16 = run("noise", img.astype(np.uint16) * 257, face, kind="replace", k=k)
    assert (u16 != 128 * 257).any(axis=2).mean() == pytest.approx(k / 100, abs=0.01)
    assert u16.max() > 60000 and (u16 % 257 != 0).any()  # full 16-bit range, not 8-bit x 257


def test_noise_replace_in_the_pasted_region(astronaut, astro_face):
    """After paste, ~k% of the region's pixels are changed (hypergeometric sampling)."""
    out = paint_face(astronaut, astro_face, get_method("noise"),
                     {"kind": "replace", "k": 40, "rng": np.random.default_rng(3)}, shape="ellipse")
    mask, bb = region_mask(512, 512, astro_face, "ellipse", 1.3, 0.0)
    sub = (out != astronaut).any(axis=2)[bb[1]:bb[3], bb[0]:bb[2]]
    assert sub[mask == 1].mean() == pytest.approx(0.40, abs=0.03)
    assert not sub[mask == 0].any()


@pytest.mark.parametrize("sigma", [5, 20, 40])
def test_noise_gaussian_sigma(sigma):
    img = _gray_crop()
    face = Face((10, 10, 90, 110))
    out = run("noise", img, face, kind="gaussian", k=sigma)
    diff = out.astype(float) - img
    assert diff.std() == pytest.approx(sigma, rel=0.05)
    assert abs(diff.mean()) < 0.05 * sigma + 0.5
    u16 = run("noise", img.astype(np.uint16) * 257, face, kind="gaussian", k=sigma)
    assert ((u16.astype(float) - 128 * 257) / 257).std() == pytest.approx(sigma, rel=0.05)


@pytest.mark.parametrize("p", [2, 20, 60])
def test_noise_impulse_fraction(p):
    img = _gray_crop()
    face = Face((10, 10, 90, 110))
    out = run("noise", img, face, kind="impulse", k=p)
    black = (out == 0).all(axis=2)
    white = (out == 255).all(axis=2)
    assert (black | white).mean() == pytest.approx(p / 100, abs=0.01)
    assert black.mean() == pytest.approx(white.mean(), abs=0.02 + 0.1 * p / 100)
    changed = (out != img).any(axis=2)
    np.testing.assert_array_equal(changed, black | white)


def test_noise_arguments():
    img = _gray_crop()
    face = Face((10, 10, 90, 110))
    for bad in ({"kind": "speckle"}, {"kind": "replace", "k": 150}, {"kind": "gaussian", "k": -1},
                {"kind": "impulse", "k": "x"}):
        with pytest.raises(ValueError):
            run("noise", img, face, **bad)
    assert (run("noise", img, face, kind="replace", k=0) == img).all()


@pytest.mark.parametrize("kind", ["replace", "gaussian", "impulse"])
def test_noise_is_deterministic_given_a_seeded_rng(kind):
    img = np.random.default_rng(0).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    face = Face((5, 5, 35, 45))
    a = run("noise", img, face, kind=kind, k=30, rng=np.random.default_rng(42))
    b = run("noise", img, face, kind=kind, k=30, rng=np.random.default_rng(42))
    c = run("noise", img, face, kind=kind, k=30, rng=np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_deterministic_methods_ignore_rng(astronaut, astro_face):
    crop, fc = crop_of(astronaut, astro_face)
    for name, extra in (("blackout", {}), ("mask", {}), ("blur", {"grain": 0}), ("pixelate", {})):
        a = run(name, crop, fc, rng=np.random.default_rng(1), **extra)
        b = run(name, crop, fc, rng=np.random.default_rng(2), **extra)
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- mask


@pytest.mark.parametrize("regions", [("eyes_band",), ("eyes", "mouth"), "nose,left_eyebrow"])
def test_mask_paints_only_the_chosen_regions(astronaut, astro_face, regions):
    crop, fc = crop_of(astronaut, astro_face)
    out = run("mask", crop, fc, regions=regions, color="#00ff00")
    names = regions.split(",") if isinstance(regions, str) else regions
    sel = np.zeros(crop.shape[:2], bool)
    for name in names:
        for poly in region_polygons(fc.landmarks68, name):
            sel |= polygon_mask(*crop.shape[:2], poly)
    assert sel.any()
    assert (out[sel] == [0, 255, 0]).all()
    np.testing.assert_array_equal(out[~sel], crop[~sel])


def test_mask_default_is_the_eyes_band_and_fill_blur(astronaut, astro_face):
    crop, fc = crop_of(astronaut, astro_face)
    out = run("mask", crop, fc)
    lm = fc.landmarks68
    for p in np.vstack([lm[36:48], lm[17:27]]):
        assert (out[int(p[1]), int(p[0])] == 0).all()
    assert (out[int(lm[57, 1]), int(lm[57, 0])] == crop[int(lm[57, 1]), int(lm[57, 0])]).all()  # mouth kept
    blurred = run("mask", crop, fc, fill="blur")
    sel = polygon_mask(*crop.shape[:2], region_polygons(lm, "eyes_band")[0])
    np.testing.assert_array_equal(blurred[~sel], crop[~sel])
    assert hf_energy(np.where(sel[..., None], blurred, 0)) < hf_energy(np.where(sel[..., None], crop, 0))


def test_mask_errors(astronaut, astro_face):
    crop, fc = crop_of(astronaut, astro_face)
    with pytest.raises(ValueError, match="68-point"):
        run("mask", crop, fc.replace(landmarks68=None))
    with pytest.raises(UnknownNameError):
        run("mask", crop, fc, regions=("ears",))
    with pytest.raises(ValueError):
        run("mask", crop, fc, fill="sparkle")


def test_mask_on_a_synthetic_face_through_paste():
    face = face_with_landmarks((30, 30, 130, 160))
    img = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    out = paint_face(img, face, get_method("mask"), dict(get_method("mask").defaults), shape="box")
    sel = polygon_mask(200, 200, region_polygons(face.landmarks68, "eyes_band")[0])
    assert (out[sel] == 0).all()
    np.testing.assert_array_equal(out[~sel], img[~sel])
