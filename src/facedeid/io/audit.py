"""Audit records: what facedeid did to each image, as JSON.

One **image record** (``schema: "facedeid.audit.image/1"``) per processed
image; fields, in this order::

    schema          "facedeid.audit.image/1"
    tool            "facedeid"
    version         facedeid.__version__
    timestamp       UTC, ISO 8601 with milliseconds, e.g. "2025-01-31T12:00:00.123Z"
    input           {"path": as given on the command line, "sha256": hex of the
                     file bytes, "format": "JPEG"..., "orientation": EXIF value
                     applied (1..8)}
    output          {"path", "sha256", "format"}  or null when nothing was written
    width, height   size of the processed picture (after orientation)
    detector        {"name", "threshold", "config": {...}}  (JSON-safe settings)
    method          {"name", "params": {...}}  (JSON-safe: random generators,
                     callables, bytes and other objects are dropped)
    n_faces         number of faces
    no_face_found   true when n_faces == 0 (a reviewer should look at these)
    faces           list, one per face: Face.to_dict() (box, score, landmarks5,
                     landmarks68, detector, id) plus
                       "region":   {"shape": "ellipse"|"box"|..., "scale": float,
                                    "box": [x1, y1, x2, y2] painted area or absent}
                       "painted":  true when the method painted the face
                       "fallback": null, or why another region/method was used
                       "group":    k-Same methods: the face's group (source, index, people)
                       "detail":   what the method reports of the face, where it does
                                   (replace/fatm: donor, donors tried, identity check)
    metadata        {"policy": "strip"|"keep-allowlist",
                     "input_found": kinds found in the input (see
                       facedeid.io.metadata.metadata_summary),
                     "input_identifying": the identifying ones,
                     "removed": kinds present in the input and not the output,
                     "kept": items written ("icc_profile", "dpi", "exif:Make" ...),
                     "output_identifying": must be []}
    timings_s       {"detect": s, "anonymize": s, ...}  (may be empty)
    notes           conversions made (alpha flattened, palette -> RGB ...)
    errors          messages; non-empty means the image was not (fully) processed

A **batch summary** (``schema: "facedeid.audit.batch/1"``)::

    schema, tool, version
    started, finished   UTC timestamps
    n_processed, n_failed, faces (total), n_no_face
    processed           [input paths], in processing order
    failed              [{"path", "error"}]
    no_face_found       [input paths with no face]

Records are written atomically, pretty-printed (2-space indent, UTF-8, a final
newline) by :func:`write_record`. Records never hold pixels or metadata values.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Face
from .atomic import atomic_write_bytes

IMAGE_SCHEMA = "facedeid.audit.image/1"
BATCH_SCHEMA = "facedeid.audit.batch/1"
TOOL = "facedeid"

_DROP = object()


def utc_now() -> str:
    """Current UTC time, ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version() -> str:
    from .. import __version__

    return __version__


def _is_rng(value: Any) -> bool:
    return isinstance(value, (np.random.Generator, np.random.RandomState,
                              np.random.BitGenerator, np.random.SeedSequence))


def _safe(value: Any, depth: int) -> Any:
    if depth > 32:
        return _DROP
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return _safe(value.value, depth + 1)
    if isinstance(value, Face):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return _safe(value.tolist(), depth + 1)
    if isinstance(value, np.generic):
        return _safe(value.item(), depth + 1)
    if _is_rng(value):
        return _DROP
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sv = _safe(v, depth + 1)
            if sv is not _DROP:
                out[str(k.value if isinstance(k, enum.Enum) else k)] = sv
        return out
    if isinstance(value, (list, tuple)):
        return [sv for sv in (_safe(v, depth + 1) for v in value) if sv is not _DROP]
    if isinstance(value, (set, frozenset)):
        items = [sv for sv in (_safe(v, depth + 1) for v in value) if sv is not _DROP]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _safe({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth + 1)
    return _DROP  # bytes, callables, models, sessions ...: not part of a record


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types.

    numpy scalars/arrays -> numbers/lists, Path -> str, tuples/sets -> lists,
    non-finite floats -> None, dataclasses -> dicts, Face -> ``Face.to_dict()``.
    Random generators, callables, bytes and other objects are dropped (from
    dicts and lists; a dropped top-level value becomes None).
    """
    out = _safe(value, 0)
    return None if out is _DROP else out


def detector_info(detector: Any) -> dict[str, Any]:
    """``{"name", "threshold", "config"}`` of a detector object (or a name)."""
    if detector is None:
        return {"name": None, "threshold": None, "config": {}}
    if isinstance(detector, str):
        return {"name": detector, "threshold": None, "config": {}}
    config = {k: v for k, v in vars(detector).items() if not k.startswith("_") and k not in ("name", "threshold")}
    threshold = getattr(detector, "threshold", None)
    return {
        "name": getattr(detector, "name", type(detector).__name__),
        "threshold": json_safe(threshold),
        "config": json_safe(config),
    }


@dataclass
class FaceEntry:
    """A face in an audit record: the detection plus what was painted."""

    face: Face
    region_shape: str | None = None
    region_scale: float | None = None
    region_box: tuple[float, float, float, float] | None = None
    painted: bool = True
    fallback: str | None = None
    group: dict | None = None  # dataset methods (k-Same): the face's group
    detail: dict | None = None  # what the method reports of this face (replace: donor, check)

    def to_dict(self) -> dict[str, Any]:
        d = self.face.to_dict()
        region: dict[str, Any] = {"shape": self.region_shape, "scale": json_safe(self.region_scale)}
        if self.region_box is not None:
            region["box"] = [round(float(v), 2) for v in self.region_box]
        d["region"] = region
        d["painted"] = bool(self.painted)
        d["fallback"] = self.fallback
        if self.group is not None:
            d["group"] = json_safe(self.group)
        if self.detail is not None:
            d["detail"] = json_safe(self.detail)
        return d


def metadata_report(input_summary: dict | None, output_summary: dict | None = None,
                    *, kept: list[str] | None = None, keep_metadata: bool = False) -> dict[str, Any]:
    """The ``metadata`` section from :func:`~facedeid.io.metadata.metadata_summary` results."""
    found_in = list((input_summary or {}).get("found", []))
    found_out = list((output_summary or {}).get("found", []))
    return {
        "policy": "keep-allowlist" if keep_metadata else "strip",
        "input_found": found_in,
        "input_identifying": list((input_summary or {}).get("identifying", [])),
        "removed": sorted(set(found_in) - set(found_out)),
        "kept": list(kept or []),
        "output_identifying": list((output_summary or {}).get("identifying", [])),
    }


@dataclass
class ImageRecord:
    """The audit record of one image; :meth:`to_dict` gives the documented JSON."""

    input_path: str
    input_sha256: str | None = None
    input_format: str | None = None
    orientation: int | None = None
    output_path: str | None = None
    output_sha256: str | None = None
    output_format: str | None = None
    width: int | None = None
    height: int | None = None
    detector: dict[str, Any] = field(default_factory=lambda: detector_info(None))
    method: str | None = None
    method_params: dict[str, Any] = field(default_factory=dict)
    faces: list[FaceEntry | Face | dict] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timestamp: str = field(default_factory=utc_now)

    @classmethod
    def build(
        cls,
        input_path: str | Path,
        *,
        loaded: Any = None,
        written: Any = None,
        detector: Any = None,
        method: Any = None,
        params: dict[str, Any] | None = None,
        faces: list[FaceEntry | Face | dict] = (),
        keep_metadata: bool = False,
        timings_s: dict[str, float] | None = None,
        errors: list[str] = (),
    ) -> "ImageRecord":
        """A record from the I/O results.

        Args:
            input_path: the input as given by the user.
            loaded: the :class:`~facedeid.io.images.LoadedImage` (None if reading failed).
            written: the :class:`~facedeid.io.images.WrittenImage` (None if nothing written).
            detector: a detector object (``name``, ``threshold`` attributes) or a name.
            method: a method object (``name`` attribute) or a name.
            params: the method parameters used.
            faces: :class:`FaceEntry` (or bare :class:`Face`) per face.
        """
        method_name = method if (method is None or isinstance(method, str)) else getattr(method, "name", str(method))
        rec = cls(
            input_path=str(input_path),
            detector=detector_info(detector),
            method=method_name,
            method_params=dict(params or {}),
            faces=list(faces),
            timings_s=dict(timings_s or {}),
            errors=list(errors),
        )
        if loaded is not None:
            rec.input_sha256 = loaded.sha256
            rec.input_format = loaded.format
            rec.orientation = loaded.orientation
            rec.height, rec.width = int(loaded.pixels.shape[0]), int(loaded.pixels.shape[1])
            rec.notes.extend(loaded.notes)
        if written is not None:
            rec.output_path = str(written.path)
            rec.output_sha256 = written.sha256
            rec.output_format = written.format
            rec.notes.extend(written.notes)
        rec.metadata = metadata_report(
            getattr(loaded, "metadata", None), getattr(written, "metadata", None),
            kept=getattr(written, "kept", None), keep_metadata=keep_metadata,
        )
        return rec

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        faces = []
        for f in self.faces:
            if isinstance(f, FaceEntry):
                faces.append(f.to_dict())
            elif isinstance(f, Face):
                faces.append(FaceEntry(f).to_dict())
            else:
                faces.append(json_safe(f))
        output = None
        if self.output_path is not None:
            output = {"path": self.output_path, "sha256": self.output_sha256, "format": self.output_format}
        return {
            "schema": IMAGE_SCHEMA,
            "tool": TOOL,
            "version": _version(),
            "timestamp": self.timestamp,
            "input": {
                "path": self.input_path,
                "sha256": self.input_sha256,
                "format": self.input_format,
                "orientation": self.orientation,
            },
            "output": output,
            "width": self.width,
            "height": self.height,
            "detector": json_safe(self.detector),
            "method": {"name": self.method, "params": json_safe(self.method_params)},
            "n_faces": len(faces),
            "no_face_found": len(faces) == 0,
            "faces": faces,
            "metadata": json_safe(self.metadata),
            "timings_s": json_safe(self.timings_s),
            "notes": list(self.notes),
            "errors": list(self.errors),
        }


@dataclass
class BatchSummary:
    """Totals of a batch run; :meth:`to_dict` gives the documented JSON."""

    processed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    faces: int = 0
    no_face_found: list[str] = field(default_factory=list)
    started: str = field(default_factory=utc_now)
    finished: str | None = None

    def add(self, record: ImageRecord) -> None:
        """Count a record: failed if it has errors, else processed."""
        if record.errors:
            self.add_failure(record.input_path, "; ".join(record.errors))
            return
        self.processed.append(record.input_path)
        self.faces += record.n_faces
        if record.n_faces == 0:
            self.no_face_found.append(record.input_path)

    def add_failure(self, path: str | Path, error: str | BaseException) -> None:
        msg = error if isinstance(error, str) else (str(error) or type(error).__name__)
        self.failed.append({"path": str(path), "error": " ".join(msg.split())})

    def finish(self) -> "BatchSummary":
        self.finished = utc_now()
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": BATCH_SCHEMA,
            "tool": TOOL,
            "version": _version(),
            "started": self.started,
            "finished": self.finished,
            "n_processed": len(self.processed),
            "n_failed": len(self.failed),
            "faces": self.faces,
            "n_no_face": len(self.no_face_found),
            "processed": list(self.processed),
            "failed": [dict(f) for f in self.failed],
            "no_face_found": list(self.no_face_found),
        }


def record_path(output: str | Path) -> Path:
    """Where the record of an output goes by default: ``<output>.json``."""
    p = Path(output)
    return p.with_name(p.name + ".json")


def dumps_record(record: ImageRecord | BatchSummary | dict) -> str:
    """The pretty JSON text of a record (2-space indent, final newline)."""
    data = record.to_dict() if hasattr(record, "to_dict") else json_safe(record)
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_record(path: str | Path, record: ImageRecord | BatchSummary | dict,
                 *, protect: list[str | Path] = ()) -> Path:
    """Write a record as pretty JSON, atomically. Returns the path."""
    return atomic_write_bytes(path, dumps_record(record).encode("utf-8"), protect=protect)


def read_record(path: str | Path) -> dict[str, Any]:
    """Load a record written by :func:`write_record` (checks its schema)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema") not in (IMAGE_SCHEMA, BATCH_SCHEMA):
        raise ValueError(f"{path}: not a facedeid audit record")
    return data
