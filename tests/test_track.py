"""Tracking with synthetic detections: association, hold, look-ahead back-fill, cuts."""

from __future__ import annotations

import numpy as np
import pytest

from facedeid.track import (
    BoxKalman,
    SceneCutDetector,
    Tracker,
    expand_box,
    move_face,
    union_box,
)
from facedeid.types import Face, box_iou


def face(x, y, w=40.0, h=50.0, score=0.9, lm=False):
    pts = None
    if lm:
        pts = [(x + 0.3 * w, y + 0.4 * h), (x + 0.7 * w, y + 0.4 * h), (x + 0.5 * w, y + 0.6 * h),
               (x + 0.35 * w, y + 0.8 * h), (x + 0.65 * w, y + 0.8 * h)]
    return Face((x, y, x + w, y + h), score, landmarks5=pts)


def run(tracker, detections):
    """Feed ``detections[i]`` (list of faces) for frames 0..n-1; {frame: [TrackBox]}."""
    out = {}
    for i, faces in enumerate(detections):
        out.update(dict(tracker.update(i, faces)))
    out.update(dict(tracker.flush()))
    assert sorted(out) == list(range(len(detections)))
    return out


def contains(outer, inner, tol=1e-6):
    return (outer[0] <= inner[0] + tol and outer[1] <= inner[1] + tol
            and outer[2] >= inner[2] - tol and outer[3] >= inner[3] - tol)


def test_every_frame_returned_once_in_order():
    tr = Tracker(hold=3, lookahead=4)
    seen = []
    for i in range(20):
        seen += [k for k, _ in tr.update(i, [face(10 + i, 10)] if i % 3 else [])]
        assert all(k <= i - 4 for k in seen)          # a frame waits `lookahead` frames
    seen += [k for k, _ in tr.flush()]
    assert seen == list(range(20))
    assert tr.flush() == []


def test_consecutive_frames_required():
    tr = Tracker()
    tr.update(5, [])
    with pytest.raises(ValueError):
        tr.update(7, [])


def test_static_face_is_one_track_with_detected_boxes():
    dets = [[face(100, 80)] for _ in range(30)]
    out = run(Tracker(hold=5, lookahead=5), dets)
    assert {b.track_id for boxes in out.values() for b in boxes} == {0}
    for k, boxes in out.items():
        assert len(boxes) == 1 and boxes[0].status == "detected"
        assert boxes[0].face.face_id == 0
        assert contains(boxes[0].box, dets[k][0].box)


def test_gap_up_to_hold_is_filled_and_longer_gap_is_not():
    hold = 4
    # detections on 0..9, gap 10..13 (4 frames = hold), detections 14..19, then nothing
    dets = [[face(100 + 2 * i, 80)] if not 10 <= i <= 13 else [] for i in range(20)] + [[]] * 10
    out = run(Tracker(hold=hold, lookahead=2), dets)
    ids = {b.track_id for boxes in out.values() for b in boxes}
    assert ids == {0}, "a gap of `hold` frames keeps one track"
    for k in range(10, 14):
        (b,) = out[k]
        assert b.status in ("interpolated", "held")
        # the box covers where the face really was (linear motion)
        assert contains(b.box, face(100 + 2 * k, 80).box)
    # after the last detection (19): held for `hold` frames, then nothing
    for k in range(20, 20 + hold):
        assert [b.status for b in out[k]] == ["held"]
    for k in range(20 + hold, 30):
        assert out[k] == []


def test_gap_longer_than_hold_starts_a_new_track():
    hold = 3
    dets = [[face(100, 80)] if i < 10 or i >= 10 + hold + 2 else [] for i in range(25)]
    out = run(Tracker(hold=hold, lookahead=0), dets)
    ids = sorted({b.track_id for boxes in out.values() for b in boxes})
    assert ids == [0, 1]
    assert [b.status for b in out[9 + hold]] == ["held"]   # last detection 9, held 10..12
    assert out[10 + hold] == [] and out[10 + hold + 1] == []  # lookahead 0: no backfill


def test_interpolation_uses_the_detection_after_the_gap():
    # with look-ahead >= gap, the box in the gap is interpolated between both ends
    dets = [[face(10 * i, 50)] if i not in (5, 6) else [] for i in range(12)]
    out = run(Tracker(hold=5, lookahead=5, smooth=0), dets)
    for k in (5, 6):
        (b,) = out[k]
        assert b.status == "interpolated"
        truth = face(10 * k, 50).box
        assert box_iou(b.box, truth) > 0.8 and contains(b.box, truth)


def test_backfill_over_lookahead():
    L = 6
    # a face detected from frame 10 on; frames 4..9 are back-filled, 0..3 are not
    dets = [[] for _ in range(10)] + [[face(200, 100)] for _ in range(10)]
    out = run(Tracker(hold=3, lookahead=L), dets)
    for k in range(0, 10 - L):
        assert out[k] == []
    for k in range(10 - L, 10):
        (b,) = out[k]
        assert b.status == "backfilled" and b.track_id == 0
        assert contains(b.box, face(200, 100).box)
    assert [b.status for b in out[10]] == ["detected"]


def test_backfill_follows_motion_backwards():
    # a face entering from the left at 8 px/frame, first detected at frame 8
    dets = [[] for _ in range(8)] + [[face(8 * i, 100)] for i in range(8, 20)]
    out = run(Tracker(hold=3, lookahead=8, smooth=0), dets)
    for k in range(1, 8):
        (b,) = out[k]
        assert b.status == "backfilled"
        truth = face(8 * k, 100).box
        assert box_iou(b.box, truth) > 0.3         # extrapolated along the motion
        assert contains(b.box, dets[8][0].box)      # and always covers the first box


def test_backfill_stops_at_video_start():
    dets = [[face(50, 50)]] + [[] for _ in range(3)]
    out = run(Tracker(hold=2, lookahead=5), dets)
    assert [b.status for b in out[0]] == ["detected"]


def test_scene_cut_resets_tracks():
    hold, L = 5, 5
    dets = [[face(100, 100)] for _ in range(10)] + [[face(102, 100)] for _ in range(10)]
    tr = Tracker(hold=hold, lookahead=L)
    out = {}
    for i, faces in enumerate(dets):
        out.update(dict(tr.update(i, faces, cut=(i == 10))))
    out.update(dict(tr.flush()))
    assert tr.cuts == [10]
    # same place, but a cut: a new track, no hold across, no backfill before the cut
    assert [b.track_id for b in out[9]] == [0]
    assert [b.track_id for b in out[10]] == [1]
    assert all(b.track_id == 0 for k in range(10) for b in out[k])
    assert all(b.track_id == 1 for k in range(10, 20) for b in out[k])


def test_no_hold_across_a_cut():
    dets = [[face(100, 100)] for _ in range(5)] + [[] for _ in range(10)]
    tr = Tracker(hold=8, lookahead=0)
    out = {}
    for i, faces in enumerate(dets):
        out.update(dict(tr.update(i, faces, cut=(i == 7))))
    out.update(dict(tr.flush()))
    assert [b.status for b in out[5]] == ["held"] and [b.status for b in out[6]] == ["held"]
    assert all(out[k] == [] for k in range(7, 15))


def test_crossing_faces_keep_their_identity():
    tr = Tracker(hold=5, lookahead=3)
    dets = []
    for i in range(40):
        a = face(20 + 8 * i, 100 + 0.5 * i, score=0.9)      # moving right
        b = face(332 - 8 * i, 112, score=0.8)                # moving left, crossing at i ~ 19
        dets.append([b, a] if i % 2 else [a, b])             # detector order changes
    out = run(tr, dets)
    assert tr.n_tracks == 2
    for k, boxes in out.items():
        by_id = {b.track_id: b for b in boxes}
        assert set(by_id) == {0, 1}
        # track 0 started as the face on the left: it is always the one moving right
        assert by_id[0].score == pytest.approx(0.9) and by_id[1].score == pytest.approx(0.8)
        assert contains(by_id[0].box, face(20 + 8 * k, 100 + 0.5 * k).box)


def test_hungarian_prefers_the_globally_best_assignment():
    # track A at x=100, track B at x=160; next frame detections at 130 and 185:
    # greedy on A would take 130 (closest to A? equally close to B); Hungarian gives A->130, B->185
    tr = Tracker(hold=2, lookahead=0, dist_max=2.0)
    tr.update(0, [face(100, 100), face(160, 100)])
    out = dict(tr.update(1, [face(185, 100), face(130, 100)]))
    boxes = {b.track_id: b for b in out[1]}
    assert boxes[0].raw_box[0] == 130 and boxes[1].raw_box[0] == 185


def test_far_detection_starts_new_track():
    tr = Tracker(hold=2, lookahead=0)
    tr.update(0, [face(10, 10)])
    out = dict(tr.update(1, [face(400, 300)]))
    assert sorted(b.track_id for b in out[1]) == [0, 1]
    assert {b.status for b in out[1]} == {"held", "detected"}


def test_painted_box_covers_raw_detection_despite_jitter():
    rng = np.random.default_rng(0)
    dets = []
    for i in range(30):
        j = rng.normal(0, 3, 4)
        dets.append([Face((100 + 5 * i + j[0], 80 + j[1], 160 + 5 * i + j[2], 150 + j[3]), 0.9)])
    out = run(Tracker(hold=3, lookahead=4, smooth=2), dets)
    for k, (b,) in out.items():
        assert b.status == "detected"
        assert contains(b.box, dets[k][0].box)
        assert b.raw_box == dets[k][0].box
        # smoothing never lags: the smoothed centre is near the true centre of the moving head
        cx = (b.box[0] + b.box[2]) / 2
        assert abs(cx - (130 + 5 * k)) < 8


def test_boxes_clipped_to_frame():
    out = run(Tracker(hold=2, lookahead=0, size=(100, 80)), [[face(80, 60)]])
    (b,) = out[0]
    assert b.box == (80.0, 60.0, 100.0, 80.0)


def test_landmarks_move_with_box_and_face_id_is_track_id():
    f = face(10, 10, lm=True)
    g = move_face(f, (20, 30, 100, 130), face_id=7)
    assert g.face_id == 7
    assert g.box == (20.0, 30.0, 100.0, 130.0)
    np.testing.assert_allclose(g.landmarks5[0], (20 + 0.3 * 80, 30 + 0.4 * 100))


def test_box_helpers():
    assert union_box((0, 0, 1, 1), (2, 2, 3, 3)) == (0, 0, 3, 3)
    assert expand_box((0, 0, 10, 20), 0.5) == (-2.5, -5.0, 12.5, 25.0)


def test_kalman_tracks_constant_velocity():
    kf = BoxKalman((0, 0, 20, 20))
    for i in range(1, 15):
        kf.predict()
        kf.update((5 * i, 2 * i, 5 * i + 20, 2 * i + 20))
    pred = kf.predict()
    assert pred[0] == pytest.approx(75, abs=1.5) and pred[1] == pytest.approx(30, abs=1.5)


def test_bad_parameters():
    with pytest.raises(ValueError):
        Tracker(hold=-1)


# ---------------------------------------------------------------- scene cuts
def _scene(seed, shift=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (9, 16, 3)).astype(np.uint8)
    img = np.kron(base, np.ones((40, 40, 1), dtype=np.uint8))
    return np.roll(img, shift, axis=1)


def test_scene_cut_detector_synthetic():
    det = SceneCutDetector()
    assert det(_scene(1)) is False
    assert det(_scene(1, shift=6)) is False            # small pan
    brighter = np.clip(_scene(1, shift=6).astype(int) + 25, 0, 255).astype(np.uint8)
    assert det(brighter) is False                      # flash / exposure change
    assert det(_scene(2)) is True                      # another shot
    assert det(_scene(2)) is False
    assert det(np.zeros((360, 640, 3), np.uint8)) is True   # cut to black
    assert det(np.zeros((360, 640, 3), np.uint8)) is False
    det.reset()
    assert det(_scene(3)) is False


@pytest.mark.data
def test_scene_cuts_in_real_clip(data_dir):
    av = pytest.importorskip("av")
    det = SceneCutDetector()
    cuts = []
    with av.open(str(data_dir / "video" / "short_hamilton_clip.mp4")) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if det(fr.to_ndarray(format="rgb24")):
                cuts.append(i)
    assert cuts == [20, 82, 211]       # checked by eye: the three shot changes of the clip
