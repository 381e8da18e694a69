"""The detector interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..types import Face


class Detector(ABC):
    """Finds faces in an RGB ``uint8`` image.

    Subclasses implement :meth:`_detect` on an RGB uint8 array and return faces in
    that array's pixel coordinates; model loading happens lazily on first use
    (never at import or construction time when avoidable).

    Args:
        threshold: minimum score kept (backend-specific default).
    """

    name: str = "base"
    default_threshold: float = 0.5

    def __init__(self, threshold: float | None = None):
        self.threshold = self.default_threshold if threshold is None else float(threshold)

    @abstractmethod
    def _detect(self, rgb: np.ndarray) -> list[Face]:
        """Detect on an RGB uint8 ``H x W x 3`` array."""

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces with score >= threshold, sorted by score (highest first)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("Detector.detect expects an RGB uint8 H x W x 3 array")
        faces = [f for f in self._detect(rgb) if f.score >= self.threshold]
        return sorted(faces, key=lambda f: -f.score)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threshold={self.threshold})"
