"""File input/output: images, metadata policy, paths, atomic writes, audit records.

* :mod:`~facedeid.io.images` — :func:`read_image` / :func:`write_image`
  (orientation applied, 16-bit and alpha kept, clear errors).
* :mod:`~facedeid.io.metadata` — strip-by-default policy, the EXIF allow-list,
  :func:`metadata_summary` (parses file bytes).
* :mod:`~facedeid.io.paths` — CLI inputs to ``(source, destination)`` plans.
* :mod:`~facedeid.io.atomic` — :func:`atomic_output` (temp file + fsync + rename).
* :mod:`~facedeid.io.audit` — per-image JSON records and batch summaries.
"""

from __future__ import annotations

from .atomic import atomic_output, atomic_write_bytes, check_not_input, same_file
from .audit import BatchSummary, FaceEntry, ImageRecord, json_safe, read_record, record_path, write_record
from .images import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    WrittenImage,
    apply_orientation,
    output_format,
    read_image,
    write_image,
)
from .metadata import SAFE_EXIF_TAGS, SAFE_IFD0_TAGS, SafeExif, metadata_summary
from .paths import IMAGE_EXTS, MEDIA_EXTS, VIDEO_EXTS, InputFile, expand_inputs, media_kind, plan_outputs

__all__ = [
    "DEFAULT_MAX_PIXELS", "IMAGE_EXTS", "MEDIA_EXTS", "SAFE_EXIF_TAGS", "SAFE_IFD0_TAGS", "VIDEO_EXTS",
    "BatchSummary", "FaceEntry", "ImageRecord", "InputFile", "LoadedImage", "SafeExif", "WrittenImage",
    "apply_orientation", "atomic_output", "atomic_write_bytes", "check_not_input", "expand_inputs",
    "json_safe", "media_kind", "metadata_summary", "output_format", "plan_outputs", "read_image",
    "read_record", "record_path", "same_file", "write_image", "write_record",
]
