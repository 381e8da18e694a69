"""The flat functional API (numpy in, numpy out), re-exported by ``facedeid``.

Each call builds its models afresh; to process many images, create one
:class:`~facedeid.pipeline.Anonymizer` and reuse it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .types import Face


def detect(image: np.ndarray, detector: str | None = None, threshold: float | None = None,
           scale: float | None = None) -> list[Face]:
    """Find faces in an image array.

    >>> import facedeid
    >>> from skimage.data import astronaut
    >>> faces = facedeid.detect(astronaut())
    >>> len(faces)
    1
    """
    from .pipeline import Anonymizer

    return Anonymizer(detector=detector, threshold=threshold, scale=scale).detect(image)


def anonymize(image: np.ndarray, method: str = "blur", strength: Any = None,
              faces: list[Face] | None = None, **kwargs: Any) -> np.ndarray:
    """De-identify every face in an image array; returns the new array.

    ``kwargs`` are :class:`~facedeid.pipeline.Anonymizer` options (``detector``,
    ``threshold``, ``shape``, ``mask_scale``, ``feather``, ``seed``...) and the
    method's own parameters.

    >>> import facedeid
    >>> from skimage.data import astronaut
    >>> img = astronaut()
    >>> out = facedeid.anonymize(img, method="pixelate", strength=8)
    >>> out.shape == img.shape and bool((out != img).any())
    True
    """
    from .pipeline import Anonymizer

    return Anonymizer(method=method, strength=strength, **kwargs).anonymize(image, faces=faces).image
