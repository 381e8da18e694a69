"""The attacker (face recognizer) interface used by ``facedeid evaluate``.

An attacker turns a face into an identity vector. Two ways of finding the face:

* :meth:`Attacker.embed_naive` – the attacker runs its **own** detection and
  alignment on the image it is given, as a real attacker would; ``None`` means
  failure to acquire (FTA).
* :meth:`Attacker.embed_at` – **template-aligned**: the attacker is told where
  the face's 5 landmarks were in the original image, and embeds the given
  (possibly de-identified) image at those landmarks. "No face found" cannot
  pass for "identity removed" here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Attacker(ABC):
    name: str = "base"
    metric: str = "cosine"        # "cosine" (distance = 1 - cos) or "euclidean"
    threshold: float = 0.5        # distance at or below which two faces "match"

    @abstractmethod
    def embed_at(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """Embedding of the face whose 5 landmarks (facedeid order) are given."""

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
            return 1.0 - an @ bn.T
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
