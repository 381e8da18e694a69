"""``replace``: seed 004's natural face replacement with donors that are nobody (stage 1).

For each face: 68 landmarks -> a donor chosen for it (similar pose and shape,
dissimilar identity: see :mod:`facedeid.replace.donors`) -> the donor warped
piecewise-affinely onto the target's landmarks -> colour and light matched ->
blended in with seed 004's landmark mask (:mod:`facedeid.replace.swap`).

With ``verify`` (default) the result is checked with the judging attacker(s):
if the new face still matches the original at the attacker's threshold, the
next donor is tried (up to ``tries``); if none passes, the first donor's result
is kept (so that one video track keeps its donor in every frame).  Faces the method cannot handle -- no landmarks, too small
(``min_iod``), turned to profile (``max_yaw``) -- raise
:class:`~facedeid.methods.base.CannotPaint`, and the Anonymizer paints them with
its fallback (``--fallback``, blackout by default) and records why.

Parameters: see :data:`REPLACE` and docs/REPLACE.md.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..imageops import to_rgb8
from ..types import Face
from .base import CannotPaint, Method

DEFAULTS: dict[str, Any] = {
    "donors": "averaged",     # "averaged" | "gan" | a folder of consented donor photos
    "region": "face_outline",  # "face_hull" (seed 004) | "face_outline" (with the chin and jaw)
    "blend": "laplacian",     # "laplacian" | "seamless" | "alpha"
    "color": 1.0,             # Lab statistics transfer strength, 0..1
    "shading": True,          # carry the target's low-frequency shading over
    "smooth": 0.08,           # soft mask edge, sigma as a fraction of the inter-ocular distance
    "scale": 1.25,            # mask polygon scale about its centre
    "reshape": 0.5,           # move brows/eyes/nose this far towards the donor's proportions
    "keep_mouth": True,       # keep the target's mouth opening (teeth): expression
    "attacker": "sface",      # judge(s) of identity: "sface", "dlib", "facenet", "sface+dlib", "none"
    "margin": 0.1,            # a donor must be farther than threshold * (1 + margin)
    "verify": True,           # re-check the result and try the next donor if it still matches
    "tries": 4,               # donors tried per face with verify
    "verify_margin": 0.0,     # the result must be farther than threshold * (1 + verify_margin)
    "min_iod": 8.0,           # smaller faces (inter-ocular distance, pixels) fall back
    "max_yaw": 0.9,           # more turned faces (0 frontal .. 1 profile) fall back
}


# --------------------------------------------------------------------------- helpers
def judges_for(spec: Any) -> list:
    """The attacker objects named by the ``attacker`` parameter (``+``-separated; ``none``: [])."""
    if isinstance(spec, (list, tuple)):     # a method spec's "sface+facenet" may arrive split
        spec = "+".join(str(s) for s in spec)
    names = [n for n in str(spec or "none").replace(",", "+").split("+") if n.strip()]
    if [n.strip().lower() for n in names] in ([], ["none"]):
        return []
    from ..evaluate.attackers import get_attacker

    return [get_attacker(n.strip()) for n in names]


def yaw_score(lm68: np.ndarray) -> float:
    """0 for a frontal face, towards 1 for a profile: how far the nose tip (30) sits from
    the middle of the jaw's ends (0, 16), measured along the eye axis."""
    p = np.asarray(lm68, np.float64)
    axis = p[45] - p[36]
    n = float(np.hypot(*axis))
    if n < 1e-9:
        return 1.0
    u = axis / n
    span = float((p[16] - p[0]) @ u)
    if span <= 1e-9:
        return 1.0
    r = float((p[30] - p[0]) @ u) / span
    return float(min(1.0, abs(r - 0.5) * 2.0))


def landmarks5(face: Face) -> np.ndarray | None:
    """The face's 5 points (detector's, else derived from the 68)."""
    from ..replace.donors import landmarks5_from_68

    if face.landmarks5 is not None:
        return np.asarray(face.landmarks5, np.float64)
    if face.landmarks68 is not None:
        return landmarks5_from_68(face.landmarks68)
    return None


def check_face(face: Face, params: dict[str, Any]) -> np.ndarray:
    """The face's 68 landmarks, or :class:`CannotPaint` naming why it cannot be replaced."""
    from ..replace.donors import inter_ocular

    if face.landmarks68 is None:
        raise CannotPaint("no 68-point landmarks")
    lm = np.asarray(face.landmarks68, np.float64)
    iod = inter_ocular(lm)
    if iod < float(params.get("min_iod", DEFAULTS["min_iod"])):
        raise CannotPaint(f"face too small to replace (inter-ocular {iod:.1f} px < "
                          f"{float(params.get('min_iod', DEFAULTS['min_iod'])):g})")
    yaw = yaw_score(lm)
    if yaw > float(params.get("max_yaw", DEFAULTS["max_yaw"])):
        raise CannotPaint(f"profile face (yaw score {yaw:.2f} > {float(params.get('max_yaw')):g})")
    return lm


def from_rgb8(result: np.ndarray, rgb8: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """Write the pixels where ``result`` differs from ``rgb8`` (the crop as RGB uint8) back
    into a copy of ``crop`` in its own layout and dtype (gray, RGBA, 16-bit); every other
    pixel of the crop is kept exactly."""
    out = np.array(crop, copy=True)
    changed = np.any(result != rgb8, axis=2)
    if not changed.any():
        return out
    if out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] in (3, 4):
        out[..., :3][changed] = result[changed]
        return out
    scale = 257.0 if out.dtype == np.uint16 else 1.0
    res = result.astype(np.float64) * scale
    if out.ndim == 2 or out.shape[2] == 1:
        gray = res @ np.array([0.299, 0.587, 0.114])
        vals = np.clip(np.rint(gray), 0, np.iinfo(out.dtype).max).astype(out.dtype)
        if out.ndim == 2:
            out[changed] = vals[changed]
        else:
            out[..., 0][changed] = vals[changed]
        return out
    vals = np.clip(np.rint(res), 0, np.iinfo(out.dtype).max).astype(out.dtype)
    out[..., :3][changed] = vals[changed]
    return out


def settings_from(params: dict[str, Any]):
    from ..replace.swap import SwapSettings

    return SwapSettings(region=str(params.get("region", DEFAULTS["region"])),
                        blend=str(params.get("blend", DEFAULTS["blend"])),
                        color=float(params.get("color", DEFAULTS["color"])),
                        shading=bool(params.get("shading", DEFAULTS["shading"])),
                        smooth=float(params.get("smooth", DEFAULTS["smooth"])),
                        scale=float(params.get("scale", DEFAULTS["scale"])),
                        reshape=float(params.get("reshape", DEFAULTS["reshape"])),
                        keep_mouth=bool(params.get("keep_mouth", DEFAULTS["keep_mouth"])))


def embed_all(judges: list, rgb: np.ndarray, faces: Sequence[Face]) -> list[list[np.ndarray | None]]:
    """Per judge, the embedding of every face (None where a face has no landmarks)."""
    out = []
    for att in judges:
        pts = [landmarks5(f) for f in faces]
        idx = [i for i, p in enumerate(pts) if p is not None]
        vecs: list[np.ndarray | None] = [None] * len(faces)
        if idx:
            emb = att.embed_at_many([rgb] * len(idx), [pts[i] for i in idx])
            for i, v in zip(idx, emb):
                vecs[i] = np.asarray(v, np.float64)
        out.append(vecs)
    return out


# --------------------------------------------------------------------------- the method
def _prepare(image: np.ndarray, faces: list[Face], params: dict[str, Any],
             rngs: list[np.random.Generator]) -> list[dict[str, Any]]:
    """Choose every face's donor order at once (identity checked against all faces)."""
    from ..replace.donors import assign_donors, load_pool, rank_donors

    pool = load_pool(params.get("donors"))
    judges = judges_for(params.get("attacker"))
    emb = embed_all(judges, image, faces)
    rankings = []
    for i, face in enumerate(faces):
        js = [(att, emb[a][i], [emb[a][j] for j in range(len(faces)) if j != i])
              for a, att in enumerate(judges)]
        rankings.append(rank_donors(pool, face.landmarks68, rngs[i], judges=js,
                                    margin=float(params.get("margin", DEFAULTS["margin"]))))
    orders = assign_donors(rankings)
    return [{"_donor_order": orders[i], "_target_embeddings": [emb[a][i] for a in range(len(judges))]}
            for i in range(len(faces))]


def replace_face(crop: np.ndarray, face: Face, params: dict[str, Any],
                 render: Callable[[np.ndarray, np.ndarray, int],
                                  tuple[np.ndarray, np.ndarray, np.ndarray]],
                 n_candidates: int) -> np.ndarray:
    """Shared body of ``replace`` and ``fatm``: checks, candidates, merge, verify, retry.

    ``render(rgb, landmarks68, candidate) -> (rendered rgb, coverage, landmarks the
    rendered face has)``.
    """
    from ..replace.donors import landmarks5_from_68
    from ..replace.swap import merge, mouth_from_target

    lm = check_face(face, params)
    settings = settings_from(params)
    rgb = to_rgb8(crop)
    order = list(params.get("_donor_order") or [])
    judges = judges_for(params.get("attacker"))
    targets = params.get("_target_embeddings")
    pts5 = landmarks5(face) if face.landmarks5 is not None else landmarks5_from_68(lm)
    if targets is None and judges:
        targets = [e[0] for e in embed_all(judges, rgb, [face])]
    if not order:
        order = list(range(n_candidates))
        params["rng"].shuffle(order)
    tries = max(1, int(params.get("tries", DEFAULTS["tries"])))
    verify = bool(params.get("verify", DEFAULTS["verify"])) and judges and targets is not None
    # the first candidate whose result the judges no longer match; if none passes, the
    # first candidate (not the "best" one: in video that choice would flicker between
    # frames, while the first candidate of a track is the same in every frame)
    first = None
    report = params.get("_report")
    report = report if isinstance(report, dict) else {}
    tried: list[int] = []
    for cand in order[:tries] if verify else order[:1]:
        tried.append(int(cand))
        rendered, cov, new_lm = render(rgb, lm, cand)
        mouth = mouth_from_target(rgb, lm, new_lm) if settings.keep_mouth else None
        out = merge(rendered, cov, rgb, lm, settings, mouth)
        if first is None:
            first = out
        if not verify:
            break
        score = np.inf
        for att, tgt in zip(judges, targets):
            if tgt is None:
                continue
            e = np.asarray(att.embed_at(out, pts5), np.float64)
            score = min(score, float(att.pair_distance(e, tgt)[0]) / att.threshold)
        if score > 1.0 + float(params.get("verify_margin", DEFAULTS["verify_margin"])):
            report.update(donor=int(cand), donors_tried=len(tried),
                          identity_check="passed" if np.isfinite(score) else
                          "not checked (no embedding of the original)",
                          judge_distance_ratio=round(score, 4) if np.isfinite(score) else None)
            return from_rgb8(out, rgb, crop)
    report.update(donor=tried[0], donors_tried=len(tried),
                  identity_check="failed: first donor kept" if verify else "off")
    return from_rgb8(first, rgb, crop)


def _replace(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    from ..replace.donors import load_pool
    from ..replace.swap import reshape_landmarks, warp_donor

    pool = load_pool(params.get("donors"))
    amount = float(params.get("reshape", DEFAULTS["reshape"]))

    def render(rgb, lm, cand):
        donor = pool.donors[cand]
        dst = reshape_landmarks(lm, donor.geometry, amount)
        return warp_donor(donor, dst, rgb.shape[:2]) + (dst,)

    return replace_face(crop, face, params, render, len(pool))


REPLACE = Method(
    name="replace",
    fn=_replace,
    defaults=dict(DEFAULTS),
    strength=None,
    strength_doc=(
        "no strength: each face is replaced by a donor face that is nobody (k-averaged faces by "
        "default; donors=DIR for consented photos), warped to the face's landmarks, colour-matched "
        "and blended (seed 004); see docs/REPLACE.md"
    ),
    needs_landmarks68=True,
    paints_whole_region=False,
    prepare=_prepare,
)

__all__ = ["REPLACE", "DEFAULTS", "yaw_score", "check_face", "judges_for", "replace_face",
           "from_rgb8", "embed_all", "settings_from"]
