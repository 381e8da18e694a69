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
    "region": "auto",         # "face_hull" (seed 004) | "face_outline" (with the chin and jaw);
                              # auto: face_hull with identity protection, else face_outline
    "blend": "laplacian",     # "laplacian" | "seamless" | "alpha"
    "color": 1.0,             # Lab statistics transfer strength, 0..1
    "shading": True,          # carry the target's low-frequency shading over
    "smooth": 0.08,           # soft mask edge, sigma as a fraction of the inter-ocular distance
    "scale": "auto",          # mask polygon scale about its centre (auto: 1.0 protected, else 1.25)
    "reshape": "auto",        # move brows/eyes/nose this far towards the donor's proportions
                              # (auto: 0 protected, i.e. seed 004's own geometry; else 0.5)
    "keep_mouth": True,       # keep the target's mouth opening (teeth): expression
    "attacker": "sface",      # judge(s) of identity: "sface", "dlib", "facenet", "sface+dlib", "none"
    "margin": 0.1,            # a donor must be farther than threshold * (1 + margin)
    "verify": True,           # re-check the result and try the next donor if it still matches
    "tries": 4,               # donors tried per face with verify
    "verify_margin": 0.0,     # the result must be farther than threshold * (1 + verify_margin)
    "min_iod": 8.0,           # smaller faces (inter-ocular distance, pixels) are replaced on
                              # the mean shape fitted to their 5 detector points
    "min_iod_small": 3.0,     # ... and below this they fall back
    "max_yaw": 1.25,          # more turned faces fall back (yaw score: 0 frontal, 1 nose tip
                              # at the jaw's end, up to 2 beyond it)
    "protect": "auto",        # identity protection (facedeid.protect): "sface+facenet", "sface",
                              # "facenet", "none"; auto: sface+facenet when torch is installed
    "protect_eps": 8.0,       # largest change per channel, grey levels
    "protect_steps": 24,      # gradient steps at protect_eps
    "protect_max_eps": 16.0,  # faces still matched get more steps at up to this bound
    "protect_margin": 0.3,    # push each recognizer beyond threshold x (1 + margin)
    "protect_pull": 0.0,      # weight of a pull towards the donor's identity (parrot attack)
    "protect_area": "replaced",  # where protection may change pixels: "replaced" (the new
                              # face only) | "head" (also the rest of the crop's inscribed
                              # ellipse, hair and outline, at half the bound)
}

# the mask and geometry "auto" resolves to: (region, scale, reshape)
LIGHT_GEOMETRY = ("face_hull", 1.0, 0.0)    # protected: seed 004's literal setting
HEAVY_GEOMETRY = ("face_outline", 1.25, 0.5)  # unprotected: larger mask, donor's proportions


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
    """0 for a frontal face, 1 when the nose tip (30) lines up with one end of the jaw
    (0, 16), above 1 (at most 2) when it sticks out beyond it (a profile): the nose
    tip's offset from the middle of the jaw's ends, along the eye axis, over half the
    jaw's span."""
    p = np.asarray(lm68, np.float64)
    axis = p[45] - p[36]
    n = float(np.hypot(*axis))
    if n < 1e-9:
        return 2.0
    u = axis / n
    span = float((p[16] - p[0]) @ u)
    if span <= 1e-9:
        return 2.0
    r = float((p[30] - p[0]) @ u) / span
    return float(min(2.0, abs(r - 0.5) * 2.0))


def landmarks5(face: Face) -> np.ndarray | None:
    """The face's 5 points (detector's, else derived from the 68)."""
    from ..replace.donors import landmarks5_from_68

    if face.landmarks5 is not None:
        return np.asarray(face.landmarks5, np.float64)
    if face.landmarks68 is not None:
        return landmarks5_from_68(face.landmarks68)
    return None


def fitted_mean_shape(pts5: np.ndarray) -> np.ndarray:
    """The mean 68-point face shape placed on 5 landmarks by a least-squares similarity:
    the geometry of a face too small for the 68-point model (its fit there is noise)."""
    from ..evaluate.align import similarity_transform
    from ..landmarks.align import canonical_landmarks
    from ..replace.donors import landmarks5_from_68

    mean = canonical_landmarks(256)
    m = similarity_transform(landmarks5_from_68(mean), np.asarray(pts5, np.float64))
    return mean @ m[:, :2].T + m[:, 2]


def check_face(face: Face, params: dict[str, Any]) -> np.ndarray:
    """The 68 landmarks to replace the face on, or :class:`CannotPaint` naming why it
    cannot be replaced.

    A face smaller than ``min_iod`` (inter-ocular distance, pixels) is replaced on the
    mean face shape fitted to the detector's 5 points when those span at least
    ``min_iod_small`` pixels and are not turned to profile (the nose tip between the
    eyes' x); smaller ones, and profiles (``max_yaw``), raise. Which geometry was used
    goes to ``params["_report"]["landmarks"]`` when the caller passes a report.
    """
    from ..replace.donors import inter_ocular

    report = params.get("_report")
    report = report if isinstance(report, dict) else {}
    min_iod = float(params.get("min_iod", DEFAULTS["min_iod"]))
    lm = None if face.landmarks68 is None else np.asarray(face.landmarks68, np.float64)
    iod = None if lm is None else inter_ocular(lm)
    if lm is None or iod < min_iod:
        p5 = None if face.landmarks5 is None else np.asarray(face.landmarks5, np.float64)
        small = float(params.get("min_iod_small", DEFAULTS["min_iod_small"]))
        iod5 = None if p5 is None else float(np.hypot(*(p5[1] - p5[0])))
        if p5 is None or iod5 < small:
            if lm is None and p5 is None:
                raise CannotPaint("no landmarks")
            raise CannotPaint(f"face too small to replace (inter-ocular "
                              f"{iod5 if iod5 is not None else iod:.1f} px < {small:g})")
        lo, hi = sorted((p5[0, 0], p5[1, 0]))
        if not lo < p5[2, 0] < hi:
            raise CannotPaint("profile face (nose tip outside the eyes, 5 points)")
        report["landmarks"] = (f"mean shape fitted to the detector's 5 points (inter-ocular "
                               f"{iod5:.1f} px < min_iod {min_iod:g})")
        return fitted_mean_shape(p5)
    yaw = yaw_score(lm)
    max_yaw = float(params.get("max_yaw", DEFAULTS["max_yaw"]))
    if yaw > max_yaw:
        raise CannotPaint(f"profile face (yaw score {yaw:.2f} > {max_yaw:g})")
    report["landmarks"] = "68-point model"
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


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def protect_names(params: dict[str, Any]) -> tuple[str, ...]:
    """The recognizers identity protection fools (``protect``; empty = off).

    ``auto`` is ``sface+facenet`` when torch is installed, else off. Naming
    recognizers without torch, or one without a differentiable copy, is an error.
    """
    from ..protect.nets import DIFFERENTIABLE

    spec = params.get("protect", DEFAULTS["protect"])
    if isinstance(spec, (list, tuple)):
        spec = "+".join(str(s) for s in spec)
    spec = str(spec if spec is not None else "none").strip().lower()
    if spec in ("", "none", "off", "false", "0"):
        return ()
    if spec == "auto":
        return DIFFERENTIABLE if torch_available() else ()
    names = tuple(n.strip() for n in spec.replace(",", "+").split("+") if n.strip())
    bad = [n for n in names if n not in DIFFERENTIABLE]
    if bad:
        raise ValueError(f"protect: {', '.join(bad)} has no differentiable copy "
                         f"(choose from {', '.join(DIFFERENTIABLE)}, or none)")
    if not torch_available():
        raise ValueError("protect needs torch: pip install 'facedeid[torch]' "
                         "(or -p protect=none)")
    return names


def settings_from(params: dict[str, Any]):
    from ..replace.swap import SwapSettings

    region, scale, reshape = LIGHT_GEOMETRY if protect_names(params) else HEAVY_GEOMETRY

    def pick(name, auto):
        v = params.get(name, DEFAULTS.get(name, "auto"))
        return auto if v is None or str(v).lower() == "auto" else v

    return SwapSettings(region=str(pick("region", region)),
                        blend=str(params.get("blend", DEFAULTS["blend"])),
                        color=float(params.get("color", DEFAULTS["color"])),
                        shading=bool(params.get("shading", DEFAULTS["shading"])),
                        smooth=float(params.get("smooth", DEFAULTS["smooth"])),
                        scale=float(pick("scale", scale)),
                        reshape=float(pick("reshape", reshape)),
                        keep_mouth=bool(params.get("keep_mouth", DEFAULTS["keep_mouth"])))


def context_for(image: np.ndarray, faces: Sequence[Face]) -> list[dict[str, Any]]:
    """Per face, what identity protection needs to see the face as an attacker does: the
    whole picture (the method itself gets only a crop) and the face's box in it."""
    return [{"_canvas": image, "_canvas_box": tuple(float(v) for v in f.box)} for f in faces]


def on_canvas(out: np.ndarray, face: Face, params: dict[str, Any]
              ) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """The crop ``out`` put back into the whole picture (:func:`context_for`):
    ``(picture before, picture with out, x offset, y offset)``; None when the
    Anonymizer gave no picture (a direct call on a crop)."""
    canvas, box = params.get("_canvas"), params.get("_canvas_box")
    if canvas is None or box is None:
        return None
    ox = int(round(box[0] - face.box[0]))
    oy = int(round(box[1] - face.box[1]))
    h, w = out.shape[:2]
    if not (0 <= ox and 0 <= oy and oy + h <= canvas.shape[0] and ox + w <= canvas.shape[1]):
        return None
    ref = to_rgb8(canvas)
    work = ref.copy()
    work[oy:oy + h, ox:ox + w] = to_rgb8(out)
    return ref, work, ox, oy


#: pictures up to this many pixels are searched whole by :func:`still_detected`
WHOLE_PICTURE_PIXELS = 4_000_000


def still_detected(out: np.ndarray, face: Face, params: dict[str, Any],
                   iou: float = 0.5) -> bool:
    """Whether the project's default detector (the one ``make bench`` measures "faces
    still detected" with) finds the new face: a face overlapping the original's box
    by ``iou`` or more, in the whole picture with the crop ``out`` put back
    (:func:`on_canvas`).

    The default detector's passes depend on the picture's size (upscaled tiles, a
    half-size pass, an agreement rule between them), so a search in a window around
    the face can find a small face the whole-picture search loses (an 11 px face in
    LFW did). Pictures up to :data:`WHOLE_PICTURE_PIXELS` are therefore searched
    whole, as the pipeline searches them; larger ones (where a whole search per face
    would cost seconds) in a window of three times the box around the face, which
    can disagree with the whole search on faces of a few pixels."""
    from ..detect import shared_detector
    from ..evaluate.attackers.detection import detect_near
    from ..types import box_iou

    placed = on_canvas(out, face, params)
    if placed is None:
        img, box = to_rgb8(out), np.asarray(face.box, np.float64)
    else:
        _, img, ox, oy = placed
        box = np.asarray(face.box, np.float64) + np.array([ox, oy, ox, oy], np.float64)
    det = shared_detector("default")
    if img.shape[0] * img.shape[1] <= WHOLE_PICTURE_PIXELS:
        found = [(box_iou(tuple(box), f.box), f) for f in det.detect(img)]
    else:
        found = detect_near(img, box, det) or []
    return any(v >= iou for v, _ in found)


def head_mask(shape: tuple[int, int], params: dict[str, Any]) -> np.ndarray:
    """The extra weights ``protect_area`` gives identity protection in a crop of ``shape``:
    nothing for ``replaced``; for ``head``, 0.5 inside the ellipse inscribed in the crop
    (semi-axes 0.45 of its width and height: the hair, ears and outline the replaced
    face leaves), feathered (sigma 4 % of the shorter side), so those pixels change by at
    most half the bound."""
    import cv2

    area = str(params.get("protect_area", DEFAULTS["protect_area"])).strip().lower()
    h, w = int(shape[0]), int(shape[1])
    if area == "replaced":
        return np.zeros((h, w), np.float32)
    if area != "head":
        raise ValueError(f"protect_area: {area!r} is not one of replaced, head")
    ell = np.zeros((h, w), np.float32)
    cv2.ellipse(ell, (int(round(w / 2)), int(round(h / 2))),
                (max(1, int(round(0.45 * w))), max(1, int(round(0.45 * h)))),
                0, 0, 360, 1.0, thickness=-1)
    sigma = max(0.5, 0.04 * min(h, w))
    return 0.5 * cv2.GaussianBlur(ell, (0, 0), sigma) * ell


def protect_face(out: np.ndarray, rgb: np.ndarray, face: Face, pts5: np.ndarray,
                 params: dict[str, Any], names: tuple[str, ...],
                 toward: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
    """Identity protection of a replaced face (``out``, the crop after replacement; ``rgb``
    the crop before): a bounded perturbation inside the replaced pixels (with
    ``protect_area=head`` also, at half the bound, the rest of the crop's inscribed
    ellipse: :func:`head_mask`), optimised on the
    whole picture when the Anonymizer gave it (:func:`context_for`), at three alignments
    of the face (the detector's 5 points, the 68-point model's, and the attackers'
    detector's on the original), and, with ``protect_pull``, pulled towards the donor's
    identity (``toward``, per recognizer), so that photos of one person do not end up
    matching each other (the parrot attack)."""
    import cv2

    from ..evaluate.attackers.detection import landmarks5_near
    from ..protect.perturb import ProtectSettings, protect
    from ..replace.donors import landmarks5_from_68

    changed = np.any(out != rgb, axis=2).astype(np.float32)
    mask = cv2.GaussianBlur(changed, (0, 0), 1.5) * changed
    mask = np.maximum(mask, head_mask(out.shape[:2], params))
    placed = on_canvas(out, face, params)
    if placed is None:
        ref, work, full_mask, ox, oy = rgb, out, mask, 0, 0
    else:
        ref, work, ox, oy = placed
        full_mask = np.zeros(ref.shape[:2], np.float32)
        full_mask[oy:oy + out.shape[0], ox:ox + out.shape[1]] = mask
    shift = np.array([ox, oy], np.float64)
    views = []
    if face.landmarks68 is not None:
        views.append(landmarks5_from_68(face.landmarks68) + shift)
    fb = np.asarray(face.box, np.float64) + np.r_[shift, shift]
    near = landmarks5_near(ref, fb)
    if near is not None:
        views.append(near)
    settings = ProtectSettings(attackers=names, eps=float(params.get("protect_eps", DEFAULTS["protect_eps"])),
                               steps=int(params.get("protect_steps", DEFAULTS["protect_steps"])),
                               max_eps=float(params.get("protect_max_eps", DEFAULTS["protect_max_eps"])),
                               margin=float(params.get("protect_margin", DEFAULTS["protect_margin"])),
                               pull=float(params.get("protect_pull", DEFAULTS["protect_pull"])))
    res = protect(work, np.asarray(pts5, np.float64) + shift, full_mask, settings,
                  reference=ref, rng=params.get("rng"), views=views, toward=toward)
    crop = res.image[oy:oy + out.shape[0], ox:ox + out.shape[1]]
    return np.ascontiguousarray(crop), {
        "recognizers": list(names), "steps": res.steps, "passed": res.passed,
        "views": 1 + len(views), "eps": round(float(res.eps), 2),
        "distance_ratio_before": {k: round(v, 4) for k, v in res.before.items()},
        "distance_ratio_after": {k: round(v, 4) for k, v in res.after.items()}}


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
def _shape_of(face: Face, params: dict[str, Any]) -> np.ndarray | None:
    """The 68 points the face will be replaced on (a tiny face's fitted mean shape),
    which is what its donor's shape should resemble; the model's points where the face
    will fall back anyway."""
    try:
        return check_face(face, {**params, "_report": None})
    except CannotPaint:
        return face.landmarks68


def donor_orders(faces: list[Face], params: dict[str, Any], rngs: list[np.random.Generator],
                 judges: list, emb: list[list[np.ndarray | None]]) -> list[tuple[int, ...]]:
    """Every face's donor order from ``params["donors"]`` at once: similar shape,
    identity (``emb``: per judge, per face) beyond the judges' thresholds from every
    face in the picture, first choices distinct across faces."""
    from ..replace.donors import assign_donors, load_pool, rank_donors

    pool = load_pool(params.get("donors", DEFAULTS["donors"]))
    rankings = []
    for i, face in enumerate(faces):
        js = [(att, emb[a][i], [emb[a][j] for j in range(len(faces)) if j != i])
              for a, att in enumerate(judges)]
        rankings.append(rank_donors(pool, _shape_of(face, params), rngs[i], judges=js,
                                    margin=float(params.get("margin", DEFAULTS["margin"]))))
    return assign_donors(rankings)


def _prepare(image: np.ndarray, faces: list[Face], params: dict[str, Any],
             rngs: list[np.random.Generator]) -> list[dict[str, Any]]:
    """Choose every face's donor order at once (identity checked against all faces)."""
    judges = judges_for(params.get("attacker"))
    emb = embed_all(judges, image, faces)
    orders = donor_orders(faces, params, rngs, judges, emb)
    ctx = context_for(image, faces)
    return [{"_donor_order": orders[i], "_target_embeddings": [emb[a][i] for a in range(len(judges))],
             **ctx[i]} for i in range(len(faces))]


def replace_face(crop: np.ndarray, face: Face, params: dict[str, Any],
                 render: Callable[[np.ndarray, np.ndarray, int],
                                  tuple[np.ndarray, np.ndarray, np.ndarray]],
                 n_candidates: int,
                 donor_embedding: Callable[[int, str], np.ndarray | None] | None = None
                 ) -> np.ndarray:
    """Shared body of ``replace`` and ``fatm``: checks, candidates, merge, verify, retry.

    ``render(rgb, landmarks68, candidate) -> (rendered rgb, coverage, landmarks the
    rendered face has)``; ``donor_embedding(candidate, recognizer name)``: the
    donor's identity that identity protection pulls towards (None: no pull).
    """
    from ..replace.donors import landmarks5_from_68
    from ..replace.swap import merge, mouth_from_target

    report = params.get("_report")
    report = report if isinstance(report, dict) else {}
    params = {**params, "_report": report}
    lm = check_face(face, params)
    face = face.replace(landmarks68=lm)     # a tiny face's are the fitted mean shape
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
    names = protect_names(params)
    # with identity protection the perturbation is the identity check: one donor (the
    # track's first, so video keeps it), protected until the recognizers no longer match
    verify = (bool(params.get("verify", DEFAULTS["verify"])) and judges and targets is not None
              and not names)
    # the first candidate whose result the judges no longer match; if none passes, the
    # first candidate (not the "best" one: in video that choice would flicker between
    # frames, while the first candidate of a track is the same in every frame)
    first = None
    report["geometry"] = {"region": settings.region, "scale": settings.scale,
                          "reshape": settings.reshape}
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
    if names:
        toward = None
        if donor_embedding is not None:
            toward = {n: v for n in names
                      if (v := donor_embedding(tried[0], n)) is not None}
        protected, info = protect_face(first, rgb, face, pts5, params, names, toward)
        report.update(donor=tried[0], donors_tried=len(tried), protection=info,
                      identity_check="passed" if info["passed"] else
                      "failed: a protected recognizer still matches")
        return from_rgb8(protected, rgb, crop)
    report.update(donor=tried[0], donors_tried=len(tried),
                  identity_check="failed: first donor kept" if verify else "off")
    return from_rgb8(first, rgb, crop)


def _replace(crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
    from ..replace.donors import load_pool
    from ..replace.swap import reshape_landmarks, warp_donor

    pool = load_pool(params.get("donors"))
    amount = settings_from(params).reshape

    def render(rgb, lm, cand):
        donor = pool.donors[cand]
        dst = reshape_landmarks(lm, donor.geometry, amount)
        return warp_donor(donor, dst, rgb.shape[:2]) + (dst,)

    def donor_embedding(cand: int, name: str) -> np.ndarray:
        from ..evaluate.attackers import get_attacker

        return pool.embeddings(get_attacker(name))[cand]

    return replace_face(crop, face, params, render, len(pool), donor_embedding)


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
           "from_rgb8", "embed_all", "settings_from", "protect_names", "protect_face",
           "context_for", "donor_orders", "on_canvas", "still_detected", "LIGHT_GEOMETRY", "HEAVY_GEOMETRY"]
