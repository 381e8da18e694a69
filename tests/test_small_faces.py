"""Small faces: the default detector's agreement rule and the grown paint region."""

from __future__ import annotations

import numpy as np
import pytest

from facedeid.composite import SMALL_FACE_SCALE, SMALL_FACE_SIZES, face_size, grown_mask_scale
from facedeid.detect import DEFAULT_DETECTOR, get_detector
from facedeid.detect.base import Detector
from facedeid.detect.multiscale import DEFAULT_CONFIG, TiledDetector, agree
from facedeid.pipeline import Anonymizer
from facedeid.types import Face


def face(x1, y1, x2, y2, score, name="t"):
    return Face(box=(float(x1), float(y1), float(x2), float(y2)), score=score, detector=name)


# ---------------------------------------------------------------- agreement rule
def test_agree_keeps_sure_and_supported_faces_only():
    sure = face(0, 0, 20, 20, 0.9)
    supported = face(100, 100, 120, 120, 0.4)
    lonely = face(200, 200, 220, 220, 0.4)
    vote = face(101, 101, 121, 121, 0.15, "cf")          # below full_accept: only a vote
    big = face(300, 300, 400, 400, 0.6, "cf")
    out = agree([sure, supported, lonely], [vote, big], accept=0.45, full_accept=0.35)
    assert out == [sure, supported, big]
    # the support must overlap enough
    far = face(112, 112, 132, 132, 0.9, "cf")           # IoU with `supported` ~ 0.1
    assert agree([supported], [far], 0.45, 0.35, support_iou=0.3) == [far]
    assert agree([supported], [far], 0.45, 0.35, support_iou=0.05) == [supported, far]
    assert agree([], [vote], 0.45, 0.35) == []
    assert agree([lonely], [], 0.45, 0.35) == []


class Scripted(Detector):
    """Returns fixed faces (scaled to the input it is given) above its threshold."""

    name = "scripted"
    default_threshold = 0.0

    def __init__(self, faces, ref_width, threshold=None):
        super().__init__(threshold)
        self.faces, self.ref_width = faces, ref_width

    def _detect(self, rgb):
        k = rgb.shape[1] / self.ref_width
        return [f.replace(box=tuple(v * k for v in f.box)) for f in self.faces]


def test_tiled_detector_with_agreement_rule():
    img = np.zeros((200, 300, 3), np.uint8)
    tile_faces = [face(10, 10, 30, 30, 0.9), face(100, 100, 120, 120, 0.4),
                  face(200, 100, 220, 120, 0.4), face(50, 150, 60, 160, 0.2)]
    full_faces = [face(101, 100, 121, 120, 0.12, "cf"), face(150, 20, 250, 120, 0.8, "cf")]
    base = Scripted(tile_faces, 300, threshold=0.3)        # the rescue threshold
    full = Scripted(full_faces, 300, threshold=0.1)        # candidates that can vote
    det = TiledDetector(base, upscale=1.5, full=full, full_scale=0.5, accept=0.45, full_accept=0.35)
    got = sorted(tuple(round(v) for v in f.box) for f in det.detect(img))
    assert got == [(10, 10, 30, 30), (100, 100, 120, 120), (150, 20, 250, 120)]
    assert det.threshold == 0.45
    det.threshold = 0.3                                   # the rule's accept threshold moves
    assert det.accept == 0.3 and base.threshold == 0.3
    assert len(det.detect(img)) == 4                     # the 0.4 face at (200, 100) now too
    # without the rule: everything above the detectors' own thresholds, merged by NMS
    plain = TiledDetector(base, upscale=1.5, full=full, full_scale=0.5)
    assert len(plain.detect(img)) == 4                   # the 0.12 vote is merged into its twin by NMS
    with pytest.raises(ValueError):
        TiledDetector(base, accept=0.45)


def test_default_detector_configuration_and_threshold_scaling():
    det = get_detector(DEFAULT_DETECTOR)
    assert det.accept == DEFAULT_CONFIG["threshold"] == det.threshold
    assert det.base.threshold == DEFAULT_CONFIG["rescue_threshold"]
    assert det.full_accept == DEFAULT_CONFIG["full_threshold"]
    assert det.full.threshold == DEFAULT_CONFIG["support_threshold"]
    strict = get_detector(DEFAULT_DETECTOR, threshold=0.9)     # everything moves x2
    assert strict.threshold == pytest.approx(0.9)
    assert strict.base.threshold == pytest.approx(0.7)
    assert strict.full_accept == pytest.approx(0.7)
    assert strict.full.threshold == pytest.approx(0.2)
    assert get_detector(DEFAULT_DETECTOR, threshold=0.9, full_threshold=0.5).full_accept == 0.5
    old = get_detector("yunet-tiled-v1")
    assert old.accept is None and old.threshold == 0.45 and old.full.threshold == 0.25


@pytest.mark.data
def test_default_keeps_the_previous_defaults_confident_faces(data_dir):
    """The agreement rule only decides doubtful faces: every face the previous
    default finds at a score >= 0.5 on the labelled group photos is found again."""
    import cv2

    from facedeid.detect import iou_matrix

    new, old = get_detector(DEFAULT_DETECTOR), get_detector("yunet-tiled-v1")
    checked = 0
    for name in ("2008_002470.jpg", "2008_001322.jpg", "2008_002506.jpg", "2008_004176.jpg"):
        path = data_dir / "multiface" / "voc_dlib" / name
        rgb = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])
        a = [f.box for f in new.detect(rgb)]
        b = [f.box for f in old.detect(rgb) if f.score >= 0.5]
        assert b, name
        assert (iou_matrix(np.array(b), np.array(a)).max(axis=1) >= 0.5).all(), name
        checked += 1
    assert checked == 4


# ---------------------------------------------------------------- grown paint region
def test_grown_mask_scale_ramp():
    lo, hi = SMALL_FACE_SIZES
    assert grown_mask_scale(hi) == pytest.approx(1.3)
    assert grown_mask_scale(500.0) == pytest.approx(1.3)
    assert grown_mask_scale(lo) == pytest.approx(SMALL_FACE_SCALE)
    assert grown_mask_scale(1.0) == pytest.approx(SMALL_FACE_SCALE)
    assert grown_mask_scale((lo + hi) / 2) == pytest.approx((1.3 + SMALL_FACE_SCALE) / 2)
    sizes = np.linspace(1, 80, 50)
    s = grown_mask_scale(sizes)
    assert s.shape == sizes.shape and np.all(np.diff(s) <= 1e-12)      # never grows with size
    assert grown_mask_scale(10.0, 1.0, None) == 1.0                    # growth off
    assert grown_mask_scale(10.0, 4.0, 3.0) == 4.0                     # never shrinks a region
    assert grown_mask_scale(hi, 1.0) == pytest.approx(1.0)             # big faces: mask_scale exactly
    with pytest.raises(ValueError):
        grown_mask_scale(10.0, sizes=(40, 20))


def _painted(anon, size, img_side=200):
    img = np.full((img_side, img_side, 3), 128, np.uint8)
    c = img_side / 2
    f = Face(box=(c - size / 2, c - size / 2, c + size / 2, c + size / 2), score=0.9)
    out, rec = anon.paint(img, [f])
    return f, out != img, rec[0]


@pytest.mark.parametrize("size", [12.0, 30.0, 60.0])
def test_pipeline_paints_the_grown_region_and_nothing_else(size):
    anon = Anonymizer("blackout", shape="box")
    f, changed, rec = _painted(anon, size)
    scale = grown_mask_scale(face_size(f))
    assert rec["region"]["mask_scale"] == pytest.approx(scale)
    half = size * scale / 2
    ys, xs = np.nonzero(changed.any(axis=2))
    # every changed pixel's centre lies in the grown box, and the box is filled
    assert xs.min() + 0.5 >= 100 - half and xs.max() + 0.5 <= 100 + half
    assert ys.min() + 0.5 >= 100 - half and ys.max() + 0.5 <= 100 + half
    inner = int(np.ceil(100 - half + 0.5)), int(np.floor(100 + half - 0.5))
    assert changed[inner[0]:inner[1] + 1, inner[0]:inner[1] + 1].all()
    if size >= SMALL_FACE_SIZES[1]:
        assert scale == pytest.approx(1.3)


def test_small_face_growth_can_be_turned_off():
    f, grown, _ = _painted(Anonymizer("blackout", shape="ellipse"), 14.0)
    _, plain, rec = _painted(Anonymizer("blackout", shape="ellipse", small_face_scale=None), 14.0)
    assert rec["region"]["mask_scale"] == 1.3
    assert plain.sum() < grown.sum() and not (plain & ~grown).any()   # plain region inside grown
    with pytest.raises(ValueError):
        Anonymizer("blackout", small_face_scale=0)


def test_detection_benchmark_scores_what_the_pipeline_paints(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_detection import coverage, painted_scales

    anon = Anonymizer()
    boxes = np.array([[10, 10, 22, 24], [50, 50, 80, 80], [100, 100, 190, 200]], float)
    faces = [Face(box=tuple(b), score=0.9) for b in boxes]
    assert painted_scales(boxes) == pytest.approx([anon.face_mask_scale(f) for f in faces])
    # a GT box as big as the painted ellipse's inscribed square is covered only with the
    # grown scale
    cx, cy, s = 16.0, 17.0, 12 * painted_scales(boxes[:1])[0] / 2 ** 0.5 * 0.98
    gt = np.array([[cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]])
    assert coverage(boxes[:1], gt, "ellipse", painted_scales(boxes[:1]))[0] >= 0.99
    assert coverage(boxes[:1], gt, "ellipse", 1.3)[0] < 0.8


def test_cli_small_face_scale_option():
    from facedeid.cli import build_parser

    p = build_parser()
    assert p.parse_args(["anonymize", "x.jpg"]).small_face_scale == SMALL_FACE_SCALE
    assert p.parse_args(["anonymize", "x.jpg", "--small-face-scale", "off"]).small_face_scale is None
    assert p.parse_args(["anonymize", "x.jpg", "--small-face-scale", "2.5"]).small_face_scale == 2.5
    with pytest.raises(SystemExit):
        p.parse_args(["anonymize", "x.jpg", "--small-face-scale", "big"])
