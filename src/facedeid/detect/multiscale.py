"""Scale handling: detect on a resized copy, and extra passes for small faces.

* :class:`ScaledDetector` (the user's ``--scale``): detect on a copy resized by
  a factor (or to ``W x H``), boxes and landmarks mapped back.
* :class:`TiledDetector`: a full-image pass plus a pass on upscaled, overlapping
  tiles; only small faces are taken from the tiles; merged by NMS.
* :func:`default_detector`: facedeid's default (``yunet-tiled``): YuNet on
  1.5x-upscaled tiles + CenterFace on a half-size copy, with an agreement rule
  (a mid-score tile face is kept when the other pass also saw it).
  :func:`default_detector_v1` is the previous default (no agreement rule).
* :class:`RefineDetector`: a second look at low-score YuNet candidates on
  upscaled crops (measured, not the default: see docs/DETECTION.md).

Thread safety: as the wrapped detectors.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..types import Face
from . import nms
from .base import Detector


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_LINEAR
    return cv2.resize(rgb, (int(width), int(height)), interpolation=interp)


def _map_face(f: Face, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Face:
    """``f`` with x mapped by ``x * sx + dx`` and y by ``y * sy + dy``."""
    x1, y1, x2, y2 = f.box
    lm5 = None if f.landmarks5 is None else f.landmarks5 * [sx, sy] + [dx, dy]
    lm68 = None if f.landmarks68 is None else f.landmarks68 * [sx, sy] + [dx, dy]
    return f.replace(box=(x1 * sx + dx, y1 * sy + dy, x2 * sx + dx, y2 * sy + dy),
                     landmarks5=lm5, landmarks68=lm68)


class _Wrapper(Detector):
    """A detector that delegates to ``base``; ``threshold`` is the base's threshold."""

    def __init__(self, base: Detector):
        self.base = base
        self.name = getattr(base, "name", "wrapped")

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.base.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.base.threshold = float(value)

    @property
    def default_threshold(self) -> float:  # type: ignore[override]
        return self.base.default_threshold

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces sorted by score; the wrapped detectors already applied their thresholds."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("Detector.detect expects an RGB uint8 H x W x 3 array")
        return sorted(self._detect(rgb), key=lambda f: -f.score)


def parse_scale(scale) -> float | tuple[int, int]:
    """``0.5`` / ``"0.5"`` -> factor; ``(640, 360)`` / ``"640x360"`` -> size."""
    if isinstance(scale, str):
        s = scale.lower().strip()
        if "x" in s:
            w, h = s.split("x", 1)
            scale = (int(w), int(h))
        else:
            scale = float(s)
    if isinstance(scale, (tuple, list)):
        w, h = (int(v) for v in scale)
        if w <= 0 or h <= 0:
            raise ValueError(f"scale size must be positive, got {scale}")
        return w, h
    scale = float(scale)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return scale


class ScaledDetector(_Wrapper):
    """Detect on a resized copy; faces come back in the input's pixels.

    Args:
        base: the detector to run.
        scale: a factor (``0.5``: half size, faster, misses small faces; ``2``:
            finds smaller faces, 4x slower) or a ``(width, height)`` / ``"WxH"`` size.
    """

    def __init__(self, base: Detector, scale=1.0):
        super().__init__(base)
        self.scale = parse_scale(scale)

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        if isinstance(self.scale, tuple):
            nw, nh = self.scale
        else:
            nw, nh = max(1, round(w * self.scale)), max(1, round(h * self.scale))
        if (nw, nh) == (w, h):
            return self.base.detect(rgb)
        small = _resize(rgb, nw, nh)
        sx, sy = w / nw, h / nh
        return [_map_face(f, sx, sy).clipped(w, h) for f in self.base.detect(small)]

    def __repr__(self) -> str:
        return f"ScaledDetector({self.base!r}, scale={self.scale})"


class TiledDetector(_Wrapper):
    """A full-image pass plus small faces from upscaled, overlapping tiles, merged by NMS.

    The image is cut into the fewest tiles of at most ``tile`` x ``tile`` input
    pixels that overlap by at least ``overlap`` pixels (evenly spread); each tile
    is magnified by ``upscale`` and run through ``base``. From the tiles only faces
    smaller than ``max_face`` input pixels (longest side) are kept, and none that
    touch an inner tile edge: bigger faces are the full pass's job. Tiling keeps
    memory bounded on large photos; on a 1024 px wide picture it is one tile.

    The full pass runs ``full`` (default: ``base``) on the image resized by
    ``full_scale`` (1: native; 0.5 is enough for faces >= ~40 px and costs a
    quarter). ``full`` may be another detector: the default uses CenterFace there.

    Args:
        base: the detector to run (on the image and on each tile).
        upscale: tile magnification (1.5: faces of 10-16 px become 15-24 px).
        tile: largest tile side in input pixels.
        overlap: minimum overlap of neighbouring tiles, input pixels (> ``max_face``).
        max_face: largest face (input pixels, longest side) taken from tiles.
        full_scale: resize factor of the full-image pass (0 disables it).
        full: detector of the full-image pass (None: ``base``); ``threshold``
            on this wrapper sets ``base``'s threshold only.
        nms_iou: IoU for merging.
        accept: agreement rule (None: off, every detection is kept). Tile faces
            scoring ``accept`` or more are kept; those below (down to ``base``'s own
            threshold) only when a full-pass candidate overlaps them at IoU >=
            ``support_iou``. With the rule on, ``threshold`` reads and sets ``accept``.
        full_accept: with the agreement rule, full-pass faces are kept when they
            score ``full_accept`` or more; the full pass's lower-scoring candidates
            (down to ``full``'s own threshold) only vote for tile faces.
        support_iou: IoU at which a full-pass candidate supports a tile face.
    """

    def __init__(self, base: Detector, upscale: float = 2.0, tile: int = 1024, overlap: int = 96,
                 max_face: float = 64.0, full_scale: float = 1.0, full: Detector | None = None,
                 nms_iou: float = 0.4, accept: float | None = None, full_accept: float | None = None,
                 support_iou: float = 0.3):
        super().__init__(base)
        if (accept is None) != (full_accept is None):
            raise ValueError("accept and full_accept go together (both None: no agreement rule)")
        self.accept = None if accept is None else float(accept)
        self.full_accept = None if full_accept is None else float(full_accept)
        self.support_iou = float(support_iou)
        self.full = base if full is None else full
        if not upscale > 0:
            raise ValueError("upscale must be > 0")
        if not 0 <= overlap < tile:
            raise ValueError("need 0 <= overlap < tile")
        if full_scale < 0:
            raise ValueError("full_scale must be >= 0")
        self.upscale = float(upscale)
        self.tile = int(tile)
        self.overlap = int(overlap)
        self.max_face = float(max_face)
        self.full_scale = float(full_scale)
        self.nms_iou = float(nms_iou)

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.base.threshold if self.accept is None else self.accept

    @threshold.setter
    def threshold(self, value: float) -> None:
        if self.accept is None:
            self.base.threshold = float(value)
        else:
            self.accept = float(value)

    def tiles(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """Tile rectangles ``(x0, y0, x1, y1)`` covering the image with overlap."""
        def spans(n: int) -> list[tuple[int, int]]:
            if n <= self.tile:
                return [(0, n)]
            k = int(np.ceil((n - self.overlap) / (self.tile - self.overlap)))
            size = int(np.ceil((n + (k - 1) * self.overlap) / k))
            starts = np.linspace(0, n - size, k).round().astype(int)
            return [(int(a), int(a) + size) for a in starts]
        return [(x0, y0, x1, y1) for y0, y1 in spans(height) for x0, x1 in spans(width)]

    def _full_pass(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if self.full_scale == 0:
            return []
        if self.full_scale == 1:
            return list(self.full.detect(rgb))
        nw, nh = max(1, round(w * self.full_scale)), max(1, round(h * self.full_scale))
        return [_map_face(f, w / nw, h / nh).clipped(w, h)
                for f in self.full.detect(_resize(rgb, nw, nh))]

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        full = self._full_pass(rgb)
        tiled: list[Face] = []
        margin = 2.0
        for x0, y0, x1, y1 in self.tiles(w, h):
            crop = rgb[y0:y1, x0:x1]
            up = _resize(crop, max(1, round((x1 - x0) * self.upscale)),
                         max(1, round((y1 - y0) * self.upscale)))
            sx, sy = (x1 - x0) / up.shape[1], (y1 - y0) / up.shape[0]
            for f in self.base.detect(up):
                g = _map_face(f, sx, sy, x0, y0)
                if max(g.width, g.height) >= self.max_face:
                    continue
                bx1, by1, bx2, by2 = g.box
                if ((x0 > 0 and bx1 < x0 + margin) or (y0 > 0 and by1 < y0 + margin)
                        or (x1 < w and bx2 > x1 - margin) or (y1 < h and by2 > y1 - margin)):
                    continue
                tiled.append(g.clipped(w, h))
        faces = full + tiled if self.accept is None else agree(
            tiled, full, self.accept, self.full_accept, self.support_iou)
        if not faces:
            return []
        keep = nms(np.array([f.box for f in faces]), np.array([f.score for f in faces]), self.nms_iou)
        return [faces[i] for i in keep]

    def __repr__(self) -> str:
        full = "" if self.full is self.base else f", full={self.full!r}"
        rule = ("" if self.accept is None else f", accept={self.accept:g}, "
                f"full_accept={self.full_accept:g}, support_iou={self.support_iou:g}")
        return (f"TiledDetector({self.base!r}, upscale={self.upscale}, tile={self.tile}, "
                f"overlap={self.overlap}, max_face={self.max_face}, full_scale={self.full_scale}"
                f"{full}{rule})")


def agree(tiled: list[Face], full: list[Face], accept: float, full_accept: float,
          support_iou: float = 0.3) -> list[Face]:
    """The agreement rule of :class:`TiledDetector` (before NMS).

    Keeps the tile faces scoring ``accept`` or more, the tile faces below it that
    some full-pass face overlaps at IoU >= ``support_iou`` (whatever that face's
    score: the full pass ran at its own, low, threshold), and the full-pass faces
    scoring ``full_accept`` or more. Scores are left as they are.
    """
    from . import iou_matrix

    if tiled and full:
        iou = iou_matrix(np.array([f.box for f in tiled]), np.array([f.box for f in full]))
        supported = (iou >= support_iou).any(axis=1)
    else:
        supported = np.zeros(len(tiled), dtype=bool)
    kept = [f for f, ok in zip(tiled, supported) if f.score >= accept or ok]
    return kept + [f for f in full if f.score >= full_accept]


class RefineDetector(_Wrapper):
    """A second look at low-score YuNet candidates, on an upscaled crop.

    Candidates scoring at least ``candidate_threshold`` but below ``accept``
    are re-detected on a crop of ``context`` x their size, magnified so the face
    is ``target_size`` px; a candidate is kept when the mean of its score and the
    best overlapping (IoU >= 0.3) re-detection score reaches ``threshold``.
    Faces scoring ``accept`` or more are kept as they are. At most ``max_checks``
    candidates (best first) are checked per image.

    Measured on WIDER val (benchmarks/bench_detection.py): about one point of
    Hard recall at equal false positives over plain YuNet; the default uses
    upscaled tiles instead (see :func:`default_detector`).
    """

    def __init__(self, base: Detector | None = None, threshold: float = 0.4,
                 candidate_threshold: float = 0.1, accept: float = 0.6, context: float = 3.0,
                 target_size: float = 48.0, max_checks: int = 100):
        from .yunet import YuNetDetector

        base = base if base is not None else YuNetDetector()
        if not isinstance(base, YuNetDetector):
            raise TypeError("RefineDetector needs a YuNetDetector (it reads raw candidate scores)")
        super().__init__(base)
        self._threshold = float(threshold)
        self.candidate_threshold = float(candidate_threshold)
        self.accept = float(accept)
        self.context = float(context)
        self.target_size = float(target_size)
        self.max_checks = int(max_checks)

    # the wrapper's own threshold (the combined score), not the base's
    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = float(value)

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        from . import iou_matrix
        from .yunet import faces_from_yunet

        h, w = rgb.shape[:2]
        raw = self.base.raw(rgb, self.candidate_threshold)
        if len(raw) == 0:
            return []
        sure = raw[raw[:, 14] >= self.accept]
        band = raw[raw[:, 14] < self.accept]
        band = band[np.argsort(-band[:, 14])][: self.max_checks]
        kept = [sure]
        for row in band:
            x, y, bw, bh = (float(v) for v in row[:4])
            size = max(bw, bh, 1.0)
            k = max(1.0, self.target_size / size)
            side = self.context * size
            cx, cy = x + bw / 2, y + bh / 2
            x0, y0 = int(np.floor(cx - side / 2)), int(np.floor(cy - side / 2))
            x1, y1 = int(np.ceil(cx + side / 2)), int(np.ceil(cy + side / 2))
            crop = rgb[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
            if crop.size == 0:
                continue
            crop = cv2.copyMakeBorder(crop, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w),
                                      cv2.BORDER_CONSTANT, value=0)
            up = cv2.resize(crop, (round(crop.shape[1] * k), round(crop.shape[0] * k)),
                            interpolation=cv2.INTER_CUBIC)
            again = self.base.raw(up, self.candidate_threshold)
            if len(again) == 0:
                continue
            boxes = again[:, :4].astype(np.float64) / k
            boxes[:, :2] += [x0, y0]
            boxes[:, 2:] += boxes[:, :2]
            ious = iou_matrix(np.array([[x, y, x + bw, y + bh]]), boxes)[0]
            best = float(np.where(ious >= 0.3, again[:, 14], 0).max())
            combined = (float(row[14]) + best) / 2
            if combined >= self._threshold:
                r = row.copy()
                r[14] = combined
                kept.append(r[None])
        return faces_from_yunet(np.concatenate(kept), w, h, "yunet-refine")

    def __repr__(self) -> str:
        return (f"RefineDetector({self.base!r}, threshold={self._threshold}, "
                f"candidate_threshold={self.candidate_threshold}, accept={self.accept})")


#: The default configuration, chosen by benchmarks/bench_detection.py and
#: benchmarks/tune_detection.py (docs/DETECTION.md): YuNet on 1.5x-upscaled tiles
#: (faces < 64 px) kept at 0.45, or at 0.35 when CenterFace (run on a half-size
#: copy at 0.1) also saw the face; CenterFace's own faces kept at 0.35.
DEFAULT_CONFIG = {"threshold": 0.45, "rescue_threshold": 0.35, "full_threshold": 0.35,
                  "support_threshold": 0.1, "support_iou": 0.3, "upscale": 1.5, "full_scale": 0.5,
                  "tile": 1024, "overlap": 96, "max_face": 64.0}

#: The previous default (``yunet-tiled-v1``): the same passes, YuNet 0.45 and
#: CenterFace 0.25, merged by NMS without the agreement rule.
DEFAULT_CONFIG_V1 = {"threshold": 0.45, "full_threshold": 0.25, "upscale": 1.5, "full_scale": 0.5,
                     "tile": 1024, "overlap": 96, "max_face": 64.0}


def default_detector(threshold: float | None = None, full_threshold: float | None = None,
                     num_threads: int | None = None, **options) -> TiledDetector:
    """facedeid's default detector (registry name ``yunet-tiled``).

    YuNet on 1.5x-upscaled tiles finds the small faces (< 64 px); CenterFace on
    a half-size copy finds the larger ones; duplicates are merged by NMS. A tile
    face scoring between ``rescue_threshold`` (0.35) and ``threshold`` (0.45) is
    kept only when CenterFace also has a candidate there (score >=
    ``support_threshold``, 0.1; IoU >= ``support_iou``, 0.3). CenterFace's faces
    are kept from ``full_threshold`` (0.35).

    Args:
        threshold: YuNet's accept threshold (default 0.45). Given alone, the other
            thresholds move in proportion (``x threshold / 0.45``).
        full_threshold: CenterFace's accept threshold (default 0.35).
        num_threads: onnxruntime threads for CenterFace (default ``os.cpu_count()``)
            and OpenCV threads for YuNet (default: OpenCV's setting).
        **options: override the rest of :data:`DEFAULT_CONFIG` (``rescue_threshold``,
            ``support_threshold``, ``support_iou``, ``upscale``, ``full_scale``,
            ``tile``, ``overlap``, ``max_face``).
    """
    from .centerface import CenterFaceDetector
    from .yunet import YuNetDetector

    cfg = {**DEFAULT_CONFIG, **options}
    accept = cfg.pop("threshold")
    k = 1.0 if threshold is None else float(threshold) / accept
    accept *= k
    rescue = min(cfg.pop("rescue_threshold") * k, accept)
    full_accept = cfg.pop("full_threshold") * k
    if full_threshold is not None:
        full_accept = float(full_threshold)
    support = min(cfg.pop("support_threshold") * k, full_accept)
    det = TiledDetector(YuNetDetector(threshold=rescue, num_threads=num_threads),
                        full=CenterFaceDetector(threshold=support, num_threads=num_threads),
                        accept=accept, full_accept=full_accept, **cfg)
    det.name = "yunet-tiled"
    return det


def default_detector_v1(threshold: float | None = None, full_threshold: float | None = None,
                        num_threads: int | None = None, **options) -> TiledDetector:
    """The previous default (registry name ``yunet-tiled-v1``): no agreement rule.

    YuNet (0.45) on 1.5x-upscaled tiles, faces < 64 px, plus CenterFace (0.25)
    on a half-size copy, merged by NMS. ``threshold`` alone moves CenterFace's
    threshold in proportion (``threshold * 0.25 / 0.45``).
    """
    from .centerface import CenterFaceDetector
    from .yunet import YuNetDetector

    cfg = {**DEFAULT_CONFIG_V1, **options}
    base_thr = cfg.pop("threshold")
    full_thr = cfg.pop("full_threshold")
    if threshold is not None:
        if full_threshold is None:
            full_thr = full_thr * float(threshold) / base_thr
        base_thr = float(threshold)
    if full_threshold is not None:
        full_thr = float(full_threshold)
    det = TiledDetector(YuNetDetector(threshold=base_thr, num_threads=num_threads),
                        full=CenterFaceDetector(threshold=full_thr, num_threads=num_threads), **cfg)
    det.name = "yunet-tiled-v1"
    return det
