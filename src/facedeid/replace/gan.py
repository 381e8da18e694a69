"""Synthetic donors from the ``gan-face-generate`` DCGAN (``donors=gan``; needs torch).

``gan-face-generate`` 1.1.1 (MIT code, by Chien Liu) ships a 64x64 DCGAN
generator (``weights.tar``, 14 MB) trained on **DigiFace-1M** (Microsoft):
synthetic faces rendered from a parametric model built from the head scans of
a small number of consenting people.  DigiFace-1M is released for
**non-commercial research only**, and the generator is derived from it: treat
GAN donors as research-only (docs/REPLACE.md, docs/MODELS.md).  The faces are
nobody's (synthetic), but low-resolution and often with rendering artefacts.

The package is installed without its dependencies (they pull torchvision and
wandb; ``tools/install_models.py``); only its ``models.Generator`` class and the
weights file are used, loaded with ``torch.load(weights_only=True)``.

Each donor: a latent vector drawn from ``seed``, the generator's 64x64 face
upscaled 4x (bicubic) onto a replicated border, then detected, landmarked and
aligned like a donor photo (:func:`facedeid.replace.donors.donor_from_photo`);
faces the detector or the landmarks miss are skipped.
"""

from __future__ import annotations

import numpy as np

from ..errors import FaceDeidError, ModelNotFoundError
from .donors import DonorPool, donor_from_photo

NZ, NGF, NC = 100, 64, 3
"""The generator's latent size, feature maps and channels (the package's own settings)."""


def load_generator():
    """The DCGAN generator with the package's weights (CPU, eval mode)."""
    try:
        import torch
    except ImportError:
        raise FaceDeidError("donors=gan needs the torch extra: pip install 'facedeid[torch]'") from None
    try:
        from importlib.resources import files

        from gan_face_generate.models import Generator
    except ImportError:
        raise ModelNotFoundError("donors=gan needs the model package gan-face-generate==1.1.1 "
                                 "(python tools/install_models.py installs it)") from None
    weights = files("gan_face_generate") / "weights.tar"
    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    gen = Generator(0, NC, NZ, NGF)
    gen.load_state_dict(state["netG_state_dict"])
    gen.eval()
    return gen


def generate_faces(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 64, 64, 3)`` uint8 synthetic faces from latent vectors drawn with ``seed``."""
    import torch

    gen = load_generator()
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, NZ, 1, 1)).astype(np.float32))
    with torch.inference_mode():
        x = gen(z)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def generate_gan_donors(n: int = 24, seed: int = 0) -> DonorPool:
    """A donor pool of up to ``n`` synthetic faces (those the detector and landmarks accept)."""
    import cv2

    from ..detect import get_detector
    from ..landmarks.dlib68 import Dlib68Predictor

    det, pred = get_detector("default"), Dlib68Predictor()
    donors = []
    for i, face in enumerate(generate_faces(n, seed)):
        big = cv2.resize(face, (256, 256), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, 64, 64, 64, 64, cv2.BORDER_REPLICATE)
        try:
            d = donor_from_photo(big, f"gan-{i:02d}", detector=det, predictor=pred)
        except FaceDeidError:
            continue
        donors.append(d.__class__(name=d.name, image=d.image, landmarks=d.landmarks, source="gan"))
    if not donors:
        raise FaceDeidError("the GAN produced no usable donor face")
    return DonorPool(tuple(donors), "gan",
                     f"{len(donors)} synthetic DCGAN faces (gan-face-generate 1.1.1, DigiFace-1M; "
                     f"research only), seed {seed}")


__all__ = ["load_generator", "generate_faces", "generate_gan_donors"]
