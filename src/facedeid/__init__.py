"""facedeid: face de-identification for images and video.

The flat API (numpy RGB arrays in and out)::

    import facedeid
    faces = facedeid.detect(image)
    out = facedeid.anonymize(image, method="blur", strength=31)

For many images, build one ``facedeid.Anonymizer`` and reuse it. Nothing heavy
is imported here; models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api import anonymize, detect
from .types import Face

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .pipeline import Anonymizer


def __getattr__(name: str):
    if name == "Anonymizer":
        from .pipeline import Anonymizer

        return Anonymizer
    raise AttributeError(name)


__all__ = ["Anonymizer", "Face", "anonymize", "detect", "__version__"]
