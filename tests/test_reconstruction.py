"""Reconstruction methods (seed 002): pca, svd, hypersphere; the shipped face model and its build."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from facedeid.facemodel import load_face_model
from facedeid.landmarks.align import landmark_mask, shape_free
from facedeid.methods import get_method
from facedeid.methods.reconstruction import hypersphere_coefficients, low_rank, project, reconstruct
from facedeid.pipeline import Anonymizer

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "build_face_model.py"


@pytest.fixture(scope="module")
def lfw_face(data_dir):
    """A real LFW face (an evaluation identity, not in the model) with its landmarks."""
    from facedeid.detect import get_detector
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.landmarks.dlib68 import Dlib68Predictor

    rgb = load_rgb(data_dir / "lfw" / "images" / "Juanes" / "Juanes_0002.jpg")
    face = max(get_detector("default").detect(rgb), key=lambda f: f.area)
    return rgb, face.replace(landmarks68=Dlib68Predictor().predict(rgb, face))


@pytest.fixture(scope="module")
def build_tool():
    spec = importlib.util.spec_from_file_location("build_face_model", TOOLS)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses need the module registered
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def _face_texture(img, face):
    """The face's shape-free texture ([0, 1]), the model's mean, and the inside of the face outline."""
    from facedeid.landmarks.align import canonical_landmarks

    model = load_face_model()
    s = model.texture_size
    mean = model.eigen[0].reshape(s, s, 3)
    tex = shape_free(img, face.landmarks68, s).astype(float) / 255
    inside = landmark_mask(canonical_landmarks(s), (s, s), region="face_outline") > 0.99
    return tex, mean, inside


# ---------------------------------------------------------------- model and coefficients


def test_shipped_model_is_aggregate_and_orthonormal():
    model = load_face_model()
    mean, comps, var = model.eigen
    assert model.meta["n_faces"] >= 1000 and model.meta["max_dominance"] < 0.05
    assert comps.shape == (100, mean.size) and np.all(np.diff(var) <= 0)
    np.testing.assert_allclose(comps @ comps.T, np.eye(100), atol=1e-6)
    assert model.path.stat().st_size < 5e6


def test_project_reconstruct_round_trip():
    model = load_face_model()
    mean, comps, var = model.eigen
    s = model.texture_size
    c = np.zeros(100)
    c[[0, 3, 40]] = [5.0, -2.0, 0.5]
    tex = reconstruct(c)
    assert tex.shape == (s, s, 3)
    np.testing.assert_allclose(project(tex), c, atol=1e-9)
    np.testing.assert_allclose(reconstruct(np.zeros(0)).reshape(-1), mean)
    h = hypersphere_coefficients(c, 8.0)
    assert np.linalg.norm(h) == pytest.approx(8.0)
    np.testing.assert_allclose(h / 8.0, c / np.linalg.norm(c))
    np.testing.assert_array_equal(hypersphere_coefficients(np.zeros(5), 8.0), np.zeros(5))


def test_low_rank_is_the_truncated_svd():
    a = np.random.default_rng(0).normal(size=(40, 30))
    s = np.linalg.svd(a, compute_uv=False)
    for r in (1, 5, 30):
        b = low_rank(a, r)
        assert np.linalg.matrix_rank(b, tol=1e-8) == r
        # Eckart-Young: the Frobenius error is the norm of the dropped singular values
        assert np.linalg.norm(a - b) == pytest.approx(np.sqrt((s[r:] ** 2).sum()), abs=1e-9)
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(low_rank(a, 5, 0.3, g1), low_rank(a, 5, 0.3, g2))
    assert np.abs(low_rank(a, 5, 0.3, np.random.default_rng(6)) - low_rank(a, 5)).max() > 1e-3


# ---------------------------------------------------------------- methods end to end


def test_pca_strength(lfw_face):
    rgb, face = lfw_face
    orig, mean, inside = _face_texture(rgb, face)
    dist = {}
    for r in (100, 20, 2, 0):
        out = Anonymizer(method="pca", strength=r).anonymize(rgb, faces=[face]).image
        outside = landmark_mask(face.landmarks68, rgb.shape[:2], region="face_outline") == 0
        np.testing.assert_array_equal(out[outside], rgb[outside])
        tex = _face_texture(out, face)[0]
        dist[r] = np.linalg.norm((tex - orig)[inside]), np.linalg.norm((tex - mean)[inside])
    # fewer components: further from the original face; none: the mean face
    assert 0 < dist[100][0] < dist[20][0] < dist[2][0]
    assert dist[0][1] < 0.2 * dist[100][1]


def test_pca_noise_is_seeded(lfw_face):
    rgb, face = lfw_face
    a = Anonymizer(method="pca", strength=20, noise=1.0, seed=3).anonymize(rgb, faces=[face]).image
    b = Anonymizer(method="pca", strength=20, noise=1.0, seed=3).anonymize(rgb, faces=[face]).image
    c = Anonymizer(method="pca", strength=20, noise=1.0, seed=4).anonymize(rgb, faces=[face]).image
    plain = Anonymizer(method="pca", strength=20).anonymize(rgb, faces=[face]).image
    np.testing.assert_array_equal(a, b)
    assert (a != c).any() and (a != plain).any()


def test_hypersphere_radius(lfw_face):
    rgb, face = lfw_face
    orig, mean, inside = _face_texture(rgb, face)
    dist = {}
    for radius in (0.0, 4.0, 16.0, 64.0):
        out = Anonymizer(method="hypersphere", strength=radius).anonymize(rgb, faces=[face]).image
        dist[radius] = np.linalg.norm((_face_texture(out, face)[0] - mean)[inside])
    # a smaller sphere puts the face closer to the mean face; radius 0 is the mean face
    assert dist[0.0] < 0.25 * dist[16.0] and dist[4.0] < dist[16.0] < dist[64.0]


def test_svd_rank_strength(lfw_face):
    rgb, face = lfw_face
    mask = landmark_mask(face.landmarks68, rgb.shape[:2], smooth=0, region="face_outline") > 0
    errs = []
    for rank in (32, 8, 2):
        out = Anonymizer(method="svd", strength=rank).anonymize(rgb, faces=[face]).image
        errs.append(np.abs(out.astype(float) - rgb)[mask].mean())
    assert 0 < errs[0] < errs[1] < errs[2]


@pytest.mark.parametrize("name,bad", [("pca", {"components": 101}), ("pca", {"noise": -1}),
                                      ("hypersphere", {"radius": -1}), ("svd", {"rank": 0}),
                                      ("svd", {"size": 20}), ("pca", {"region": "eyes"})])
def test_bad_parameters(lfw_face, name, bad):
    rgb, face = lfw_face
    m = get_method(name)
    with pytest.raises(ValueError):
        m(rgb, face, {**m.defaults, **bad})


# ---------------------------------------------------------------- the build script's pieces


def test_build_pca_and_dominance(build_tool):
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(50, 3)))[0].T  # 3 orthonormal directions in 50-D
    data = rng.normal(size=(400, 3)) * [5.0, 2.0, 1.0] @ basis + 7.0
    mean, comps, var, coeffs = build_tool.pca(data, 3)
    np.testing.assert_allclose(mean, data.mean(axis=0))
    np.testing.assert_allclose(np.abs(comps @ basis.T), np.eye(3), atol=0.05)
    assert var[0] > var[1] > var[2]
    dom = build_tool.component_dominance(coeffs)
    assert dom.max() < 0.1
    # a component made by one outlier face is flagged
    data2 = np.vstack([data, 7.0 + 400 * np.eye(50)[0]])
    _, _, _, c2 = build_tool.pca(data2, 3)
    assert build_tool.component_dominance(c2).max() > 0.9
