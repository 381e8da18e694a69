"""``facedeid evaluate`` end to end.

Two layers:

* a synthetic labelled dataset (made here: identity = a random 8x8 pattern in
  the middle of the image) attacked by a tiny pixel-pattern attacker, with a
  fixed-box detector: every code path of the runner, the cache, the report and
  the bad-input errors, in seconds and without the shared data;
* a slice of LFW (``data`` marker) attacked by the real recognizers: each
  scenario end to end, clean verification accuracy > 0.9 for every attacker, and
  blackout driving the naive TAR to ~0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedeid.detect import DETECTORS
from facedeid.detect.base import Detector
from facedeid.errors import FaceDeidError, InputError, UnknownNameError
from facedeid.evaluate import EvaluationConfig, EvaluationResult, run_evaluation
from facedeid.evaluate import runner as R
from facedeid.evaluate import worker as W
from facedeid.evaluate.attackers import ATTACKERS
from facedeid.evaluate.attackers.base import Attacker
from facedeid.evaluate.datasets import read_pairs
from facedeid.types import Face

SIZE = 120
BOX = (30.0, 30.0, 90.0, 90.0)
LM5 = np.array([[45, 50], [75, 50], [60, 62], [48, 76], [72, 76]], dtype=np.float64)


# ------------------------------------------------------------------ fakes
class CenterDetector(Detector):
    """Finds one face in the middle of the synthetic images (none on a flat image)."""

    name = "evaltest-center"

    def _detect(self, rgb):
        crop = rgb[40:80, 40:80].astype(np.float64)
        if crop.std() < 3:
            return []
        return [Face(box=BOX, score=0.99, landmarks5=LM5, detector=self.name)]


class PatternAttacker(Attacker):
    """Identity = the 8x8 block means of the grey face square (zero-mean, unit norm)."""

    name = "pattern"
    metric = "euclidean"
    threshold = 0.6
    dim = 64
    version = "t1"

    def embed_at(self, rgb, landmarks5):
        cx, cy = np.asarray(landmarks5).mean(axis=0)
        x0, y0 = int(round(cx - 24)), int(round(cy - 24))
        g = np.asarray(rgb, np.float64)[y0:y0 + 48, x0:x0 + 48].mean(axis=2)
        v = g.reshape(8, 6, 8, 6).mean(axis=(1, 3)).ravel()
        v = v - v.mean()
        n = np.linalg.norm(v)
        return (v / n if n > 1e-9 else np.zeros(64) + 1 / 8).astype(np.float32)

    def embed_naive(self, rgb):
        if np.asarray(rgb, np.float64)[40:80, 40:80].std() < 3:   # no face visible
            return None
        return self.embed_at(rgb, LM5)


@pytest.fixture(scope="module", autouse=True)
def _register_fakes():
    DETECTORS.register("evaltest-center", CenterDetector)
    ATTACKERS.register("pattern", PatternAttacker)
    yield


def _identity_image(pattern: np.ndarray, rng) -> np.ndarray:
    img = rng.integers(60, 200, (SIZE, SIZE, 3)).astype(np.float64)
    face = np.kron(pattern, np.ones((7, 7)))                     # 56 x 56
    img[32:88, 32:88] = face[:, :, None] + rng.normal(0, 6, (56, 56, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """6 identities x 3 images, one single-image identity, and a pairs file."""
    root = tmp_path_factory.mktemp("synth")
    images = root / "images"
    rng = np.random.default_rng(7)
    names = [f"Person_{c}" for c in "ABCDEF"]
    for name in names + ["Loner_Z"]:
        pattern = rng.uniform(20, 235, (8, 8))
        (images / name).mkdir(parents=True)
        for i in range(1 if name == "Loner_Z" else 3):
            Image.fromarray(_identity_image(pattern, rng)).save(
                images / name / f"{name}_{i + 1:04d}.jpg", quality=95)
    same = [f"{n}\t1\t2" for n in names[:4]] + [f"{names[4]}\t2\t3", f"{names[5]}\t1\t3"]
    diff = [f"{names[i]}\t1\t{names[(i + 1) % 6]}\t2" for i in range(5)] + \
        [f"{names[0]}\t3\tLoner_Z\t1"]
    (root / "pairs.txt").write_text("6\n" + "\n".join(same + diff) + "\n")
    return root


def _cfg(synth: Path, tmp_path: Path, **kw) -> EvaluationConfig:
    base = dict(data=synth, methods=["blur:k=31", "blackout"], attackers=["pattern"],
                detector="evaltest-center", workers=1, cache=tmp_path / "cache",
                output=tmp_path / "report", progress=False, landmarks=False)
    base.update(kw)
    return EvaluationConfig(**base)


# ------------------------------------------------------------------ synthetic end to end
@pytest.fixture(scope="module")
def synth_run(synth, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = _cfg(synth, tmp, methods=["blur:k=31", "blackout", "pixelate:2,8"], landmarks=True)
    return run_evaluation(cfg), tmp


def test_records_cover_every_combination(synth_run):
    result, tmp = synth_run
    combos = {(r.method, json.dumps(r.params), r.attacker, r.scenario, r.alignment)
              for r in result.records}
    assert len(combos) == len(result.records) == 5 * 1 * 5 * 2
    assert {r.method for r in result.records} == {"none", "blur", "blackout", "pixelate"}
    data = json.loads((tmp / "report" / "results.json").read_text())   # strict JSON
    rec = data["records"][0]
    assert set(rec) >= {"method", "params", "attacker", "scenario", "alignment", "metrics"}
    assert data["format"] == "facedeid-evaluate/1"
    assert data["versions"]["numpy"]
    assert data["config"]["methods"] == ["blur:k=31", "blackout", "pixelate:2,8"]
    assert data["dataset"]["n_pairs"] == 12 and data["dataset"]["n_identities"] == 7
    blur = [r for r in data["records"] if r["method"] == "blur"][0]
    assert blur["params"] == {"k": 31} and "ssim" in blur["metrics"]
    again = EvaluationResult.load(tmp / "report")
    assert len(again.records) == len(result.records)
    # per-stage timing: every de-identified image embedded in both alignments
    stages = data["timing"]["per_method"]["blur:k=31"]["stages"]
    n_deid = data["dataset"]["n_deidentified"]
    assert stages["deidentify"]["n"] == n_deid
    assert n_deid <= stages["embed:pattern"]["n"] <= 2 * n_deid
    assert stages["embed:pattern"]["cpu_s"] > 0 and len(data["timing"]["loadavg"]["end"]) == 3


def test_baseline_numbers(synth_run):
    result, _ = synth_run
    for align in ("naive", "template"):
        pairs = result.select(method="none", scenario="pairs", alignment=align)[0].metrics
        assert pairs["accuracy"] == pairs["accuracy_before"] == 1.0
        naive = result.select(method="none", scenario="naive", alignment=align)[0].metrics
        assert naive["tar"] == 1.0 and naive["fmr"] == 0.0 and naive["rank1"] == 1.0
        assert naive["eer"] == 0.0 and naive["auc"] == 1.0
        # the images of the pairs file: 16, of which Loner_Z's one has no mate
        assert naive["n_probes"] == 15 and naive["n_gallery"] == 16
        selfm = result.select(method="none", scenario="self", alignment=align)[0].metrics
        assert selfm["match_rate"] == 1.0 and selfm["deid_rate"] == 0.0
    util = [u for u in result.utility if u["method"] == "none"][0]["metrics"]
    assert util["ssim"] == 1.0 and util["detection_kept"] == 1.0


def test_blackout_removes_identity_and_fta_is_reported(synth_run):
    result, _ = synth_run
    naive = result.select(method="blackout", scenario="naive", alignment="naive")[0].metrics
    assert naive["fta"] == 1.0 and naive["tar"] == 0.0 and naive["rank1"] == 0.0
    assert naive["n_mated_fta"] == naive["n_mated"]
    assert naive["eer"] is None or math.isnan(naive["eer"])       # no scores left
    tmpl = result.select(method="blackout", scenario="naive", alignment="template")[0].metrics
    assert tmpl["fta"] == 0.0 and tmpl["tar"] <= 0.1
    # every blacked-out face looks the same: parrot "matches" everyone
    parrot = result.select(method="blackout", scenario="parrot", alignment="template")[0].metrics
    assert parrot["tar"] == 1.0 and parrot["far"] == 1.0
    pairs = result.select(method="blackout", scenario="pairs", alignment="template")[0].metrics
    assert pairs["tar"] == 0.0 and pairs["accuracy_before"] == 1.0
    assert pairs["accuracy"] == pytest.approx(0.5) and pairs["deid_rate_pairs"] == 1.0
    selfm = result.select(method="blackout", scenario="self", alignment="template")[0].metrics
    assert selfm["deid_rate"] == 1.0
    util = [u for u in result.utility if u["method"] == "blackout"][0]["metrics"]
    assert util["ssim"] < 0.9 and util["ssim_outside"] > 0.95
    assert util["detection_kept"] == 0.0 and util["no_face_rate"] == 0.0
    assert util["psnr"] < 30 and util["mse_outside"] == 0.0


def test_report_files(synth_run):
    _, tmp = synth_run
    out = tmp / "report"
    md = (out / "report.md").read_text()
    assert "Pairs verification" in md and "blur:k=31" in md and "| method |" in md
    html = (out / "report.html").read_text()
    assert "<table>" in html and "<img" in html
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "det_naive_blur.png" in figs and "tradeoff_naive.png" in figs
    from facedeid.evaluate.report import summary_text

    assert "pattern" in summary_text(EvaluationResult.load(out))


def test_strength_sweep(synth_run):
    result, tmp = synth_run
    figs = {p.name for p in (tmp / "report" / "figures").glob("*.png")}
    assert {"eer_vs_strength_naive.png", "tar_vs_strength_naive.png",
            "ssim_vs_strength.png", "det_pairs_pixelate.png", "det_reverse_blur.png",
            "eer_vs_strength_reverse.png"} <= figs
    ssim = {(u["method"], u["params"].get("k")): u["metrics"]["ssim"] for u in result.utility}
    assert ssim[("pixelate", 2)] < ssim[("pixelate", 8)] < ssim[("none", None)] == 1.0
    nme = {(u["method"], u["params"].get("k")): u["metrics"]["landmark_nme"]
           for u in result.utility}
    assert nme[("none", None)] == 0.0 and nme[("blackout", None)] > nme[("pixelate", 8)] >= 0


def test_resume_after_interruption(synth, tmp_path, monkeypatch):
    calls = []
    real = W.Worker.deidentify

    def flaky(self, spec, items):
        calls.append(len(items))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, spec, items)

    monkeypatch.setattr(W.Worker, "deidentify", flaky)
    cfg = _cfg(synth, tmp_path, methods=["blur:k=9"], output=None,
               scenarios=["naive", "parrot", "self"])
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(cfg)
    done_first = calls[0]
    calls.clear()
    monkeypatch.setattr(W.Worker, "deidentify",
                        lambda self, spec, items: calls.append(len(items)) or real(self, spec, items))
    result = run_evaluation(cfg)
    assert result.dataset["n_deidentified"] == 18     # 6 identities x 3 (Loner_Z skipped)
    assert sum(calls) == 18 - done_first              # only what was not finished
    calls.clear()
    run_evaluation(cfg)                           # warm: nothing to do
    assert calls == []
    assert result.select(method="blur", scenario="self", alignment="template")


def test_adding_an_attacker_computes_only_that_attacker(synth, tmp_path, monkeypatch):
    class Second(PatternAttacker):
        name = "pattern2"
        version = "t2"

    ATTACKERS.register("pattern2", Second)
    calls = {"pattern": 0, "pattern2": 0}
    real = PatternAttacker.embed_at

    def counting(self, rgb, landmarks5):
        calls[self.name] += 1
        return real(self, rgb, landmarks5)

    monkeypatch.setattr(PatternAttacker, "embed_at", counting)
    cfg = _cfg(synth, tmp_path, methods=["blur:k=9"], scenarios=["pairs", "self"], output=None)
    first = run_evaluation(cfg)
    assert calls["pattern"] > 0 and calls["pattern2"] == 0
    calls.update(pattern=0, pattern2=0)
    cfg.attackers = ["pattern", "pattern2"]
    both = run_evaluation(cfg)
    assert calls["pattern"] == 0 and calls["pattern2"] > 0   # originals and de-identified
    for r in first.records:   # the first attacker's numbers come back from the cache unchanged
        again = both.select(method=r.method, params=r.params, attacker=r.attacker,
                            scenario=r.scenario, alignment=r.alignment)[0]
        assert again.metrics["tar"] == r.metrics["tar"]


def test_cli_entry_point(synth, tmp_path, capsys):
    rc = R.main(["--data", str(synth), "--methods", "blackout", "--attackers", "pattern",
                 "--scenarios", "pairs,self", "--alignments", "template", "--detector",
                 "evaltest-center", "--workers", "1", "--cache-dir", str(tmp_path / "c"),
                 "-o", str(tmp_path / "out"), "-q", "--no-plots"])
    assert rc == 0
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["scenario"] for r in data["records"]} == {"pairs", "self"}
    assert not (tmp_path / "out" / "report.md").exists()
    rc = R.main(["--data", str(synth), "--attackers", "nosuch", "--detector", "evaltest-center",
                 "-o", str(tmp_path / "x")])
    assert rc == 2 and "unknown attacker 'nosuch'" in capsys.readouterr().err


# ------------------------------------------------------------------ bad input
def test_bad_pairs_files(synth, tmp_path):
    root = synth / "images"
    with pytest.raises(InputError, match="not found"):
        read_pairs(tmp_path / "nope.txt", root)
    cases = {
        "empty": "",
        "header": "three\nA\t1\t2\n",
        "count": "2\nPerson_A\t1\t2\nPerson_A\t1\tPerson_B\t1\n",
        "line": "1\nPerson_A\t1\nPerson_A\t1\tPerson_B\t1\n",
        "number": "1\nPerson_A\tone\t2\nPerson_A\t1\tPerson_B\t1\n",
        "missing image": "1\nPerson_A\t1\t9\nPerson_A\t1\tPerson_B\t1\n",
    }
    for what, text in cases.items():
        p = tmp_path / f"{what}.txt"
        p.write_text(text)
        with pytest.raises(InputError) as err:
            read_pairs(p, root)
        assert str(p) in str(err.value), what
    # the ten-fold "FOLDS N" header of LFW View 2
    p = tmp_path / "folds.txt"
    p.write_text("2 1\nPerson_A\t1\t2\nPerson_A\t1\tPerson_B\t1\n"
                 "Person_C\t1\t2\nPerson_C\t1\tPerson_D\t1\n")
    pairs = read_pairs(p, root)
    assert [pr.same for pr in pairs] == [True, False, True, False]


def test_bad_names_and_folders(synth, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown method"):
        run_evaluation(_cfg(synth, tmp_path, methods=["nosuch:k=3"]))
    with pytest.raises(FaceDeidError, match="no parameter 'sigma'"):
        run_evaluation(_cfg(synth, tmp_path, methods=["blur:sigma=3"]))
    with pytest.raises(FaceDeidError):
        run_evaluation(_cfg(synth, tmp_path, methods=["pixelate:k=0"]))
    with pytest.raises(UnknownNameError, match="unknown attacker"):
        run_evaluation(_cfg(synth, tmp_path, attackers=["nosuch"]))
    with pytest.raises(UnknownNameError, match="unknown scenario"):
        run_evaluation(_cfg(synth, tmp_path, scenarios=["sideways"]))
    with pytest.raises(InputError, match="does not exist"):
        run_evaluation(_cfg(synth, tmp_path, data=tmp_path / "nowhere"))
    with pytest.raises(InputError, match="pairs file not found"):
        run_evaluation(_cfg(synth, tmp_path, pairs=tmp_path / "missing.txt"))
    # only single-image identities: the gallery scenarios cannot run
    lonely = tmp_path / "lonely"
    for name in ("A_B", "C_D"):
        (lonely / name).mkdir(parents=True)
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(lonely / name / f"{name}_0001.jpg")
    with pytest.raises(InputError, match="2 or more images"):
        run_evaluation(_cfg(lonely, tmp_path, scenarios=["naive"]))


def test_unreadable_image(synth, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth / "images", data / "images")
    (data / "images" / "Person_C" / "Person_C_0002.jpg").write_bytes(b"not a jpeg at all")
    cfg = _cfg(data, tmp_path, methods=["blackout"], scenarios=["naive", "self"],
               alignments=["template"], output=None)
    with pytest.raises(InputError, match="Person_C_0002.jpg"):
        run_evaluation(cfg)
    cfg.skip_bad_images = True
    result = run_evaluation(cfg)
    assert result.dataset["n_images"] == 17
    assert any("Person_C_0002.jpg" in n for n in result.notes)


# ------------------------------------------------------------------ real recognizers on LFW
@pytest.fixture(scope="module")
def lfw_run(data_dir):
    """60 pairs of pairsDevTrain (about 120 images), blackout, every scenario.

    Uses the project cache ($FACEDEID_CACHE/evaluate): embeddings of the
    originals are computed on the first run only; ``fresh`` recomputes the
    de-identified side every time, so the code under test always runs.
    """
    cfg = EvaluationConfig(data=data_dir, pairs=data_dir / "lfw" / "pairsDevTrain.txt",
                           limit_pairs=60, methods=["blackout"],
                           attackers=["dlib", "sface", "facenet"], seed=3, workers=2,
                           fresh=True, output=None, progress=False)
    return run_evaluation(cfg)


@pytest.mark.data
@pytest.mark.slow
def test_lfw_clean_accuracy_above_090(lfw_run):
    for att in ("dlib", "sface", "facenet"):
        for align in ("naive", "template"):
            m = lfw_run.metric("accuracy", method="none", params={}, attacker=att,
                               scenario="pairs", alignment=align)
            assert m > 0.9, (att, align, m)


@pytest.mark.data
@pytest.mark.slow
def test_lfw_blackout_drives_naive_tar_to_zero(lfw_run):
    for att in ("dlib", "sface", "facenet"):
        for align in ("naive", "template"):
            rec = lfw_run.select(method="blackout", attacker=att, scenario="naive",
                                 alignment=align)[0]
            assert rec.metrics["tar"] <= 0.05, (att, align, rec.metrics["tar"])
            clean = lfw_run.metric("tar", method="none", attacker=att, scenario="naive",
                                   alignment=align)
            assert clean > 0.7, (att, align, clean)


@pytest.mark.data
@pytest.mark.slow
def test_lfw_every_scenario_runs(lfw_run):
    scen = {(r.scenario, r.alignment) for r in lfw_run.records}
    assert scen == {(s, a) for s in ("naive", "reverse", "parrot", "pairs", "self")
                    for a in ("naive", "template")}
    for r in lfw_run.records:
        if r.method == "blackout" and r.scenario == "self":
            assert r.metrics["deid_rate"] >= 0.95
    util = [u for u in lfw_run.utility if u["method"] == "blackout"][0]["metrics"]
    assert 0.3 < util["ssim"] < 0.95 and util["no_face_rate"] < 0.1


def test_detection_kept_counts_fallback_faces_apart():
    """A face the method handed to its fallback (e.g. too small to average, blacked out)
    counts in detection_kept but not in detection_kept_method."""
    from facedeid.evaluate.utility import aggregate_utility, image_utility
    from facedeid.types import Face

    img = np.zeros((64, 96, 3), np.uint8)
    big = Face(box=(10.0, 10.0, 40.0, 50.0), score=0.9)
    tiny = Face(box=(70.0, 20.0, 80.0, 32.0), score=0.6)
    still_found = lambda rgb: [Face(box=(11.0, 10.0, 41.0, 50.0), score=0.8)]  # noqa: E731
    u = image_utility(img, img, [big, tiny], [], detect=still_found, fallback=[False, True])
    assert (u["n_faces"], u["n_kept"], u["n_kept_method"], u["n_fallback"]) == (2, 1, 1, 1)
    agg = aggregate_utility([u, image_utility(img, img, [big], [], detect=lambda rgb: [],
                                              fallback=[False])])
    assert agg["detection_kept"] == pytest.approx(1 / 3)
    assert agg["detection_kept_method"] == pytest.approx(1 / 2)
    assert agg["fallback_share"] == pytest.approx(1 / 3)
    # unknown or mismatched fallback lists: every face is the method's own
    u2 = image_utility(img, img, [big, tiny], [], detect=still_found, fallback=[True])
    assert u2["n_fallback"] == 0 and u2["n_kept_method"] == 1
