"""``fatm``: seed 004's learned face replacement (stage 2), with stage 1's pipeline around it.

Each face is aligned to the canonical 64x64 frame, encoded by the shared
encoder and decoded by one donor's decoder (the donors are nobody: k-averaged
faces, see :mod:`facedeid.fatm.data`); the result is warped back and merged
exactly as ``replace`` merges a donor (seed 004's mask, colour and light
transfer, blending) and, as ``replace`` does with torch installed, protected by a
bounded perturbation until SFace and FaceNet no longer match it to the original
(``-p protect=none``: instead the identity check with retries over the donors and
the larger mask).  Needs the torch extra and trained weights (``facedeid
train-fatm``; ``weights=FILE``).

The model's faces are blurrier than a real one, and the default detector loses a
few of them (2 % on LFW): with ``detect_check`` (on for still images) each
result is checked with the project's default detector, and a face it no longer
finds is replaced by ``replace``'s donor instead (chosen the way ``replace``
chooses one: similar shape, identity farther than the attacker's threshold from
every face in the picture); the audit says so (``detector_check``).  In video
(``auto``) the check is left out: a per-frame switch between the two donors
would make the face flicker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import Face
from .base import Method
from .replace import DEFAULTS as REPLACE_DEFAULTS
from .replace import _replace, donor_orders, replace_face, still_detected

DEFAULTS: dict[str, Any] = {
    "weights": None,          # FATM weights file (None: the shipped facedeid/data/fatm.pt)
    "detect_check": "auto",   # a result the default detector loses is redone by replace
                              # (auto: in still images, not in video frames)
    **{k: v for k, v in REPLACE_DEFAULTS.items()
       if k not in ("donors", "reshape", "margin", "protect_pull")},
}


def _prepare(image: np.ndarray, faces: list[Face], params: dict[str, Any],
             rngs: list[np.random.Generator]) -> list[dict[str, Any]]:
    """A donor order per face: a random permutation of the decoders from the face's
    generator (per track in video), first choices distinct across faces."""
    from ..fatm.infer import load_fatm
    from .replace import context_for, embed_all, judges_for

    fatm = load_fatm(params.get("weights"))
    n = len(fatm.donors)
    judges = judges_for(params.get("attacker"))
    emb = embed_all(judges, image, faces)
    taken: set[int] = set()
    ctx = context_for(image, faces)
    out = []
    for i in range(len(faces)):
        order = [int(v) for v in rngs[i].permutation(n)]
        first = next((d for d in order if d not in taken), order[0])
        taken.add(first)
        out.append({"_donor_order": tuple([first] + [d for d in order if d != first]),
                    "_target_embeddings": [emb[a][i] for a in range(len(judges))], **ctx[i]})
    if check_on(params):
        # replace's donor order, for a face the detector loses (after fatm's draws, so
        # fatm's choices do not depend on the check)
        for extra, order in zip(out, donor_orders(faces, params, rngs, judges, emb)):
            extra["_replace_donor_order"] = order
    return out


def check_on(params: dict[str, Any]) -> bool:
    """``detect_check``: true / false, or auto (on unless the image is a video frame)."""
    v = params.get("detect_check", DEFAULTS["detect_check"])
    if v is None or str(v).strip().lower() == "auto":
        return not params.get("_stream", False)
    if isinstance(v, str):
        low = v.strip().lower()
        if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"detect_check must be auto, true or false, got {v!r}")
        return low in ("1", "true", "yes", "on")
    return bool(v)


def _fatm(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    from ..fatm.infer import load_fatm, render_fatm

    fatm = load_fatm(params.get("weights"))

    def render(rgb, lm, cand):
        back, cov = render_fatm(fatm, rgb, lm, cand)
        return back, cov, lm

    out = replace_face(crop, face, params, render, len(fatm.donors))
    if not check_on(params):
        return out
    report = params.get("_report")
    report = report if isinstance(report, dict) else {}
    if still_detected(out, face, params):
        report["detector_check"] = "passed"
        return out
    # the detector lost the model's face: replace's donor instead (its own check,
    # protection and audit entries overwrite fatm's)
    lost = {"fatm_donor": report.get("donor"),
            "fatm_identity_check": report.get("identity_check")}
    order = params.get("_replace_donor_order")
    again = _replace(crop, face, {**params, "donors": "averaged", "_report": report,
                                  "_donor_order": order})
    report["detector_check"] = {
        "fatm": "lost by the default detector", **lost, "redone_by": "replace",
        "replace": "passed" if still_detected(again, face, params) else "lost too"}
    return again


FATM = Method(
    name="fatm",
    fn=_fatm,
    defaults=dict(DEFAULTS),
    strength=None,
    strength_doc=(
        "no strength: seed 004's facial attribute transfer model (shared encoder, one decoder "
        "per nobody-donor) draws a donor face with the target's pose, expression and light; "
        "needs the torch extra and weights (facedeid train-fatm); see docs/REPLACE.md"
    ),
    needs_landmarks68=True,
    paints_whole_region=False,
    prepare=_prepare,
)

__all__ = ["FATM", "DEFAULTS"]
