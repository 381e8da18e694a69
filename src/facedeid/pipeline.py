"""The image pipeline: detect -> landmarks -> method -> composite, with a record.

>>> from facedeid.pipeline import Anonymizer
>>> anon = Anonymizer(method="pixelate", strength=8)      # nothing loaded yet
>>> result = anon.anonymize(image)                        # doctest: +SKIP
>>> result.image, result.faces, result.record             # doctest: +SKIP

An :class:`Anonymizer` loads its models once, lazily, and can be reused for
many images (not shared between threads: make one per thread).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import composite
from .detect import DEFAULT_DETECTOR, get_detector
from .imageops import to_rgb8
from .methods import get_method
from .methods.base import CannotPaint
from .types import Face

log = logging.getLogger(__name__)

SHAPES = ("box", "ellipse", "hull")
DEFAULT_METHOD = "blur"
DEFAULT_MASK_SCALE = 1.3
#: The landmark outline painted by ``shape="hull"``: jaw line plus eyebrows, so the
#: chin is covered. (Seed 004's own mask, ``face_hull``, stops at the lower lip.)
HULL_REGION = "face_outline"


@dataclass
class AnonymizeResult:
    """What :meth:`Anonymizer.anonymize` returns.

    Attributes:
        image: the de-identified image (same shape and dtype as the input).
        faces: every face found (or given), with ``landmarks68`` where computed.
        record: JSON-ready description of what was done to each face.
    """

    image: np.ndarray
    faces: list[Face]
    record: dict[str, Any] = field(default_factory=dict)


def _json_safe(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if key == "rng":
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


class Anonymizer:
    """De-identify every face in images with one method.

    Args:
        method: registry name (``facedeid.methods.METHODS.names()``).
        strength: value for the method's strength parameter (None: its default).
        detector: detector registry name (None: the measured default).
        threshold: detector score threshold (None: the backend's recall-first default).
        scale: detect on a copy resized by this factor (None: native).
        shape: painted region, ``box``, ``ellipse`` or ``hull`` (68-point outline).
        mask_scale: region size relative to the detected face box.
        small_face_scale: mask scale of faces of 20 px and less, falling linearly
            to ``mask_scale`` at 40 px (:func:`facedeid.composite.grown_mask_scale`):
            small faces' boxes are loose. None paints every face at ``mask_scale``.
        feather: soft-edge width as a fraction of the face size (0 = hard edge).
        seed: makes stochastic methods reproducible (None: fresh OS entropy).
        fallback: method used for a face the chosen method or shape cannot handle
            (e.g. no 68-point landmarks); the record says so. Never leaves a face untouched.
        **method_params: other parameters of the method (e.g. ``color=(255, 0, 0)``).
    """

    def __init__(
        self,
        method: str = DEFAULT_METHOD,
        strength: Any = None,
        *,
        detector: str | None = None,
        threshold: float | None = None,
        scale: float | None = None,
        shape: str = "ellipse",
        mask_scale: float = DEFAULT_MASK_SCALE,
        small_face_scale: float | None = composite.SMALL_FACE_SCALE,
        feather: float = 0.0,
        seed: int | None = None,
        fallback: str = "blackout",
        **method_params: Any,
    ):
        if shape not in SHAPES:
            raise ValueError(f"unknown shape '{shape}'; choose one of: {', '.join(SHAPES)}")
        if not mask_scale > 0:
            raise ValueError("mask_scale must be > 0")
        if feather < 0:
            raise ValueError("feather must be >= 0")
        if small_face_scale is not None and not small_face_scale > 0:
            raise ValueError("small_face_scale must be > 0 (or None)")
        self.method = get_method(method)
        self.params = self.method.params(strength, **method_params)
        self.fallback = get_method(fallback)
        if self.fallback.needs_landmarks68:
            raise ValueError(f"fallback method '{fallback}' itself needs landmarks")
        self.fallback_params = self.fallback.params()
        self.detector_name = detector or DEFAULT_DETECTOR
        #: False when no detector was named: video then uses its own measured default
        #: (``facedeid.video.VIDEO_DETECTOR``), images the image default.
        self.detector_explicit = detector is not None
        self.threshold = threshold
        self.scale = scale
        self.shape = shape
        self.mask_scale = float(mask_scale)
        self.small_face_scale = None if small_face_scale is None else float(small_face_scale)
        self.feather = float(feather)
        self.seed = seed
        self._detector = None
        self._predictor = None
        self.detector  # validates the name and options now; models still load on first use

    # lazily built models ----------------------------------------------------
    @property
    def detector(self):
        if self._detector is None:
            kwargs: dict[str, Any] = {}
            if self.threshold is not None:
                kwargs["threshold"] = self.threshold
            if self.scale is not None:
                kwargs["scale"] = self.scale
            self._detector = get_detector(self.detector_name, **kwargs)
        return self._detector

    @property
    def predictor(self):
        if self._predictor is None:
            from .landmarks.dlib68 import Dlib68Predictor

            self._predictor = Dlib68Predictor()
        return self._predictor

    @property
    def needs_landmarks68(self) -> bool:
        return self.method.needs_landmarks68 or self.shape == "hull"

    def detector_config(self) -> dict[str, Any]:
        det = self.detector
        return {"name": self.detector_name, "threshold": det.threshold,
                "scale": self.scale, "repr": repr(det)}

    # steps ------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (any supported layout), numbered in reading order."""
        rgb = to_rgb8(image)
        faces = self.detector.detect(rgb)
        h, w = rgb.shape[:2]
        # Boxes are kept as detected, even where they extend past the border: the
        # painted region is built from the whole face and clipped only at paste time.
        faces = [f for f in faces if f.clipped(w, h).area >= 1]
        faces.sort(key=lambda f: (f.box[1], f.box[0]))
        return [f.replace(face_id=i) for i, f in enumerate(faces)]

    def add_landmarks(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Faces with 68-point landmarks where the predictor succeeds."""
        rgb = to_rgb8(image)
        out = []
        for face in faces:
            if face.landmarks68 is None:
                try:
                    face = face.replace(landmarks68=self.predictor.predict(rgb, face))
                except Exception as exc:  # a face the predictor cannot handle
                    log.warning("no 68-point landmarks for face %s: %s", face.face_id, exc)
            out.append(face)
        return out

    def face_mask_scale(self, face: Face) -> float:
        """The mask scale painted for ``face``: ``mask_scale``, grown for small faces."""
        return float(composite.grown_mask_scale(composite.face_size(face), self.mask_scale,
                                                self.small_face_scale))

    def rng_for(self, key: int, seed: int | None = None) -> np.random.Generator:
        """The random generator a stochastic method (e.g. ``noise``) gets for one face.

        With a seed (``seed``, else the Anonymizer's own), the generator is
        ``np.random.default_rng([seed, key])``: the same key always draws the same
        values, different keys draw independent ones. Images key faces by their
        position; video keys them by track id, so one person keeps the same noise
        pattern in every frame (see ``docs/VIDEO.md``). Without any seed: fresh OS
        entropy on every call.

        >>> a = Anonymizer("noise", seed=7)
        >>> int(a.rng_for(3).integers(1 << 30)) == int(a.rng_for(3).integers(1 << 30))
        True
        """
        seed = self.seed if seed is None else seed
        if seed is None:
            return np.random.default_rng(int.from_bytes(os.urandom(16), "little"))
        return np.random.default_rng([int(seed), int(key)])

    def paint(self, image: np.ndarray, faces: list[Face],
              rngs: list[np.random.Generator] | None = None,
              extras: list[dict[str, Any]] | None = None, *,
              stream: bool = False) -> tuple[np.ndarray, list[dict]]:
        """Apply the method to each face; returns the new image and per-face records.

        Args:
            image: the image to paint (not modified).
            faces: the faces to paint.
            rngs: one random generator per face for stochastic methods (video passes
                ``rng_for(track_id, video_seed)`` so a person's parameters stay constant
                across frames); None: ``rng_for(position in faces)``.
            extras: per face, extra params for the method (a dataset method's group
                average, see :mod:`facedeid.batch`); None: from ``method.prepare``, or
                for a dataset method (k-Same) this image's faces grouped alone, completed
                by its gallery or the shipped pool (:func:`facedeid.batch.image_extras`).
                An extra ``record`` entry goes to the face's record as ``group``.
            stream: the image is a frame of a video (methods see ``_stream``: a choice
                that may differ from frame to frame, such as ``fatm``'s fallback to
                ``replace``, is then left out, so a person's face does not flicker).
        """
        if rngs is not None and len(rngs) != len(faces):
            raise ValueError(f"rngs has {len(rngs)} generator(s) for {len(faces)} face(s)")
        out = np.array(image, copy=True)
        h, w = out.shape[:2]
        records = []
        if rngs is None:
            rngs = [self.rng_for(index) for index in range(len(faces))]
        if extras is not None and len(extras) != len(faces):
            raise ValueError(f"extras has {len(extras)} entries for {len(faces)} face(s)")
        if extras is None and self.method.batch is not None and faces:
            from .batch import image_extras  # a dataset method on one image: its faces alone

            extras = image_extras(self, image, faces)
        if extras is None:
            extras = [{} for _ in faces]
            if self.method.prepare is not None and faces:
                extras = self.method.prepare(to_rgb8(image), faces,
                                             {**self.params, "_stream": stream}, rngs)
        for index, face in enumerate(faces):
            method, params, shape = self.method, self.params, self.shape
            reason = None
            if self.needs_landmarks68 and face.landmarks68 is None:
                reason = "no 68-point landmarks"
                method, params = self.fallback, self.fallback_params
                shape = "ellipse" if self.shape == "hull" else self.shape
            scale = self.face_mask_scale(face)
            mask, bbox = composite.region_mask(h, w, face, shape=shape,
                                               mask_scale=scale, feather=self.feather,
                                               region=HULL_REGION)
            rec = face.to_dict()
            rec.update(method=method.name, params=_json_safe(params), region={
                "shape": shape, "mask_scale": scale, "feather": self.feather,
                "bbox": [int(v) for v in bbox]})
            if reason:
                rec["fallback"] = reason
            extra = dict(extras[index]) if method is self.method else {}
            if extra.get("record") is not None:
                rec["group"] = _json_safe(extra.pop("record"))
            x0, y0, x1, y1 = bbox
            if x1 <= x0 or y1 <= y0:
                rec["painted"] = False
                rec["error"] = "region outside the image"
                records.append(rec)
                continue
            crop = out[y0:y1, x0:x1].copy()
            local = face.transformed(dx=-x0, dy=-y0)
            report: dict[str, Any] = {}   # what the method says of this face, for the audit
            try:
                painted = method(crop, local, {**params, **extra, "rng": rngs[index],
                                               "_report": report, "_stream": stream})
                if report:
                    rec["detail"] = _json_safe(report)
            except CannotPaint as exc:  # the method declines this face: paint the fallback
                method, params = self.fallback, self.fallback_params
                rec.update(method=method.name, params=_json_safe(params), fallback=str(exc))
                painted = method(crop, local, {**params, "rng": rngs[index]})
            if painted.shape != crop.shape or painted.dtype != crop.dtype:
                raise RuntimeError(f"method '{method.name}' changed the crop's shape or dtype")
            out = composite.paste(out, painted, mask, bbox, out=out)   # in place: out is ours
            rec["painted"] = True
            records.append(rec)
        return out, records

    def anonymize(self, image: np.ndarray, faces: list[Face] | None = None,
                  extras: list[dict[str, Any]] | None = None) -> AnonymizeResult:
        """De-identify every face of ``image``.

        Args:
            image: ``H x W`` or ``H x W x C`` array (RGB(A), uint8 or uint16).
            faces: faces to paint; None runs the detector.
            extras: per face, extra method params (see :meth:`paint`).
        """
        image = np.asarray(image)
        if image.ndim not in (2, 3) or image.size == 0:
            raise ValueError(f"not an image array: shape {image.shape}")
        detected = faces is None
        if faces is None:
            faces = self.detect(image)
        if self.needs_landmarks68 and faces:
            faces = self.add_landmarks(image, faces)
        out, face_records = self.paint(image, faces, extras=extras)
        record = {
            "detector": self.detector_config() if detected else {"name": "given"},
            "method": {"name": self.method.name, "params": _json_safe(self.params),
                       "fallback": self.fallback.name},
            "region": {"shape": self.shape, "mask_scale": self.mask_scale,
                       "small_face_scale": self.small_face_scale, "feather": self.feather},
            "n_faces": len(faces),
            "no_face_found": not faces,
            "faces": face_records,
        }
        return AnonymizeResult(image=out, faces=faces, record=record)

    def audit_record(self, src, result: AnonymizeResult, *, loaded=None, written=None,
                     keep_metadata: bool = False, timings_s: dict | None = None):
        """The :class:`~facedeid.io.audit.ImageRecord` of one processed file."""
        from .io.audit import FaceEntry, ImageRecord

        entries = []
        by_id = {f.face_id: f for f in result.faces}
        for index, rec in enumerate(result.record.get("faces", [])):
            face = by_id.get(rec.get("id"), result.faces[index])
            region = rec.get("region", {})
            entries.append(FaceEntry(face, region_shape=region.get("shape"),
                                     region_scale=region.get("mask_scale"),
                                     region_box=region.get("bbox"),
                                     painted=bool(rec.get("painted")),
                                     fallback=rec.get("fallback"), group=rec.get("group"),
                                     detail=rec.get("detail")))
        detected = result.record.get("detector", {}).get("name") != "given"
        return ImageRecord.build(
            src, loaded=loaded, written=written,
            detector=self.detector if detected else "given",
            method=self.method, params=_json_safe(self.params), faces=entries,
            keep_metadata=keep_metadata, timings_s=timings_s,
        )
