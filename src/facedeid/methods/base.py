"""The method interface: ``(image, face, params) -> image``.

A method receives a **crop** of the image around the face's painted region
(``H x W`` or ``H x W x C``, any supported dtype) and the :class:`~facedeid.types.Face`
in that crop's coordinates, and returns a new array of the same shape and dtype.
It may change any pixel of the crop; :mod:`facedeid.composite` then pastes only
the pixels inside the region mask, so pixels outside the region stay
bit-identical whatever the method does.

``params`` holds the method's own parameters (defaults filled in) plus
``rng``, a ``numpy.random.Generator`` for stochastic methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..types import Face

MethodFn = Callable[[np.ndarray, Face, dict[str, Any]], np.ndarray]
PrepareFn = Callable[[np.ndarray, list[Face], dict[str, Any], list[np.random.Generator]],
                     list[dict[str, Any]]]


@dataclass(frozen=True)
class BatchHooks:
    """The two extra steps of a *dataset* method (k-Same): it needs every face of a
    set before it can paint any (see :mod:`facedeid.batch`).

    Attributes:
        encode: ``(image_rgb8, face, params) -> sample``: one face (image coordinates,
            with 68-point landmarks) encoded for grouping; raise ``CannotPaint`` or
            ``ValueError`` for a face that cannot be used (it gets the fallback).
        assign: ``(samples, params, identities, gallery, seed) -> [extra params per sample]``:
            groups every sample of the set (``identities``: one label per sample or
            None; ``gallery``: ``(samples, identities)`` of extra faces that may
            complete groups, or None) and returns what each face is painted with;
            merged into the params ``fn`` receives, like :attr:`Method.prepare`'s.
    """

    encode: Callable[[np.ndarray, Face, dict[str, Any]], Any]
    assign: Callable[..., list[dict[str, Any]]]


class CannotPaint(Exception):
    """Raised by a method for a face it cannot handle (too small, profile, ...).

    The :class:`~facedeid.pipeline.Anonymizer` then paints that face with its
    fallback method and records ``str(exc)`` as the reason: a face is never
    left untouched.
    """


@dataclass(frozen=True)
class Method:
    """A registered de-identification method.

    Attributes:
        name: registry name (``blur``, ``pixelate`` ...).
        fn: the ``(crop, face, params) -> crop`` function.
        defaults: every parameter with its default value.
        strength: name of the parameter that ``--strength`` sets (None if none).
        strength_doc: what larger values of the strength mean.
        needs_landmarks68: the method needs 68-point landmarks on the face.
        paints_whole_region: False for methods that paint only part of the region
            (``mask``), so coverage metrics know.
        prepare: optional ``(image_rgb8, faces, params, rngs) -> [extra params per face]``,
            called once per image before any face is painted, with the whole image and
            every face in image coordinates (e.g. ``replace`` picks its donors there, so
            that no donor resembles anyone in the image and people get different donors);
            each face's extra params are merged into the params ``fn`` receives.
        batch: :class:`BatchHooks` of a dataset method (k-Same), else None.
    """

    name: str
    fn: MethodFn
    defaults: dict[str, Any] = field(default_factory=dict)
    strength: str | None = None
    strength_doc: str = ""
    needs_landmarks68: bool = False
    paints_whole_region: bool = True
    prepare: PrepareFn | None = None
    batch: BatchHooks | None = None

    def params(self, strength: Any = None, **overrides: Any) -> dict[str, Any]:
        """Defaults, then ``strength`` (into the strength parameter), then overrides.

        Unknown parameter names raise ``ValueError``.
        """
        out = dict(self.defaults)
        if strength is not None:
            if self.strength is None:
                raise ValueError(f"method '{self.name}' has no strength parameter")
            out[self.strength] = strength
        for key, value in overrides.items():
            if key not in self.defaults:
                raise ValueError(
                    f"method '{self.name}' has no parameter '{key}' "
                    f"(parameters: {', '.join(sorted(self.defaults)) or 'none'})"
                )
            out[key] = value
        return out

    def __call__(self, crop: np.ndarray, face: Face, params: dict[str, Any]) -> np.ndarray:
        return self.fn(crop, face, params)
