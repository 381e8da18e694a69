"""68-point facial landmarks: prediction (dlib), named regions, visualisation.

>>> from facedeid.landmarks import Dlib68Predictor, region_polygon
>>> faces = Dlib68Predictor().add_landmarks(rgb, faces)            # doctest: +SKIP
>>> eyes = region_polygon(faces[0].landmarks68, "eyes_band")      # doctest: +SKIP

Nothing heavy is imported here: dlib loads when a prediction is first made.
"""

from __future__ import annotations

from .regions import (
    COMPOSITES,
    REGIONS,
    region_names,
    region_points,
    region_polygon,
    region_polygons,
)


def __getattr__(name: str):  # lazy: dlib68 / visualize import dlib / cv2 drawing only when used
    if name in {"Dlib68Predictor", "box_from_landmarks5", "box_from_landmarks68"}:
        from . import dlib68

        return getattr(dlib68, name)
    if name in {"draw_landmarks", "SEED_COLORS"}:
        from . import visualize

        return getattr(visualize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REGIONS", "COMPOSITES", "region_names", "region_points", "region_polygon", "region_polygons",
    "Dlib68Predictor", "box_from_landmarks5", "box_from_landmarks68", "draw_landmarks", "SEED_COLORS",
]
