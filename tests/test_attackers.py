"""Re-identification attackers, alignment, FaceNet conversion and the embedding cache."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from facedeid.errors import UnknownNameError
from facedeid.evaluate import align
from facedeid.evaluate.attackers import ATTACKERS, get_attacker
from facedeid.evaluate.attackers import facenet_convert as fc
from facedeid.evaluate.attackers.detection import AttackerDetector, attacker_landmarks5
from facedeid.evaluate.cache import (MISSING, CacheKey, EmbeddingCache, cached_embed,
                                     make_key)

NAMES = ["dlib", "sface", "facenet"]


# ---------------------------------------------------------------------------
# LFW fixtures
# ---------------------------------------------------------------------------

def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def lfw_pairs(data_dir):
    """First 20 same-person and 20 different-person pairs of pairsDevTrain."""
    root = data_dir / "lfw"
    lines = [ln.split() for ln in (root / "pairsDevTrain.txt").read_text().splitlines()]
    n = int(lines[0][0])

    def p(name, i):
        return root / "images" / name / f"{name}_{int(i):04d}.jpg"

    same = [(p(a, i), p(a, j), True) for a, i, j in lines[1:21]]
    diff = [(p(a, i), p(b, j), False) for a, i, b, j in lines[1 + n:21 + n]]
    pairs = same + diff
    paths = sorted({x for a, b, _ in pairs for x in (a, b)})
    images = {x: _read(x) for x in paths}
    landmarks = {x: attacker_landmarks5(images[x]) for x in paths}
    return pairs, images, landmarks


def _accuracy(att, pairs, emb) -> float:
    correct = 0
    for a, b, same in pairs:
        if emb[a] is None or emb[b] is None:
            match = False
        else:
            match = bool(att.matches(emb[a], emb[b])[0])
        correct += match == same
    return correct / len(pairs)


# ---------------------------------------------------------------------------
# registry and interface
# ---------------------------------------------------------------------------

def test_registry_names_and_lazy_instances():
    assert set(NAMES) <= set(ATTACKERS.names())  # other tests may register more
    att = get_attacker("sface")
    assert att is get_attacker("sface")
    assert att.metric == "cosine" and att.threshold == pytest.approx(0.637)
    assert get_attacker("dlib").metric == "euclidean" and get_attacker("dlib").threshold == 0.6
    assert get_attacker("facenet").dim == 512
    with pytest.raises(UnknownNameError):
        get_attacker("arcface")


def test_distance_metrics_shape_and_symmetry():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(4, 8))
    for name in NAMES:
        att = get_attacker(name)
        d = att.distance(a, b)
        assert d.shape == (3, 4)
        np.testing.assert_allclose(d, att.distance(b, a).T, atol=1e-12)
        np.testing.assert_allclose(np.diag(att.distance(a, a)), 0, atol=1e-6)
        np.testing.assert_allclose(att.pair_distance(a, b[:3]), np.diag(d[:, :3]), atol=1e-9)
    eu = get_attacker("dlib").distance(a, b)
    np.testing.assert_allclose(eu, np.linalg.norm(a[:, None] - b[None], axis=-1), atol=1e-9)


# ---------------------------------------------------------------------------
# alignment
# ---------------------------------------------------------------------------

def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, size=(5, 2))
    ang, s, t = 0.3, 1.7, np.array([12.0, -5.0])
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ rot.T + t
    m = align.similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-7)
    with pytest.raises(ValueError):
        align.similarity_transform(np.ones((5, 2)), dst)


def test_align_crop_matches_opencv_aligncrop(lfw_pairs):
    _, images, landmarks = lfw_pairs
    path = next(iter(images))
    rgb, lm = images[path], landmarks[path]
    from facedeid.models import model_path

    rec = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    row = np.array([[0, 0, 1, 1, *lm.reshape(-1), 1.0]], np.float32)
    ref = rec.alignCrop(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), row)[:, :, ::-1]
    mine = align.align_crop(rgb, lm, align.ARCFACE_112, 112)
    diff = np.abs(ref.astype(int) - mine.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_dlib_box_from_landmarks_is_square_around_face():
    lm = np.array([[100, 100], [140, 100], [120, 120], [104, 140], [136, 140]], float)
    x1, y1, x2, y2 = align.box_from_landmarks(lm)
    assert x2 - x1 == pytest.approx(y2 - y1)
    assert x1 < 100 and x2 > 140 and y1 < 100 and y2 > 140


# ---------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------

def test_attacker_detection_blank_and_order(astronaut):
    assert attacker_landmarks5(np.zeros((250, 250, 3), np.uint8)) is None
    assert attacker_landmarks5(np.full((64, 48, 3), 127, np.uint8)) is None
    pts = attacker_landmarks5(astronaut)
    assert pts is not None and pts.shape == (5, 2)
    assert pts[0, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0]          # smaller-x first
    assert pts[0, 1] < pts[2, 1] < pts[3, 1]                          # eyes, nose, mouth


def test_attacker_detection_prefers_central_subject(lfw_pairs):
    _, images, _ = lfw_pairs
    face = next(iter(images.values()))
    canvas = np.zeros((600, 600, 3), np.uint8)
    canvas[175:425, 175:425] = face                          # subject, centred
    canvas[0:200, 400:600] = cv2.resize(face, (200, 200))    # a smaller face in a corner
    det = AttackerDetector()
    assert len(det.detect(canvas)) >= 2
    subject = det.subject(canvas)
    cx, cy = subject.center
    assert 175 < cx < 425 and 175 < cy < 425


# ---------------------------------------------------------------------------
# attackers on LFW
# ---------------------------------------------------------------------------

@pytest.mark.data
@pytest.mark.parametrize("name", NAMES)
def test_clean_verification_accuracy(name, lfw_pairs):
    pairs, images, landmarks = lfw_pairs
    att = get_attacker(name)
    paths = list(images)
    assert all(landmarks[p] is not None for p in paths)
    aligned = att.embed_at_many([images[p] for p in paths], [landmarks[p] for p in paths])
    assert aligned.shape == (len(paths), att.dim) and np.all(np.isfinite(aligned))
    emb = dict(zip(paths, aligned))
    acc_aligned = _accuracy(att, pairs, emb)
    naive = {p: att.embed_naive(images[p]) for p in paths}
    acc_naive = _accuracy(att, pairs, naive)
    assert acc_aligned > 0.9, acc_aligned
    assert acc_naive > 0.9, acc_naive
    # single and batched paths agree, and embeddings are deterministic
    p0 = paths[0]
    one = att.embed_at(images[p0], landmarks[p0])
    np.testing.assert_allclose(one, emb[p0], rtol=1e-4, atol=1e-5)
    assert att.pair_distance(one, att.embed_at(images[p0], landmarks[p0]))[0] < 1e-5
    # the same image re-embedded is at distance ~0; distances are symmetric
    a, b = emb[paths[0]], emb[paths[1]]
    assert att.distance(a, a)[0, 0] < 1e-5
    assert att.distance(a, b)[0, 0] == pytest.approx(att.distance(b, a)[0, 0], abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_naive_fta_on_blank_image_but_template_still_embeds(name):
    att = get_attacker(name)
    blank = np.zeros((250, 250, 3), np.uint8)
    assert att.embed_naive(blank) is None
    # template-aligned always yields a vector, even on a blacked-out face or with
    # landmarks partly outside the image
    lm = np.array([[100, 110], [150, 110], [125, 140], [105, 165], [145, 165]], float)
    for pts in (lm, lm - 120):
        vec = att.embed_at(blank, pts)
        assert vec.shape == (att.dim,) and np.all(np.isfinite(vec))


@pytest.mark.parametrize("name", ["sface", "facenet"])
def test_attackers_are_thread_safe(name, lfw_pairs):
    from concurrent.futures import ThreadPoolExecutor

    _, images, landmarks = lfw_pairs
    paths = list(images)[:6]
    att = get_attacker(name)
    serial = [att.embed_at(images[p], landmarks[p]) for p in paths]
    with ThreadPoolExecutor(3) as pool:
        parallel = list(pool.map(lambda p: att.embed_at(images[p], landmarks[p]), paths))
    np.testing.assert_allclose(np.stack(parallel), np.stack(serial), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# FaceNet GraphDef -> ONNX
# ---------------------------------------------------------------------------

def _attr(key: str, payload: bytes) -> bytes:
    return fc._f_bytes(5, fc._f_bytes(1, key) + fc._f_bytes(2, payload))


def _tensor_attr(arr: np.ndarray) -> bytes:
    shape = b"".join(fc._f_bytes(2, fc._f_varint(1, d)) for d in arr.shape)
    dtype = {np.dtype(np.float32): 1, np.dtype(np.int32): 3}[arr.dtype]
    tensor = fc._f_varint(1, dtype) + fc._f_bytes(2, shape) + fc._f_bytes(4, arr.tobytes())
    return fc._f_bytes(8, tensor)


def _node(name, op, inputs=(), **attrs) -> bytes:
    msg = fc._f_bytes(1, name) + fc._f_bytes(2, op)
    msg += b"".join(fc._f_bytes(3, i) for i in inputs)
    for k, v in attrs.items():
        msg += _attr(k, v)
    return fc._f_bytes(1, msg)


def _ints(values) -> bytes:
    return fc._f_bytes(1, fc._f_bytes(3, b"".join(fc._enc_varint(v) for v in values)))


def _tiny_graph(w, b, bn, extra_op: str | None = None) -> bytes:
    """input(1x9x9x2) -> Conv2D(3x3, stride 2, SAME: asymmetric padding) -> BiasAdd
    -> Relu -> MaxPool(2, stride 2, SAME) -> Reshape(1, -1) -> MatMul."""
    g = _node("input", "Placeholder", shape=fc._f_bytes(7, b"".join(
        fc._f_bytes(2, fc._f_varint(1, d)) for d in (1, 9, 9, 2))))
    g += _node("w", "Const", value=_tensor_attr(w))
    g += _node("b", "Const", value=_tensor_attr(b))
    g += _node("conv", "Conv2D", ["input:0", "w"], strides=_ints([1, 2, 2, 1]),
               padding=fc._f_bytes(2, "SAME"))
    g += _node("bias", "BiasAdd", ["conv", "b"])
    g += _node("relu", "Relu", ["bias"])
    g += _node("pool", "MaxPool", ["relu"], ksize=_ints([1, 2, 2, 1]),
               strides=_ints([1, 2, 2, 1]), padding=fc._f_bytes(2, "SAME"))
    g += _node("shape", "Const", value=_tensor_attr(np.array([1, -1], np.int32)))
    g += _node("flat", "Reshape", ["pool", "shape"])
    g += _node("m", "Const", value=_tensor_attr(bn))
    g += _node("embeddings", "MatMul" if extra_op is None else extra_op, ["flat", "m"])
    return g


def _tiny_reference(x, w, b, bn):
    k, s = 3, 2
    h = x.shape[1]
    out = -(-h // s)
    tot = max((out - 1) * s + k - h, 0)
    xp = np.pad(x, ((0, 0), (tot // 2, tot - tot // 2), (tot // 2, tot - tot // 2), (0, 0)))
    y = np.zeros((1, out, out, w.shape[3]))
    for i in range(out):
        for j in range(out):
            y[0, i, j] = np.tensordot(xp[0, i * s:i * s + k, j * s:j * s + k], w, axes=3)
    y = np.maximum(y + b, 0)
    po = -(-out // 2)
    tot = max((po - 1) * 2 + 2 - out, 0)
    yp = np.pad(y, ((0, 0), (tot // 2, tot - tot // 2), (tot // 2, tot - tot // 2), (0, 0)),
                constant_values=-np.inf)
    p = np.zeros((1, po, po, y.shape[3]))
    for i in range(po):
        for j in range(po):
            p[0, i, j] = yp[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(0, 1))
    return p.reshape(1, -1) @ bn


def test_converter_tiny_graph_matches_tf_semantics():
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    m = rng.normal(size=(3 * 3 * 4, 5)).astype(np.float32)
    graph = _tiny_graph(w, b, m)
    assert fc.op_counts(graph) == {"Const": 4, "BiasAdd": 1, "Conv2D": 1, "MatMul": 1,
                                   "MaxPool": 1, "Placeholder": 1, "Relu": 1, "Reshape": 1}
    onnx = fc.convert_graphdef(graph)
    sess = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    x = rng.normal(size=(1, 9, 9, 2)).astype(np.float32)
    y = sess.run(None, {"input": x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(y, _tiny_reference(x.astype(np.float64), w, b, m), atol=1e-4)


def test_converter_rejects_unknown_ops():
    rng = np.random.default_rng(4)
    g = _tiny_graph(rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
                    np.zeros(4, np.float32), np.zeros((36, 5), np.float32), extra_op="Switch")
    with pytest.raises(fc.UnsupportedGraphError, match="Switch"):
        fc.convert_graphdef(g)
    with pytest.raises((fc.UnsupportedGraphError, ValueError)):
        fc.convert_graphdef(b"\x0a\x05garbage-garbage")


@pytest.fixture(scope="module")
def facenet_graph():
    from facedeid.models import model_path

    return fc.parse_graphdef(model_path("facenet").read_bytes())


def _tf_reference(nodes, x):
    """Independent numpy evaluation of the frozen graph with TF (NHWC) semantics."""
    from numpy.lib.stride_tricks import sliding_window_view

    def pad_same(t, k, s):
        pads = []
        for dim, kk, ss in zip(t.shape[1:3], k, s):
            out = -(-dim // ss)
            tot = max((out - 1) * ss + kk - dim, 0)
            pads.append((tot // 2, tot - tot // 2))
        return np.pad(t, ((0, 0), pads[0], pads[1], (0, 0)))

    def windows(t, k, s):
        return sliding_window_view(t, (k[0], k[1]), axis=(1, 2))[:, ::s[0], ::s[1]]

    vals: dict = {}
    order: list[str] = []
    stack = [("embeddings", False)]
    while stack:  # iterative post-order DFS
        name, expanded = stack.pop()
        if name in vals:
            continue
        if expanded:
            vals[name] = None
            order.append(name)
            continue
        stack.append((name, True))
        stack.extend((i, False) for i in nodes[name].inputs if i not in vals)
    for name in order:
        n = nodes[name]
        a, ins = n.attrs, [vals[i] for i in n.inputs]
        op = n.op
        if op == "Placeholder":
            r = x
        elif op == "Const":
            r = a["value"].astype(np.float64) if a["value"].dtype.kind == "f" else a["value"]
        elif op == "Conv2D":
            t, w = ins
            s, k = a["strides"][1:3], w.shape[:2]
            if a["padding"] == "SAME":
                t = pad_same(t, k, s)
            r = np.einsum("nhwcij,ijco->nhwo", windows(t, k, s), w, optimize=True)
        elif op in ("BiasAdd", "Add"):
            r = ins[0] + ins[1]
        elif op == "Relu":
            r = np.maximum(ins[0], 0)
        elif op == "Mul":
            r = ins[0] * ins[1]
        elif op == "ConcatV2":
            r = np.concatenate(ins[:-1], axis=int(ins[-1]))
        elif op in ("MaxPool", "AvgPool"):
            assert a["padding"] == "VALID"
            win = windows(ins[0], a["ksize"][1:3], a["strides"][1:3])
            r = win.max(axis=(-1, -2)) if op == "MaxPool" else win.mean(axis=(-1, -2))
        elif op == "Reshape":
            r = ins[0].reshape(ins[1])
        elif op == "MatMul":
            r = ins[0] @ ins[1]
        elif op == "FusedBatchNorm":
            t, sc, off, mu, var = ins
            r = (t - mu) / np.sqrt(var + a["epsilon"]) * sc + off
        elif op == "Square":
            r = ins[0] ** 2
        elif op == "Sum":
            r = ins[0].sum(axis=tuple(np.atleast_1d(ins[1])), keepdims=bool(a["keep_dims"]))
        elif op == "Maximum":
            r = np.maximum(ins[0], ins[1])
        elif op == "Rsqrt":
            r = 1 / np.sqrt(ins[0])
        else:
            raise NotImplementedError(op)
        vals[name] = r
    return vals["embeddings"]


def test_facenet_onnx_parity_with_graphdef(facenet_graph):
    att = get_attacker("facenet")
    sess = att.session()
    x = np.random.default_rng(5).normal(size=(1, 160, 160, 3)).astype(np.float32)
    ref = _tf_reference(facenet_graph, x.astype(np.float64))
    y = sess.run(None, {"input": x.transpose(0, 3, 1, 2)})[0]
    assert y.shape == (1, 512)
    np.testing.assert_allclose(y, ref, atol=2e-6)
    # batched input gives the same rows
    x2 = np.concatenate([x, x[:, ::-1]]).transpose(0, 3, 1, 2)
    y2 = sess.run(None, {"input": np.ascontiguousarray(x2)})[0]
    np.testing.assert_allclose(y2[0], y[0], atol=1e-5)


def test_facenet_conversion_is_cached_and_corruption_rebuilt(tmp_path):
    from facedeid.models import model_path

    pb = model_path("facenet")
    data1, converted1 = fc.load_onnx_bytes(pb, cache_root=tmp_path)
    data2, converted2 = fc.load_onnx_bytes(pb, cache_root=tmp_path)
    assert converted1 and not converted2 and data1 == data2   # the second load is the cached file
    target = fc.cached_onnx_path(pb, tmp_path)
    assert target.is_file() and not list(target.parent.glob("*.tmp"))
    # flip a byte in the cached model: detected (sidecar hash) and rebuilt
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    data3, converted3 = fc.load_onnx_bytes(pb, cache_root=tmp_path)
    assert converted3 and data3 == data1 and target.read_bytes() == data1
    # a truncated file too
    target.write_bytes(data1[:1000])
    data4, converted4 = fc.load_onnx_bytes(pb, cache_root=tmp_path)
    assert converted4 and data4 == data1


# ---------------------------------------------------------------------------
# embedding cache
# ---------------------------------------------------------------------------

def test_cache_round_trip_and_fta(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    k1 = CacheKey("file:abc", "sface-v1", "naive")
    k2 = CacheKey("file:abc", "sface-v1", "aligned", "1.00,2.00")
    assert cache.get(k1) is MISSING and k1 not in cache
    vec = np.arange(128, dtype=np.float32) / 7
    cache.put(k1, vec)
    cache.put(k2, None)                         # failure to acquire
    np.testing.assert_array_equal(cache.get(k1), vec)
    assert cache.get(k2) is None and k2 in cache
    assert len(cache) == 2
    got = cache.get_many([k1, k2, CacheKey("file:zzz", "sface-v1", "naive")])
    assert set(got) == {k1, k2}
    # persistent: a new instance (a resumed run) sees the entries
    cache.close()
    again = EmbeddingCache(tmp_path / "emb.sqlite")
    np.testing.assert_array_equal(again.get(k1), vec)
    with pytest.raises(ValueError):
        again.put(k1, np.array([np.nan], np.float32))
    with pytest.raises(ValueError):
        CacheKey("file:abc", "sface-v1", "sideways")


def test_cache_keys_are_sensitive(tmp_path):
    att = get_attacker("sface")
    img = np.zeros((20, 20, 3), np.uint8)
    lm = np.array([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]], float)
    base = make_key(att, img, "aligned", lm)
    img2 = img.copy()
    img2[0, 0, 0] = 1
    assert make_key(att, img2, "aligned", lm) != base                 # pixels
    assert make_key(att, img.astype(np.uint16), "aligned", lm) != base  # dtype
    assert make_key(att, img, "aligned", lm + 0.02) != base           # landmarks
    assert make_key(att, img, "aligned", lm + 0.001) == base          # below rounding
    assert make_key(att, img, "naive") != base                        # mode
    assert make_key(get_attacker("dlib"), img, "aligned", lm) != base  # attacker
    assert make_key(att, img, "naive") == make_key(att, img.copy(), "naive")
    f1, f2 = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(f1), img)
    cv2.imwrite(str(f2), img2)
    assert make_key(att, f1, "naive") != make_key(att, f2, "naive")   # file bytes
    with pytest.raises(ValueError):
        make_key(att, img, "aligned")


def test_cached_embed_uses_cache(tmp_path, astronaut):
    class Counting:
        name, cache_tag, calls = "fake", "fake-v1", 0

        def embed_naive(self, rgb):
            Counting.calls += 1
            return None if rgb.max() == 0 else rgb.reshape(-1)[:4].astype(np.float32)

        def embed_at(self, rgb, lm):
            Counting.calls += 1
            return np.asarray(lm, np.float32).reshape(-1)

    cache = EmbeddingCache(tmp_path / "c.sqlite")
    att = Counting()
    path = tmp_path / "astro.png"
    cv2.imwrite(str(path), astronaut[:, :, ::-1])
    v1 = cached_embed(att, path, "naive", cache=cache)
    v2 = cached_embed(att, path, "naive", cache=cache)
    np.testing.assert_array_equal(v1, v2)
    blank = np.zeros((8, 8, 3), np.uint8)
    assert cached_embed(att, blank, "naive", cache=cache) is None
    assert cached_embed(att, blank, "naive", cache=cache) is None   # FTA cached
    lm = np.ones((5, 2))
    cached_embed(att, blank, "aligned", lm, cache=cache)
    cached_embed(att, blank, "aligned", lm, cache=cache)
    assert Counting.calls == 3


def test_cache_concurrent_writers_and_corrupt_file(tmp_path):
    path = tmp_path / "emb.sqlite"
    cache = EmbeddingCache(path)
    errors = []

    def writer(t):
        try:
            for i in range(25):
                cache.put(CacheKey(f"arr:{t}-{i}", "x-v1", "naive"),
                          np.full(4, t * 100 + i, np.float32))
                cache.get(CacheKey(f"arr:{(t + 1) % 4}-{i}", "x-v1", "naive"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(cache) == 100
    cache.close()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.warns(UserWarning, match="unreadable"):
        fresh = EmbeddingCache(bad)
    assert len(fresh) == 0
    fresh.put(CacheKey("arr:x", "x-v1", "naive"), None)
    assert list(tmp_path.glob("bad.sqlite.*.corrupt"))


def test_attacker_detection_skips_the_non_finite_rows_opencv_can_return():
    class Net:
        def setInputSize(self, size):
            pass

        def detect(self, bgr):
            good = np.r_[10, 12, 30, 30, np.arange(10) + 15, 0.9].astype(np.float32)
            bad = np.r_[-np.inf, -5e12, np.nan, -5e12, np.zeros(10), 1.0].astype(np.float32)
            return 1, np.stack([bad, good])

    det = AttackerDetector()
    det._detector = lambda: Net()
    faces = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert len(faces) == 1 and faces[0].box == (10.0, 12.0, 40.0, 42.0)
