"""Dataset methods (k-Same): every face of the set first, then groups, then paint.

A method with :attr:`~facedeid.methods.base.Method.batch` hooks cannot paint a
face before it has seen all the others: k-Same averages each face with the
faces nearest to it *in the whole set*.  This module runs that in three steps
around an ordinary :class:`~facedeid.pipeline.Anonymizer`:

1. :func:`encode_image` - per image: detect, 68-point landmarks, encode each face
   (``hooks.encode``); a face without landmarks (or that cannot be encoded) is
   kept with no sample and gets the Anonymizer's fallback when painted.
2. :func:`assign_extras` - all samples of the set (plus the gallery's, as
   fillers) are grouped (``hooks.assign``); each face gets its extra params
   (its group's average).
3. the Anonymizer paints each image with ``anonymize(image, faces, extras=...)``.

:func:`anonymize_dataset` does the three steps over files (reading each image
twice, so memory holds only the encodings); ``Anonymizer.anonymize`` on one
image does them on that image alone (:func:`image_extras`), where too few
people for one group means the gallery or the shipped pool of k-averaged faces.

Gallery (the method's ``gallery`` parameter, a folder or file): every face found
in it is encoded once per Anonymizer and may complete groups; **every gallery
face counts as a different person** (put one photo per person in a gallery).
A gallery with fewer than ``k`` faces is an error naming ``k`` and the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .errors import FaceDeidError, InputError
from .imageops import to_rgb8
from .methods.base import CannotPaint
from .types import Face

log = logging.getLogger(__name__)


@dataclass
class EncodedImage:
    """The faces of one image, each with its sample (None: not usable by the method).

    Attributes:
        faces: the faces (image coordinates, 68-point landmarks where found).
        samples: per face, the method's encoding or None.
        reasons: per face, why it has no sample (None when it has one).
    """

    faces: list[Face]
    samples: list[Any]
    reasons: list[str | None] = field(default_factory=list)


def _hooks(anon):
    hooks = anon.method.batch
    if hooks is None:
        raise ValueError(f"method '{anon.method.name}' is not a dataset method")
    return hooks


def encode_image(anon, image: np.ndarray, faces: list[Face] | None = None) -> EncodedImage:
    """Step 1 for one image: faces (detected when None), landmarks, one sample per face."""
    hooks = _hooks(anon)
    if faces is None:
        faces = anon.detect(image)
    faces = anon.add_landmarks(image, faces) if faces else []
    rgb = to_rgb8(image)
    samples, reasons = [], []
    for face in faces:
        if face.landmarks68 is None:
            samples.append(None)
            reasons.append("no 68-point landmarks")
            continue
        try:
            samples.append(hooks.encode(rgb, face, anon.params))
            reasons.append(None)
        except CannotPaint as exc:  # e.g. degenerate landmarks: the fallback paints it
            samples.append(None)
            reasons.append(str(exc))
    return EncodedImage(faces, samples, reasons)


def gallery_samples(anon) -> tuple[list[Any], list[str]] | None:
    """The gallery's samples and identities (one per image), cached on ``anon``; None without one.

    Raises:
        InputError: unreadable gallery, or fewer than ``k`` faces in it.
    """
    path = anon.params.get("gallery")
    if path in (None, "", "none"):
        return None
    key = ("gallery", str(Path(str(path)).expanduser().resolve()))
    cache = anon.__dict__.setdefault("_batch_cache", {})
    if key in cache:
        return cache[key]
    from .io.images import read_image
    from .io.paths import IMAGE_EXTS, expand_inputs

    files = [f.path for f in expand_inputs([str(Path(str(path)).expanduser())], exts=IMAGE_EXTS)]
    samples, ids = [], []
    for f in files:
        enc = encode_image(anon, read_image(f).pixels)
        for j, s in enumerate(enc.samples):
            if s is not None:
                samples.append(s)
                ids.append(f"{f}#{j}")  # every gallery face a different person
    k = int(anon.params.get("k", 1))
    if len(samples) < k:
        raise InputError(
            f"gallery {path}: {len(samples)} usable face(s) in {len(files)} image(s); "
            f"k-Same with k={k} needs at least {k} (each face a different person)")
    cache[key] = (samples, ids)
    return cache[key]


def assign_extras(anon, encoded: Sequence[EncodedImage],
                  identities: Sequence[Sequence[Any] | None] | None = None
                  ) -> list[list[dict[str, Any]]]:
    """Step 2: group every sample of the set; per image, per face, the extra params.

    Args:
        encoded: the set's images (:func:`encode_image`).
        identities: per image, one identity label per face (None: every face of the
            set a distinct person).
    """
    hooks = _hooks(anon)
    flat, where, ids = [], [], []
    for i, enc in enumerate(encoded):
        for j, s in enumerate(enc.samples):
            if s is not None:
                flat.append(s)
                where.append((i, j))
                ids.append(identities[i][j] if identities is not None and identities[i] is not None
                           else f"face:{i}:{j}")
    # a face without a sample is painted with the fallback; the reason goes to its record
    out: list[list[dict[str, Any]]] = [[{"unusable": r} if r else {} for r in enc.reasons]
                                       for enc in encoded]
    if not flat:
        return out
    extras = hooks.assign(flat, anon.params, identities=ids, gallery=gallery_samples(anon),
                          seed=0 if anon.seed is None else int(anon.seed))
    for (i, j), extra in zip(where, extras):
        out[i][j] = extra
    return out


def image_extras(anon, image: np.ndarray, faces: list[Face]) -> list[dict[str, Any]]:
    """Steps 1 and 2 on one image alone (the set is this image's faces)."""
    enc = encode_image(anon, image, faces)
    return assign_extras(anon, [enc])[0]


@dataclass
class DatasetItem:
    """One source's outcome from :func:`anonymize_dataset`.

    Attributes:
        source: the input path.
        loaded: the :class:`~facedeid.io.images.LoadedImage` (None on error).
        result: the :class:`~facedeid.pipeline.AnonymizeResult` (None on error).
        error: the error (None on success).
        timings_s: seconds spent per step on this image.
    """

    source: Path
    loaded: Any = None
    result: Any = None
    error: FaceDeidError | None = None
    timings_s: dict[str, float] = field(default_factory=dict)


class PreparedDataset:
    """Steps 1 and 2 done over a list of files; :meth:`items` does step 3.

    Built by :func:`prepare_dataset`; holds only the faces and their encodings.
    """

    def __init__(self, anon, sources: Sequence[Path], encoded: dict[int, EncodedImage],
                 errors: dict[int, FaceDeidError], extras: dict[int, list[dict[str, Any]]],
                 timings: dict[int, dict[str, float]], wrap: Callable[[Sequence], Sequence]):
        self.anon = anon
        self.sources = list(sources)
        self.encoded = encoded
        self.errors = errors
        self.extras = extras
        self.timings = timings
        self._wrap = wrap

    @property
    def n_faces(self) -> int:
        return sum(len(e.faces) for e in self.encoded.values())

    def items(self) -> Iterator[DatasetItem]:
        """Read each image again and paint it with its faces' extras; one item per source, in order."""
        import time

        from .io.images import read_image

        anon = self.anon
        for i, src in enumerate(self._wrap(self.sources)):
            item = DatasetItem(Path(src))
            if i in self.errors:
                item.error = self.errors[i]
                yield item
                continue
            enc = self.encoded[i]
            try:
                t0 = time.perf_counter()
                item.loaded = read_image(src)
                t1 = time.perf_counter()
                item.result = anon.anonymize(item.loaded.pixels, faces=enc.faces,
                                             extras=self.extras[i])
                item.result.record["detector"] = anon.detector_config()
                item.timings_s = {**self.timings[i], "read": t1 - t0,
                                  "anonymize": time.perf_counter() - t1}
            except FaceDeidError as exc:
                item.error = exc
            yield item


def prepare_dataset(anon, sources: Sequence[str | Path], *,
                    identities: Callable[[Path, int], Any] | None = None,
                    progress: Callable[[Sequence], Sequence] | None = None) -> PreparedDataset:
    """Steps 1 and 2 over image files: read and encode every face, then group them all.

    A source that cannot be read is remembered (its item will carry the error);
    the others go on.

    Args:
        anon: an Anonymizer whose method has batch hooks.
        sources: image files.
        identities: ``(path, face_index) -> label``; None: every face a distinct person.
        progress: wraps an iterable (e.g. tqdm) for the two passes.

    Raises:
        NotEnoughFacesError / InputError: the set, gallery and pool cannot make a group
        (e.g. a gallery with fewer than k faces).
    """
    import time

    from .io.images import read_image

    _hooks(anon)
    wrap = progress or (lambda x: x)
    sources = [Path(s) for s in sources]
    encoded: dict[int, EncodedImage] = {}
    errors: dict[int, FaceDeidError] = {}
    timings: dict[int, dict[str, float]] = {}
    for i, src in enumerate(wrap(sources)):
        t0 = time.perf_counter()
        try:
            encoded[i] = encode_image(anon, read_image(src).pixels)
        except FaceDeidError as exc:
            errors[i] = exc
        timings[i] = {"encode": time.perf_counter() - t0}
    order = sorted(encoded)
    ids = None
    if identities is not None:
        ids = [[identities(sources[i], j) for j in range(len(encoded[i].faces))] for i in order]
    t0 = time.perf_counter()
    extras = assign_extras(anon, [encoded[i] for i in order], ids)
    per_image = (time.perf_counter() - t0) / max(len(order), 1)
    for i in order:
        timings[i]["group"] = per_image
    return PreparedDataset(anon, sources, encoded, errors, dict(zip(order, extras)), timings, wrap)


def anonymize_dataset(anon, sources: Sequence[str | Path], *,
                      identities: Callable[[Path, int], Any] | None = None,
                      progress: Callable[[Sequence], Sequence] | None = None
                      ) -> Iterator[DatasetItem]:
    """De-identify image files with a dataset method, grouping across all of them.

    Steps 1 and 2 run now (:func:`prepare_dataset`, which raises if no group can be
    made); the returned iterator paints and yields one :class:`DatasetItem` per
    source, in order (an unreadable source yields an item with ``error``).
    """
    return prepare_dataset(anon, sources, identities=identities, progress=progress).items()


__all__ = ["EncodedImage", "DatasetItem", "PreparedDataset", "encode_image", "gallery_samples",
           "assign_extras", "image_extras", "prepare_dataset", "anonymize_dataset"]
