"""Identity protection: a small, bounded perturbation that moves a face away from its
original identity for given face recognizers (projected gradient descent).

This is the *adversarial perturbation* family of de-identification (seed 004 cites
Bhattarai et al.'s "designed noise patterns"; Fawkes cloaks photos the same way):
the change is limited to ``eps`` grey levels per channel and to the pixels of a mask,
so the picture looks the same while the recognizers' embeddings of the face fall
beyond their match thresholds from the original's.

How (:func:`protect`):

* the perturbation lives on a coarse grid (``resolution`` x the attacker's crop
  scale) and is upsampled bilinearly, so it is smooth: it survives JPEG and the
  attacker's own anti-aliasing, and does not look like noise;
* every step embeds the face with each recognizer at one of its *views* (the 5
  landmarks it was given and the other estimates passed as ``views``: landmark
  detectors disagree by 10-20 % of the inter-ocular distance, and an attacker aligns
  with its own), in turn, each *jittered* (``jitter`` x inter-ocular distance, a
  random similarity), so an attacker that re-detects the face on the output and
  aligns it differently is fooled too (expectation over transformation);
* the loss is, per recognizer, the cosine similarity to the original's embedding
  above the safe level ``1 - threshold x (1 + margin)``; sign-gradient steps of
  ``2.5 eps / steps``, projected onto ``[-eps, eps]`` and the mask;
* every 4 steps it checks every recognizer at every view, without jitter and after
  rounding to uint8, and stops once all are beyond the margin; a recognizer already
  well beyond it skips the gradient steps until the next check;
* while one still matches after ``steps``, further rounds of ``steps / 2`` raise
  the bound by 1.5x up to ``max_eps``: only the hard faces pay, in time and in
  visibility;
* optionally (``pull``), the loss also rewards similarity to a given identity
  (``toward``, the donor's), taken orthogonal to the original's so that the pull
  never pulls back towards it: pushed only *away*, photos of one person all move
  much the same way and still match each other (the parrot attack); pulled towards
  different donors they part.  The stopping rule stays the push's.

**What it does not do.** It fools the recognizers it is given (white-box). Other
recognizers may still match: always measure with a held-out one
(``facedeid evaluate`` with ``dlib``, which has no differentiable copy here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np



@dataclass(frozen=True)
class ProtectSettings:
    """Parameters of :func:`protect`.

    Attributes:
        attackers: recognizers to fool (names with a differentiable copy:
            :data:`facedeid.protect.nets.DIFFERENTIABLE`).
        eps: largest change of any channel, grey levels (0..255 scale).
        steps: gradient steps at ``eps`` (the first round).
        max_eps: while a recognizer still matches after a round, another round of
            ``steps / 2`` at a bound 1.5 x larger, up to ``max_eps`` (None: no more
            rounds). Only the hard faces pay for it, in time and visibility.
        margin: success = distance > threshold x (1 + margin) for every recognizer.
        resolution: perturbation grid, as a fraction of the recognizers' crop scale.
        jitter: landmark jitter per step, fraction of the inter-ocular distance.
        pull: weight of the pull towards ``toward``'s embeddings (see :func:`protect`),
            relative to the push (1); 0: no pull.
    """

    attackers: tuple[str, ...] = ("sface", "facenet")
    eps: float = 8.0
    steps: int = 24
    max_eps: float | None = None
    margin: float = 0.25
    resolution: float = 0.5
    jitter: float = 0.04
    pull: float = 0.0


@dataclass
class ProtectResult:
    """What :func:`protect` did: the image, and per recognizer the distance / threshold
    ratio to the original before and after (``> 1`` = no longer matched)."""

    image: np.ndarray
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    eps: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.after) and all(v > 1.0 for v in self.after.values())


def _roi(recs, pts5: np.ndarray, mask_box: tuple[int, int, int, int], h: int, w: int):
    """The image box every recognizer's crop (and the mask) reads from."""
    xs, ys = [mask_box[0], mask_box[2]], [mask_box[1], mask_box[3]]
    for rec in recs:
        m = rec.matrix(pts5)
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
        s = rec.size
        c = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], float) @ inv.T
        xs += [c[:, 0].min(), c[:, 0].max()]
        ys += [c[:, 1].min(), c[:, 1].max()]
    pad = 4
    x0 = int(max(0, np.floor(min(xs)) - pad))
    y0 = int(max(0, np.floor(min(ys)) - pad))
    x1 = int(min(w, np.ceil(max(xs)) + pad))
    y1 = int(min(h, np.ceil(max(ys)) + pad))
    return x0, y0, x1, y1


def _jittered(pts5: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """The points moved by a small random similarity (shift, scale, rotation) plus
    independent per-point noise, all in units of the inter-ocular distance."""
    p = np.asarray(pts5, np.float64)
    iod = float(np.hypot(*(p[1] - p[0]))) or 1.0
    c = p.mean(0)
    ang = rng.normal(0, amount * 1.5)
    sc = 1.0 + rng.normal(0, amount)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]]) * sc
    shift = rng.normal(0, amount * iod, 2)
    return (p - c) @ rot.T + c + shift + rng.normal(0, 0.3 * amount * iod, p.shape)


def protect(image: np.ndarray, pts5: np.ndarray, mask: np.ndarray,
            settings: ProtectSettings = ProtectSettings(),
            reference: np.ndarray | None = None,
            rng: np.random.Generator | None = None,
            views: list[np.ndarray] | None = None,
            toward: dict[str, np.ndarray] | None = None) -> ProtectResult:
    """Perturb ``image`` inside ``mask`` so that the recognizers no longer match the face
    at ``pts5`` to its original.

    Args:
        image: ``H x W x 3`` uint8 RGB, the picture to protect (e.g. after replacement).
        pts5: the face's 5 landmarks (facedeid order) in ``image``.
        mask: ``H x W`` weights in [0, 1]: where (and how much) pixels may change.
        settings: see :class:`ProtectSettings`.
        reference: the *original* picture (same frame) whose identity must not be
            matched; None uses ``image`` itself (e.g. to cloak a photo).
        rng: random generator of the jitter (deterministic with a seeded one).
        views: other 5-point estimates of the same face (another detector's, the
            68-point model's): landmark detectors disagree by 10-20% of the
            inter-ocular distance, and an attacker aligns with its own. Every step
            embeds the face at ``pts5`` and at each view (each jittered), and success
            is required at all of them.
        toward: per recognizer name, a unit embedding to pull the face towards (the
            donor's identity), weighted by ``settings.pull``. Without it the face is
            only pushed *away* from the original, in a direction that is much the
            same for every photo of one person, so de-identified photos of one person
            still match each other (the parrot attack).

    Returns:
        :class:`ProtectResult`; pixels where ``mask`` is 0 are bit-identical to ``image``.
        ``before``/``after`` are the worst (smallest) ratios over the views.

    Raises:
        ImportError: torch is not installed (the ``torch`` extra).
    """
    import torch
    import torch.nn.functional as F

    from .nets import recognizer

    rng = rng if rng is not None else np.random.default_rng(0)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError("protect() needs an H x W x 3 uint8 RGB image")
    ref = img if reference is None else np.asarray(reference)
    if ref.shape != img.shape:
        raise ValueError("reference must have the image's shape")
    m = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
    ys, xs = np.nonzero(m > 0)
    if not len(xs):
        return ProtectResult(img.copy())
    recs = [recognizer(n) for n in settings.attackers]
    pts5 = np.asarray(pts5, np.float64)
    allpts = [pts5] + [np.asarray(v, np.float64) for v in (views or []) if v is not None]
    h, w = img.shape[:2]
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    rois = [_roi(recs, p, box, h, w) for p in allpts]
    x0, y0 = min(r[0] for r in rois), min(r[1] for r in rois)
    x1, y1 = max(r[2] for r in rois), max(r[3] for r in rois)
    locals_ = [p - [x0, y0] for p in allpts]

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a[y0:y1, x0:x1], np.float32)).permute(
            2, 0, 1)[None]

    base = tensor(img)
    mroi = torch.from_numpy(np.ascontiguousarray(m[y0:y1, x0:x1]))[None, None]
    with torch.no_grad():
        ref_t = tensor(ref)
        # the original's identity: its embedding at every view (each an attacker's guess)
        targets = [r.embed_many(ref_t, locals_) for r in recs]
    # the pull's direction: the given identity minus its component along the original's
    # (mean over the views), so pulling never pulls back towards the original
    pulls = []
    for r, t_all in zip(recs, targets):
        t = None if not toward or settings.pull <= 0 else toward.get(r.name)
        if t is not None:
            t = torch.from_numpy(np.asarray(t, np.float32).reshape(1, -1))
            o = F.normalize(t_all.mean(0, keepdim=True), dim=1)
            t = t - (t * o).sum() * o
            t = F.normalize(t, dim=1) if float(t.norm()) > 1e-6 else None
        pulls.append(t)
    # grid of the perturbation: the recognizers' finest crop scale x resolution
    scale = max(float(np.sqrt(abs(np.linalg.det(r.matrix(locals_[0])[:, :2])))) for r in recs)
    g = max(0.05, min(1.0, scale * float(settings.resolution)))
    gh, gw = max(2, int(round((y1 - y0) * g))), max(2, int(round((x1 - x0) * g)))
    delta = torch.zeros((1, 3, gh, gw), requires_grad=True)
    safe = [1.0 - r.threshold * (1.0 + float(settings.margin)) for r in recs]

    def render(d):
        up = F.interpolate(d, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
        return torch.clamp(base + up * mroi, 0.0, 255.0)

    def ratios(x) -> list[float]:
        """Per recognizer, the worst view's distance / threshold to the original."""
        with torch.no_grad():
            return [float(((1.0 - (r.embed_many(x, locals_) * t).sum(1)) / r.threshold).min())
                    for r, t in zip(recs, targets)]

    out = ProtectResult(img.copy())
    out.before = {r.name: v for r, v in zip(recs, ratios(base))}
    need = 1.0 + float(settings.margin)
    pull = float(settings.pull)
    n_steps = max(1, int(settings.steps))
    # rounds: the full budget at eps, then (while a recognizer still matches) half the
    # budget again at each larger bound, x1.5 per round up to max_eps
    bounds = [float(settings.eps)]
    top = float(settings.max_eps) if settings.max_eps is not None else bounds[0]
    while bounds[-1] * 1.5 <= top + 1e-9:
        bounds.append(bounds[-1] * 1.5)
    if bounds[-1] < top - 1e-9:
        bounds.append(top)
    steps, done, eps = 0, False, bounds[0]
    active = [True] * len(recs)
    for rnd, eps in enumerate(bounds):
        budget = n_steps if rnd == 0 else max(4, n_steps // 2)
        alpha = 2.5 * eps / n_steps
        for k in range(1, budget + 1):
            steps += 1
            x = render(delta)
            loss = 0.0
            for ri, (r, t, s, tw) in enumerate(zip(recs, targets, safe, pulls)):
                if not active[ri]:
                    continue
                # one view per step and recognizer, in turn (stochastic expectation over
                # the views and the jitter; every view is checked below)
                v = (steps + ri) % len(locals_)
                p = (_jittered(locals_[v], float(settings.jitter), rng) if settings.jitter > 0
                     else locals_[v])
                e = r.embed_many(x, [p])
                loss = loss + torch.clamp((e * t[v:v + 1]).sum() - s, min=-0.05)
                if tw is not None:
                    loss = loss - pull * (e * tw).sum()
            if delta.grad is not None:
                delta.grad.zero_()
            loss.backward()
            with torch.no_grad():
                delta -= alpha * torch.sign(delta.grad)
                delta.clamp_(-eps, eps)
            if k % 4 == 0 or k == budget:
                xq = torch.round(render(delta.detach()))
                now = ratios(xq)
                if all(v > need for v in now):
                    done = True
                    break
                # a recognizer well beyond its margin at every view costs no gradient
                # steps until the next check (with a pull it keeps being pulled)
                active = [v <= need * 1.1 or tw is not None for v, tw in zip(now, pulls)]
        if done:
            break
    out.eps = eps
    with torch.no_grad():
        xq = torch.round(render(delta.detach()))
    out.after = {r.name: v for r, v in zip(recs, ratios(xq))}
    roi = xq[0].permute(1, 2, 0).numpy().astype(np.uint8)
    res = img.copy()
    keep = m[y0:y1, x0:x1] <= 0
    roi[keep] = img[y0:y1, x0:x1][keep]
    res[y0:y1, x0:x1] = roi
    out.image = res
    out.steps = steps
    return out


__all__ = ["ProtectResult", "ProtectSettings", "protect"]
