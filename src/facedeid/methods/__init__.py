"""De-identification methods, one module per family, registered by name.

Adding a method: write ``methods/<family>.py`` exposing a :class:`Method`
object and add one line to :data:`METHODS`.
"""

from __future__ import annotations

from ..registry import Registry
from .base import Method, MethodFn

METHODS = Registry("method", {
    "blackout": "facedeid.methods.classic:BLACKOUT",
    "mask": "facedeid.methods.classic:MASK",
    "blur": "facedeid.methods.classic:BLUR",
    "pixelate": "facedeid.methods.classic:PIXELATE",
    "noise": "facedeid.methods.noise:NOISE",
    "modified-averaging": "facedeid.methods.seed_formulas:MODIFIED_AVERAGING",
    "pythagorean": "facedeid.methods.seed_formulas:PYTHAGOREAN",
    "pca": "facedeid.methods.reconstruction:PCA",
    "svd": "facedeid.methods.reconstruction:SVD",
    "hypersphere": "facedeid.methods.reconstruction:HYPERSPHERE",
    "ksame-pixel": "facedeid.ksame.methods:KSAME_PIXEL",
    "ksame-eigen": "facedeid.ksame.methods:KSAME_EIGEN",
    "ksame-m": "facedeid.ksame.methods:KSAME_M",
    "replace": "facedeid.methods.replace:REPLACE",
    "fatm": "facedeid.methods.fatm:FATM",
})


def get_method(name: str) -> Method:
    """The :class:`Method` registered under ``name``."""
    return METHODS.get(name)


__all__ = ["Method", "MethodFn", "METHODS", "get_method"]
