"""The attacker (face recognizer) interface used by ``facedeid evaluate``.

An attacker turns a face into an identity vector. Two ways of finding the face:

* :meth:`Attacker.embed_naive` – the attacker runs its **own** detection and
  alignment on the image it is given, as a real attacker would; ``None`` means
  failure to acquire (FTA).
* :meth:`Attacker.embed_at` – **template-aligned**: the attacker is told where
  the face's 5 landmarks were in the original image, and embeds the given
  (possibly de-identified) image at those landmarks. "No face found" cannot
  pass for "identity removed" here.

Models load lazily on first use; an attacker instance may be shared between
threads (per-thread model objects where the backend is not thread-safe).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np


class PerThread:
    """A lazily built object, one per thread and per process (model objects of
    OpenCV/dlib are not thread-safe, and thread pools do not survive ``fork``)."""

    def __init__(self, factory: Callable[[], Any]):
        self._factory = factory
        self._local = threading.local()

    def get(self) -> Any:
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            self._local.obj = self._factory()
            self._local.pid = pid
        return self._local.obj


class Attacker(ABC):
    name: str = "base"
    metric: str = "cosine"        # "cosine" (distance = 1 - cos) or "euclidean"
    threshold: float = 0.5        # distance at or below which two faces "match"
    dim: int = 0                  # embedding length
    version: str = "1"            # bump when alignment/preprocessing changes (cache key)

    @abstractmethod
    def embed_at(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """Embedding of the face whose 5 landmarks (facedeid order) are given."""

    def embed_at_many(self, rgbs: Sequence[np.ndarray],
                      landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """``(n, dim)`` embeddings, one per (image, landmarks); batched where the
        backend allows it."""
        if len(rgbs) != len(landmarks):
            raise ValueError("need one landmarks array per image")
        if not len(rgbs):
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.embed_at(im, lm) for im, lm in zip(rgbs, landmarks)])

    def embed_naive(self, rgb: np.ndarray) -> np.ndarray | None:
        """Detect (largest / most central face), align and embed; None on FTA."""
        from .detection import attacker_landmarks5

        pts = attacker_landmarks5(rgb)
        return None if pts is None else self.embed_at(rgb, pts)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distances between rows of ``a`` and rows of ``b`` (broadcasting 1-D too)."""
        a = np.atleast_2d(a).astype(np.float64)
        b = np.atleast_2d(b).astype(np.float64)
        if self.metric == "cosine":
            an = a / np.linalg.norm(a, axis=1, keepdims=True)
            bn = b / np.linalg.norm(b, axis=1, keepdims=True)
            return np.clip(1.0 - an @ bn.T, 0.0, 2.0)
        return np.sqrt(np.maximum(
            (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * a @ b.T, 0.0))

    def pair_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row-wise distances ``d(a[i], b[i])`` (same shapes)."""
        a = np.atleast_2d(a).astype(np.float64)
        b = np.atleast_2d(b).astype(np.float64)
        if self.metric == "cosine":
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            return np.clip(1.0 - cos, 0.0, 2.0)
        return np.linalg.norm(a - b, axis=1)

    def matches(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row-wise decision ``pair_distance(a, b) <= threshold``."""
        return self.pair_distance(a, b) <= self.threshold

    @property
    def cache_tag(self) -> str:
        """Identifies this attacker's embeddings in :mod:`facedeid.evaluate.cache`."""
        return f"{self.name}-v{self.version}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.metric}<= {self.threshold}>"
