"""Dataset methods (k-Same) in ``facedeid evaluate``: group across the evaluated set.

A k-Same method cannot paint one image at a time: every output is the average
of a group formed over the whole set.  So, before the images of such a method
configuration go to the workers, the parent process encodes every face of the
de-identified set (the faces and 68-point landmarks cached with the originals),
groups them all (:func:`facedeid.batch.assign_extras`) and sends each image
its faces' group averages; the worker paints with them.

Identities are known in an evaluation: the *subject* face of an image (the
attackers' subject rule: largest, most central) carries the image's identity
label, so k counts distinct people, not images; other faces in the picture
(bystanders) are each a person of their own.

The grouping depends on the whole set, so the cache key of a batch method
configuration includes the set (:func:`batch_key`): another ``--limit-pairs``
or seed recomputes it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .cache import config_digest
from .spec import MethodSpec


def is_batch(spec: MethodSpec) -> bool:
    """True for a dataset method (one with batch hooks, e.g. ``ksame-m``)."""
    from ..methods import get_method

    return get_method(spec.method).batch is not None


def batch_key(spec: MethodSpec, dgs: Sequence[str], labels: Sequence[str],
              rows: Sequence[int]) -> dict[str, str]:
    """Extra cache-key entries for a batch method (the set it groups); ``{}`` otherwise."""
    if not is_batch(spec):
        return {}
    return {"batch_set": config_digest([[dgs[i], str(labels[i])] for i in rows])}


def batch_extras(spec: MethodSpec, region: dict[str, Any], detector: str | None,
                 threshold: float | None, seed: int, paths: Sequence[str],
                 infos: Sequence[dict], labels: Sequence[str], rows: Sequence[int]
                 ) -> dict[int, dict[str, Any]]:
    """``{row: {"extras": [per face], "lm68": [per face]}}`` for the images ``rows``.

    Args:
        spec: the method configuration (its params and region).
        region: the run's default region options (``shape``, ``mask_scale``, ``feather``).
        paths, infos, labels: per image of the universe: file, cached original info
            (``faces``, ``lm68``), identity.
        rows: the images to de-identify (the set grouped together).
    """
    from ..batch import assign_extras, encode_image
    from ..pipeline import Anonymizer
    from ..types import Face
    from . import datasets as D
    from .worker import subject_face

    params = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.params.items()}
    anon = Anonymizer(method=spec.method, detector=detector, threshold=threshold, seed=seed,
                      **{**region, **spec.region}, **params)
    encoded, ids, lms = [], [], []
    for i in rows:
        rgb = D.load_rgb(paths[i])
        lm68 = infos[i]["lm68"] or [None] * len(infos[i]["faces"])
        faces = [Face.from_dict(f) for f in infos[i]["faces"]]
        faces = [f if p is None else f.replace(landmarks68=np.asarray(p)) for f, p in zip(faces, lm68)]
        enc = encode_image(anon, rgb, faces)
        subject = subject_face(enc.faces, rgb.shape[1], rgb.shape[0])
        ids.append([str(labels[i]) if f is subject else f"{labels[i]}#{i}:{j}"
                    for j, f in enumerate(enc.faces)])
        encoded.append(enc)
        lms.append([None if f.landmarks68 is None else f.landmarks68.tolist() for f in enc.faces])
    extras = assign_extras(anon, encoded, ids)
    return {int(i): {"extras": e, "lm68": lm} for i, e, lm in zip(rows, extras, lms)}


__all__ = ["is_batch", "batch_key", "batch_extras"]
