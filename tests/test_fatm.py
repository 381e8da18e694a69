"""Seed 004's FATM (issue 7, stage 2): model, augmentation, training, inference, method, CLI.

Torch is the optional ``torch`` extra; the ``dev`` extra installs it, so these tests run
wherever the test suite is installed with ``make``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra (pip install 'facedeid[torch]') is needed")

from facedeid.fatm.data import CANVAS, FaceSets  # noqa: E402
from facedeid.fatm.model import FATM, SIZE  # noqa: E402
from facedeid.fatm.train import TrainConfig, augment, train  # noqa: E402


def test_model_follows_seed_004_at_reduced_width():
    m = FATM(["real", "a", "b"], width_div=16)
    convs = [c.out_channels for c in m.encoder.convs]
    assert convs == [128 // 16, 256 // 16, 512 // 16, 1024 // 16]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in m.encoder.convs)
    assert m.encoder.fc1.out_features == 1024 // 16
    assert m.encoder.fc2.out_features == 4 * 4 * (1024 // 16)
    ups = [u.conv.out_channels // 4 for u in m.decoders[0].ups]
    assert ups == [512 // 16, 256 // 16, 128 // 16, 64 // 16]
    x = torch.rand(2, 3, SIZE, SIZE)
    y = m(x, 1).detach()
    assert y.shape == (2, 3, SIZE, SIZE) and float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(ValueError):
        FATM(["only"])


def test_augment_is_seeded_and_keeps_range_and_size():
    x = torch.rand(4, 3, CANVAS, CANVAS)
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    c = augment(x, torch.Generator().manual_seed(2))
    assert a.shape == (4, 3, SIZE, SIZE)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def _tiny_sets(n=12) -> FaceSets:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS]
    base = ((xx - CANVAS / 2) ** 2 / 500 + (yy - CANVAS / 2) ** 2 / 700 < 1.0)
    sets = []
    for colour in ((200, 150, 120), (90, 60, 50), (160, 190, 220)):
        imgs = np.zeros((n, CANVAS, CANVAS, 3), np.uint8)
        for i in range(n):
            imgs[i] = rng.integers(0, 40, (CANVAS, CANVAS, 3))
            imgs[i][base] = colour
        sets.append(imgs)
    return FaceSets(["real", "avg-a", "avg-b"], sets, [f"s{i}" for i in range(n)])


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("fatm") / "fatm.pt"
    cfg = TrainConfig(steps=60, width_div=16, batch=4, lr=2e-3, seed=0, log_every=30)
    _, summary = train(_tiny_sets(), cfg, out=out)
    return out, summary


def test_training_lowers_the_l1_error_and_is_reproducible(tiny_weights, tmp_path):
    path, summary = tiny_weights
    hist = summary["history"]
    assert summary["steps_done"] == 60 and len(hist) == 2
    first = np.mean(list(hist[0]["l1"].values()))
    last = np.mean(list(hist[-1]["l1"].values()))
    assert last < first
    again = tmp_path / "again.pt"
    train(_tiny_sets(), TrainConfig(steps=60, width_div=16, batch=4, lr=2e-3, seed=0, log_every=30),
          out=again)
    a = torch.load(path, weights_only=True)["state"]
    b = torch.load(again, weights_only=True)["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_saved_weights_hold_the_encoder_and_donor_decoders_only(tiny_weights):
    from facedeid.fatm.infer import load_fatm

    path, _ = tiny_weights
    fatm = load_fatm(path)
    assert fatm.donors == ["avg-a", "avg-b"]
    face = np.full((SIZE, SIZE, 3), 128, np.uint8)
    out = fatm.synthesize(face, 1)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    assert not np.array_equal(fatm.synthesize(face, 0), out)


def test_missing_weights_say_how_to_train(tmp_path):
    from facedeid.errors import ModelNotFoundError
    from facedeid.fatm.infer import load_fatm

    with pytest.raises(ModelNotFoundError, match="train-fatm"):
        load_fatm(tmp_path / "none.pt")


def test_method_fatm_on_a_real_face(tiny_weights, data_dir):
    """Default fatm (torch is there): the face is replaced inside seed 004's mask and
    protected until SFace and FaceNet no longer match it; deterministic with a seed.
    Without protection, the larger mask and the identity check over the donors."""
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.pipeline import Anonymizer

    path, _ = tiny_weights
    img = load_rgb(sorted((data_dir / "lfw" / "images" / "Adam_Sandler").iterdir())[0])
    anon = Anonymizer(method="fatm", seed=0, weights=str(path))
    res = anon.anonymize(img)
    face = max(res.faces, key=lambda f: f.area)
    rec = res.record["faces"][res.faces.index(face)]
    assert rec["method"] == "fatm" and rec["painted"]
    detail = rec["detail"]
    assert detail["geometry"]["region"] == "face_hull"
    assert detail["protection"]["recognizers"] == ["sface", "facenet"]
    assert detail["identity_check"] == "passed" and detail["protection"]["passed"]
    changed = np.any(res.image != img, axis=2)
    x0, y0, x1, y1 = (int(v) for v in face.box)
    assert changed[y0:y1, x0:x1].mean() > 0.2
    assert not changed[:, :10].any()
    again = Anonymizer(method="fatm", seed=0, weights=str(path)).anonymize(img)
    assert np.array_equal(again.image, res.image)
    plain = Anonymizer(method="fatm", seed=0, weights=str(path), protect="none").anonymize(img)
    prec = plain.record["faces"][plain.faces.index(max(plain.faces, key=lambda f: f.area))]
    assert prec["detail"]["geometry"]["region"] == "face_outline"
    assert "protection" not in prec["detail"] and prec["detail"]["donors_tried"] >= 1
    assert np.any(plain.image != img, axis=2)[y0:y1, x0:x1].mean() > 0.3


def test_fatm_face_the_detector_loses_is_redone_by_replace_in_images_not_in_video(
        tiny_weights, data_dir, monkeypatch):
    """detect_check: a model face the default detector no longer finds is replaced by
    replace's donor (protected the same way) and the audit says so; in a video frame
    (auto) the check is left out, so a track's face does not switch between donors."""
    import facedeid.methods.fatm as F
    from facedeid.evaluate.datasets import load_rgb
    from facedeid.pipeline import Anonymizer
    from facedeid.replace.donors import load_pool

    path, _ = tiny_weights
    img = load_rgb(sorted((data_dir / "lfw" / "images" / "Colin_Powell").iterdir())[0])
    calls = []

    def lost_then_found(out, face, params):
        calls.append(out.copy())
        return len(calls) > 1            # fatm's face lost, replace's found

    monkeypatch.setattr(F, "still_detected", lost_then_found)
    anon = Anonymizer(method="fatm", seed=0, weights=str(path), protect="none", attacker="sface")
    res = anon.anonymize(img)
    face = max(res.faces, key=lambda f: f.area)
    rec = res.record["faces"][res.faces.index(face)]
    check = rec["detail"]["detector_check"]
    assert check["redone_by"] == "replace" and check["replace"] == "passed"
    assert check["fatm"] == "lost by the default detector" and "fatm_donor" in check
    assert len(calls) == 2 * len(res.faces) and rec["method"] == "fatm" and rec["painted"]
    # the donor now is one of replace's averaged donors, and the face differs from fatm's
    assert 0 <= rec["detail"]["donor"] < len(load_pool("averaged"))
    assert not np.array_equal(calls[0], calls[1])
    x0, y0, x1, y1 = (int(v) for v in face.box)
    assert np.any(res.image != img, axis=2)[y0:y1, x0:x1].mean() > 0.3
    # off: fatm's face is kept and not checked
    calls.clear()
    off = Anonymizer(method="fatm", seed=0, weights=str(path), protect="none",
                     detect_check=False).anonymize(img)
    assert not calls and all("detector_check" not in r["detail"] for r in off.record["faces"])
    # a video frame: auto leaves the check out (paint with stream=True, as video does)
    out, recs = anon.paint(img, res.faces, stream=True)
    assert not calls and all("detector_check" not in r["detail"] for r in recs)
    assert F.check_on({}) and not F.check_on({"_stream": True})
    assert F.check_on({"_stream": True, "detect_check": "true"})
    assert not F.check_on({"detect_check": "false"})
    with pytest.raises(ValueError, match="detect_check"):
        F.check_on({"detect_check": "sometimes"})


def test_train_fatm_command_on_lfw(data_dir, tmp_path, capsys):
    from facedeid.cli import main

    out = tmp_path / "w.pt"
    rc = main(["train-fatm", "--data", str(data_dir), "--limit", "6", "--steps", "8",
               "--width-div", "16", "--batch", "2", "--donors", "2", "-o", str(out)])
    assert rc == 0 and out.is_file()
    payload = torch.load(out, weights_only=True)
    assert payload["config"]["set_names"][0].startswith("avg-")
    assert payload["summary"]["steps_done"] == 8
    assert payload["summary"]["data"]["stage1_settings"]["region"] == "face_outline"
