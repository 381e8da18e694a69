"""Union of several detectors with duplicate fusion.

Each member keeps its own threshold; the detections of all members are pooled,
grouped (a detection joins the group of a higher-scored one when IoU >=
``iou_threshold``), and each group becomes one face:

* ``fusion="weighted"`` (default): box = score-weighted mean of the group's boxes;
* ``fusion="max"``: the highest-scored box;
* ``fusion="union"``: the box enclosing the group (paints the most).

The group's score is its highest member score; landmarks come from the
highest-scored member that has them. ``extra["members"]`` lists the backends
that found the face.

Thread safety: as the members (each backend documents its own).
"""

from __future__ import annotations

import numpy as np

from ..types import Face
from . import iou_matrix
from .base import Detector

FUSIONS = ("weighted", "max", "union")


def fuse_faces(faces: list[Face], iou_threshold: float = 0.4, fusion: str = "weighted",
               name: str | None = None) -> list[Face]:
    """Merge duplicates among ``faces`` (any detectors), highest score first."""
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion '{fusion}'; choose one of: {', '.join(FUSIONS)}")
    if not faces:
        return []
    faces = sorted(faces, key=lambda f: -f.score)
    boxes = np.array([f.box for f in faces], dtype=np.float64)
    scores = np.array([f.score for f in faces], dtype=np.float64)
    ious = iou_matrix(boxes, boxes)
    assigned = np.zeros(len(faces), dtype=bool)
    out = []
    for i in range(len(faces)):
        if assigned[i]:
            continue
        group = np.nonzero(~assigned & (ious[i] >= iou_threshold))[0]
        group = group[group >= i] if i in group else np.concatenate([[i], group])
        assigned[group] = True
        best = faces[i]
        if fusion == "weighted" and len(group) > 1:
            w = np.maximum(scores[group], 1e-6)
            box = tuple((boxes[group] * w[:, None]).sum(0) / w.sum())
        elif fusion == "union" and len(group) > 1:
            g = boxes[group]
            box = (g[:, 0].min(), g[:, 1].min(), g[:, 2].max(), g[:, 3].max())
        else:
            box = best.box
        lm = next((faces[j].landmarks5 for j in group if faces[j].landmarks5 is not None), None)
        members = sorted({faces[j].detector for j in group if faces[j].detector})
        out.append(best.replace(box=box, landmarks5=lm, detector=name or best.detector,
                                extra={**best.extra, "members": members}))
    return out


class EnsembleDetector(Detector):
    """Union of detectors, duplicates fused.

    Args:
        members: detector instances (each with its own threshold).
        threshold: minimum fused score (default 0: keep what any member kept).
        iou_threshold: IoU above which two detections are the same face.
        fusion: ``weighted`` | ``max`` | ``union`` (see module doc).
    """

    default_threshold = 0.0

    def __init__(self, members: list[Detector], threshold: float | None = None,
                 iou_threshold: float = 0.4, fusion: str = "weighted"):
        if not members:
            raise ValueError("an ensemble needs at least one detector")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion '{fusion}'; choose one of: {', '.join(FUSIONS)}")
        super().__init__(threshold)
        self.members = list(members)
        self.iou_threshold = float(iou_threshold)
        self.fusion = fusion
        self.name = "+".join(getattr(m, "name", type(m).__name__) for m in self.members)

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        pooled = [f for m in self.members for f in m.detect(rgb)]
        return fuse_faces(pooled, self.iou_threshold, self.fusion, name=self.name)

    def __repr__(self) -> str:
        return (f"EnsembleDetector({self.members!r}, threshold={self.threshold}, "
                f"iou_threshold={self.iou_threshold}, fusion={self.fusion!r})")
