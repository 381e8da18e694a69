"""facedeid: face de-identification for images and video.

The flat API (numpy RGB arrays in and out)::

    import facedeid
    faces = facedeid.detect(image)
    out = facedeid.anonymize(image, method="blur", strength=31)

Nothing heavy is imported here; models load on first use.
"""

from __future__ import annotations

from .types import Face

__version__ = "0.1.0"

__all__ = ["Face", "__version__"]
