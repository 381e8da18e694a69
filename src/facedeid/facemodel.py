"""The shipped face model: mean 68-point shape, eigenfaces (and other aggregates).

``src/facedeid/data/face_model.npz`` is written by ``tools/build_face_model.py``
from LFW (see docs/MODELS.md, "Face model", for provenance and terms, and
docs/AVERAGING.md for what each array is).  It holds **only aggregate
statistics over many distinct people** (means and principal components),
never an individual's face.

Arrays (``npz`` keys):

``mean_shape``
    ``(68, 2)`` float64, the Procrustes mean shape placed in the *unit frame*
    (``canonical_landmarks(size) = mean_shape * size``; placement and margins:
    :func:`facedeid.landmarks.align.place_in_frame`).
``texture_mean``, ``texture_components``, ``texture_variances``
    the eigenface model of shape-free RGB textures in [0, 1]: mean ``(S, S, 3)``,
    ``K`` orthonormal components ``(K, S, S, 3)`` (float16 on disk), their
    variances ``(K,)`` (decreasing).
``meta``
    JSON: how the model was built (source, selection, counts, explained
    variance, the largest share of one face in any component).

Loaded lazily and once per process (:func:`load_face_model` caches by path).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelNotFoundError

MODEL_FILE = Path(__file__).resolve().parent / "data" / "face_model.npz"
"""Where the shipped model lives (package data)."""


@dataclass(frozen=True, eq=False)
class FaceModel:
    """The arrays of a face model file (read-only numpy arrays)."""

    path: Path
    mean_shape: np.ndarray
    meta: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def has(self, *names: str) -> bool:
        return all(n in self.arrays for n in names)

    def require(self, *names: str) -> list[np.ndarray]:
        """The named arrays; a clear error if the model file lacks one."""
        missing = [n for n in names if n not in self.arrays]
        if missing:
            raise ModelNotFoundError(
                f"{self.path}: the face model has no {', '.join(missing)}; rebuild it with "
                "`python tools/build_face_model.py` (see docs/AVERAGING.md)")
        return [self.arrays[n] for n in names]

    # ---- eigenfaces --------------------------------------------------------------
    @property
    def texture_size(self) -> int:
        (mean,) = self.require("texture_mean")
        return int(mean.shape[0])

    @functools.cached_property
    def eigen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean (D,), components (K, D), variances (K,))`` as float64, D = S*S*3."""
        mean, comps, var = self.require("texture_mean", "texture_components", "texture_variances")
        m = np.asarray(mean, np.float64).reshape(-1)
        c = np.asarray(comps, np.float64).reshape(len(comps), -1)
        # float16 storage loses orthonormality slightly: re-orthonormalise (QR keeps the span
        # and, with the sign fix, each component's direction)
        q, r = np.linalg.qr(c.T)
        q *= np.sign(np.diag(r))[None, :]
        for arr in (m, q, var):
            arr.setflags(write=False)
        return m, np.ascontiguousarray(q.T), np.asarray(var, np.float64)


def _read(path: Path) -> FaceModel:
    if not path.is_file():
        raise ModelNotFoundError(
            f"face model not found at {path}; build it with `python tools/build_face_model.py`")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    for arr in arrays.values():
        arr.setflags(write=False)
    if "mean_shape" not in arrays or arrays["mean_shape"].shape != (68, 2):
        raise ModelNotFoundError(f"{path}: not a facedeid face model (no (68, 2) mean_shape)")
    return FaceModel(path=path, mean_shape=np.asarray(arrays["mean_shape"], np.float64),
                     meta=meta, arrays=arrays)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> FaceModel:
    return _read(Path(path))


def load_face_model(path: str | Path | None = None) -> FaceModel:
    """The face model at ``path`` (default: the shipped one), read once and cached.

    Raises:
        ModelNotFoundError: the file is missing or is not a face model.
    """
    p = Path(path) if path is not None else MODEL_FILE
    try:
        mtime = p.stat().st_mtime
    except OSError:
        return _read(p)  # raises the clear error
    return _cached(str(p.resolve()), mtime)


__all__ = ["FaceModel", "MODEL_FILE", "load_face_model"]
