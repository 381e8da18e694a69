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
* every step embeds the face with each recognizer at its 5 landmarks *jittered*
  (``jitter`` x inter-ocular distance, a random similarity), so an attacker that
  re-detects the face on the output and aligns it slightly differently is fooled
  too (expectation over transformation);
* the loss is, per recognizer, the cosine similarity to the original's embedding
  above the safe level ``1 - threshold x (1 + margin)``; sign-gradient steps of
  ``2.5 eps / steps``, projected onto ``[-eps, eps]`` and the mask;
* it stops early once every recognizer, without jitter and after rounding to
  uint8, is beyond its margin.

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
        steps: most gradient steps.
        margin: success = distance > threshold x (1 + margin) for every recognizer.
        resolution: perturbation grid, as a fraction of the recognizers' crop scale.
        jitter: landmark jitter per step, fraction of the inter-ocular distance.
    """

    attackers: tuple[str, ...] = ("sface", "facenet")
    eps: float = 8.0
    steps: int = 24
    margin: float = 0.25
    resolution: float = 0.5
    jitter: float = 0.04


@dataclass
class ProtectResult:
    """What :func:`protect` did: the image, and per recognizer the distance / threshold
    ratio to the original before and after (``> 1`` = no longer matched)."""

    image: np.ndarray
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    steps: int = 0

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
            rng: np.random.Generator | None = None) -> ProtectResult:
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

    Returns:
        :class:`ProtectResult`; pixels where ``mask`` is 0 are bit-identical to ``image``.

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
    h, w = img.shape[:2]
    x0, y0, x1, y1 = _roi(recs, pts5, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), h, w)
    local = pts5 - [x0, y0]

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a[y0:y1, x0:x1], np.float32)).permute(
            2, 0, 1)[None]

    base = tensor(img)
    mroi = torch.from_numpy(np.ascontiguousarray(m[y0:y1, x0:x1]))[None, None]
    with torch.no_grad():
        ref_t = tensor(ref)
        targets = [rec.embed(ref_t, local) for rec in recs]
    # grid of the perturbation: the recognizers' finest crop scale x resolution
    scale = max(float(np.sqrt(abs(np.linalg.det(r.matrix(local)[:, :2])))) for r in recs)
    g = max(0.05, min(1.0, scale * float(settings.resolution)))
    gh, gw = max(2, int(round((y1 - y0) * g))), max(2, int(round((x1 - x0) * g)))
    delta = torch.zeros((1, 3, gh, gw), requires_grad=True)
    eps = float(settings.eps)
    alpha = 2.5 * eps / max(1, int(settings.steps))
    safe = [1.0 - r.threshold * (1.0 + float(settings.margin)) for r in recs]

    def render(d):
        up = F.interpolate(d, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
        return torch.clamp(base + up * mroi, 0.0, 255.0)

    def ratios(x) -> list[float]:
        with torch.no_grad():
            return [float((1.0 - (r.embed(x, local) * t).sum()) / r.threshold)
                    for r, t in zip(recs, targets)]

    out = ProtectResult(img.copy())
    out.before = {r.name: v for r, v in zip(recs, ratios(base))}
    need = 1.0 + float(settings.margin)
    steps = 0
    for steps in range(1, int(settings.steps) + 1):
        x = render(delta)
        loss = 0.0
        for r, t, s in zip(recs, targets, safe):
            p = _jittered(local, float(settings.jitter), rng) if settings.jitter > 0 else local
            cos = (r.embed(x, p) * t).sum()
            loss = loss + torch.clamp(cos - s, min=-0.05)
        if delta.grad is not None:
            delta.grad.zero_()
        loss.backward()
        with torch.no_grad():
            delta -= alpha * torch.sign(delta.grad)
            delta.clamp_(-eps, eps)
        if steps % 4 == 0 or steps == int(settings.steps):
            xq = torch.round(render(delta.detach()))
            if all(v > need for v in ratios(xq)):
                break
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
