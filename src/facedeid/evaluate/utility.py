"""Utility metrics: how much of the image a de-identification keeps.

Per image (:func:`image_utility`), then averaged over a method's images
(:func:`aggregate_utility`):

* ``ssim`` - mean structural similarity (Wang et al. 2004; scikit-image,
  7x7 window, colour channels averaged) of the whole image.
* ``ssim_outside`` - the SSIM map averaged over the pixels outside every painted
  region's bounding box (the rest of the photo should stay intact).
* ``psnr`` / ``psnr_outside`` - ``10 log10(MAX^2 / MSE)`` of the mean MSE over all
  images (so identical images give a finite average unless *all* are identical;
  an undefined value, e.g. +inf, is written as ``null``). ``mse``/``mse_outside``
  are reported too.
* ``detection_kept`` - of the faces the project's default detector found in the
  original, the share it still finds (IoU >= 0.5) in the de-identified image.
  ``detection_kept_method`` counts only the faces the method itself painted (not
  those it could not handle and gave to the ``fallback`` method, e.g. a face too
  small to average, blacked out); ``fallback_share`` is the share of faces that
  went to the fallback.
* ``landmark_nme`` - 68-point landmarks predicted at the original face box in
  both images: mean point displacement divided by the inter-ocular distance
  (outer eye corners, points 36 and 45, as in 300-W), averaged over faces.
* ``no_face_rate`` - share of images where the default detector found no face, so
  nothing was painted (the pipeline's misses: their identity is fully exposed).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..types import Face, box_iou

IOU_KEPT = 0.5


def outside_mask(shape: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """True for pixels outside every ``(x0, y0, x1, y1)`` box (clipped to the image)."""
    h, w = shape
    mask = np.ones((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        x1, y1 = min(int(math.ceil(x1)), w), min(int(math.ceil(y1)), h)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = False
    return mask


def quality(orig: np.ndarray, deid: np.ndarray, outside: np.ndarray | None = None) -> dict[str, float]:
    """SSIM and MSE of the whole image and (``outside`` mask) of the rest of it."""
    from skimage.metrics import structural_similarity

    a = np.asarray(orig)
    b = np.asarray(deid)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    data_range = 255.0
    sq = (a - b) ** 2
    out: dict[str, float] = {"mse": float(sq.mean())}
    if min(a.shape[:2]) >= 7:
        mssim, smap = structural_similarity(a, b, channel_axis=2, data_range=data_range,
                                            full=True)
        smap = smap.mean(axis=2)
        out["ssim"] = float(mssim)
    else:  # too small for the 7x7 window
        smap = None
        out["ssim"] = float("nan")
    if outside is not None and outside.any():
        out["mse_outside"] = float(sq[outside].mean())
        out["ssim_outside"] = float(smap[outside].mean()) if smap is not None else float("nan")
    else:
        out["mse_outside"] = float("nan")
        out["ssim_outside"] = float("nan")
    return out


def psnr_from_mse(mse: float, data_range: float = 255.0) -> float:
    """``10 log10(range^2 / mse)``; +inf for identical images; NaN for NaN."""
    if mse is None or np.isnan(mse):
        return float("nan")
    if mse <= 0:
        return float("inf")
    return float(10.0 * np.log10(data_range ** 2 / mse))


def match_faces(reference: list[Face], found: list[Face], iou: float = IOU_KEPT) -> int:
    """How many ``reference`` faces have a distinct ``found`` face with IoU >= ``iou`` (greedy)."""
    cands = sorted(((box_iou(r.box, f.box), i, j) for i, r in enumerate(reference)
                    for j, f in enumerate(found)), reverse=True)
    used_r, used_f, n = set(), set(), 0
    for v, i, j in cands:
        if v < iou:
            break
        if i in used_r or j in used_f:
            continue
        used_r.add(i)
        used_f.add(j)
        n += 1
    return n


def landmark_nme(orig_pts: np.ndarray, deid_pts: np.ndarray) -> float:
    """Mean 68-point displacement / outer inter-ocular distance (points 36, 45) of the original."""
    o = np.asarray(orig_pts, dtype=np.float64).reshape(68, 2)
    d = np.asarray(deid_pts, dtype=np.float64).reshape(68, 2)
    iod = float(np.linalg.norm(o[36] - o[45]))
    if iod <= 0:
        return float("nan")
    return float(np.linalg.norm(o - d, axis=1).mean() / iod)


def image_utility(orig: np.ndarray, deid: np.ndarray, faces: list[Face],
                  painted_boxes: list[tuple[int, int, int, int]],
                  detect: Callable[[np.ndarray], list[Face]] | None = None,
                  predict68: Callable[[np.ndarray, Face], np.ndarray] | None = None,
                  orig_landmarks68: list[np.ndarray | None] | None = None,
                  fallback: list[bool] | None = None) -> dict[str, Any]:
    """Utility numbers of one de-identified image (JSON-ready).

    Args:
        orig, deid: the two images (same shape).
        faces: faces the default detector found in the original (the ones painted).
        painted_boxes: bounding boxes of the painted regions.
        detect: the default detector (``rgb -> faces``); None skips ``detection_kept``.
        predict68: ``(rgb, face) -> (68, 2)``; None skips ``landmark_nme``.
        orig_landmarks68: cached 68 points of each face in the original (None: predicted).
        fallback: per face, whether the method handed it to its fallback method
            (None: unknown, treated as none).
    """
    out: dict[str, Any] = quality(orig, deid, outside_mask(orig.shape[:2], painted_boxes))
    out["n_faces"] = len(faces)
    if fallback is None or len(fallback) != len(faces):
        own = list(faces)
    else:
        own = [f for f, fb in zip(faces, fallback) if not fb]
    out["n_fallback"] = len(faces) - len(own)
    if detect is not None and faces:
        found = detect(deid)
        out["n_kept"] = match_faces(faces, found)
        out["n_kept_method"] = match_faces(own, found) if own else 0
    nmes = []
    if predict68 is not None:
        for k, face in enumerate(faces):
            try:
                po = orig_landmarks68[k] if orig_landmarks68 is not None else None
                if po is None:
                    po = predict68(orig, face)
                pd = predict68(deid, face)
            except Exception:  # a face the predictor cannot handle: no number for it
                continue
            v = landmark_nme(po, pd)
            if np.isfinite(v):
                nmes.append(v)
    out["nme"] = nmes
    return out


def aggregate_utility(items: list[dict[str, Any]]) -> dict[str, float]:
    """Average the per-image numbers of :func:`image_utility` (see module docstring)."""
    if not items:
        return {}

    def mean(key: str) -> float:
        vals = [it[key] for it in items if key in it and it[key] is not None
                and not np.isnan(it[key])]
        return float(np.mean(vals)) if vals else float("nan")

    mse, mse_out = mean("mse"), mean("mse_outside")
    n_faces = sum(it.get("n_faces", 0) for it in items)
    with_det = [it for it in items if "n_kept" in it]
    nmes = [v for it in items for v in it.get("nme", [])]
    out = {
        "ssim": mean("ssim"),
        "ssim_outside": mean("ssim_outside"),
        "mse": mse,
        "mse_outside": mse_out,
        "psnr": psnr_from_mse(mse),
        "psnr_outside": psnr_from_mse(mse_out),
        "detection_kept": (sum(it["n_kept"] for it in with_det)
                           / sum(it["n_faces"] for it in with_det))
        if with_det and sum(it["n_faces"] for it in with_det) else float("nan"),
        "detection_kept_method": _kept_method(with_det),
        "fallback_share": (sum(it.get("n_fallback", 0) for it in items) / n_faces)
        if n_faces else float("nan"),
        "landmark_nme": float(np.mean(nmes)) if nmes else float("nan"),
        "no_face_rate": float(np.mean([it.get("n_faces", 0) == 0 for it in items])),
        "n_images_utility": len(items),
        "n_faces_utility": int(n_faces),
    }
    return out


def _kept_method(with_det: list[dict[str, Any]]) -> float:
    """``detection_kept`` over the faces the method painted itself (see module docstring)."""
    items = [it for it in with_det if "n_kept_method" in it]
    n = sum(it["n_faces"] - it.get("n_fallback", 0) for it in items)
    return sum(it["n_kept_method"] for it in items) / n if n else float("nan")
