"""Differentiable copies of the SFace and FaceNet attackers (torch), for identity protection.

Each :class:`TorchRecognizer` reproduces its attacker of :mod:`facedeid.evaluate.attackers`
exactly: the same network (the shipped ONNX file, or FaceNet's converted graph, run by
:mod:`.onnx_torch`), the same 5-point similarity alignment onto the same template, the
same bilinear sampling with black outside the image, and the same input scaling. The
crop is sampled from the image with ``grid_sample``, so gradients reach the image
pixels themselves. dlib's ResNet has no such copy (its weights are in dlib's own
format): it stays a held-out attacker.

Models load on first use, once per process (:func:`recognizer`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..evaluate.align import ARCFACE_112, FACENET_160, similarity_transform

#: attackers that have a differentiable copy
DIFFERENTIABLE = ("sface", "facenet")


@dataclass
class TorchRecognizer:
    """One attacker as a torch function of the image (see the module docstring).

    Attributes:
        name: the attacker's name (``sface``, ``facenet``).
        threshold: its match threshold, cosine distance (as the attacker's).
        template: 5-point alignment template in crop pixels.
        size: crop side, pixels.
        net: the network, ``N x 3 x size x size`` -> ``N x dim``.
        prep: input scaling of an RGB crop in 0..255 (N x 3 x H x W).
    """

    name: str
    threshold: float
    template: np.ndarray
    size: int
    net: Callable
    prep: Callable

    def matrix(self, landmarks5: np.ndarray) -> np.ndarray:
        """2x3 similarity from image pixels to crop pixels (as the attacker's)."""
        return similarity_transform(landmarks5, self.template)

    def crop(self, image, m: np.ndarray):
        """Bilinear crop of ``image`` (``1 x 3 x H x W`` float tensor, 0..255) through the
        image->crop similarity ``m``; black outside the image, like ``cv2.warpAffine``.
        Anti-aliased like :func:`facedeid.evaluate.align.align_crop` when it shrinks by
        more than 2x."""
        import torch
        import torch.nn.functional as F

        h, w = image.shape[2:]
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        if scale < 0.5:
            image = gaussian_blur(image, 0.3 / scale)
        inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
        # crop pixel (u, v) -> image pixel inv @ (u, v, 1) -> grid_sample's [-1, 1] (align_corners)
        norm = np.array([[2.0 / max(w - 1, 1), 0, -1.0], [0, 2.0 / max(h - 1, 1), -1.0], [0, 0, 1]])
        theta_pix = norm @ np.vstack([inv, [0, 0, 1]])
        us = np.arange(self.size, dtype=np.float64)
        uu, vv = np.meshgrid(us, us)
        pts = np.stack([uu, vv, np.ones_like(uu)], -1) @ theta_pix[:2].T
        grid = torch.from_numpy(pts.astype(np.float32))[None]
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=True)

    def embed(self, image, landmarks5: np.ndarray):
        """Unit embedding (``1 x dim`` tensor) of the face at ``landmarks5``."""
        return self.embed_many(image, [landmarks5])

    def embed_many(self, image, points: list[np.ndarray]):
        """Unit embeddings (``N x dim`` tensor) of the face at each set of 5 landmarks in
        ``points``, run through the network as one batch."""
        import torch

        crops = torch.cat([self.crop(image, self.matrix(p)) for p in points], 0)
        e = self.net(self.prep(crops))
        return e / torch.linalg.vector_norm(e, dim=1, keepdim=True).clamp_min(1e-12)


def gaussian_blur(image, sigma: float):
    """Separable Gaussian blur of an ``N x C x H x W`` tensor (reflect border, like OpenCV's
    default ``BORDER_REFLECT_101``)."""
    import torch
    import torch.nn.functional as F

    r = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = torch.from_numpy((k / k.sum()).astype(np.float32))
    c = image.shape[1]
    pad_mode = "reflect" if min(image.shape[2:]) > r else "replicate"
    out = F.pad(image, (r, r, 0, 0), mode=pad_mode)
    out = F.conv2d(out, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.pad(out, (0, 0, r, r), mode=pad_mode)
    return F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


@functools.lru_cache(maxsize=None)
def recognizer(name: str) -> TorchRecognizer:
    """The differentiable copy of attacker ``name`` (loaded once per process).

    Raises:
        ValueError: no differentiable copy exists for this attacker (e.g. ``dlib``).
    """
    from ..evaluate.attackers.facenet import INPUT_SIZE, FaceNetAttacker
    from ..evaluate.attackers.sface import SFaceAttacker
    from .onnx_torch import load_onnx

    name = name.strip().lower()
    if name == "sface":
        from ..models import model_path

        net = load_onnx(model_path("sface").read_bytes())
        # cv2.FaceRecognizerSF.feature: blobFromImage(bgr, 1, 112x112, 0, swapRB=True):
        # the network sees RGB 0..255 (its graph subtracts and scales itself)
        return TorchRecognizer("sface", SFaceAttacker.threshold, ARCFACE_112, 112, net,
                               lambda x: x)
    if name == "facenet":
        from ..evaluate.attackers.facenet_convert import load_onnx_bytes

        net = load_onnx(load_onnx_bytes()[0])
        return TorchRecognizer("facenet", FaceNetAttacker.threshold, FACENET_160, INPUT_SIZE,
                               net, lambda x: (x - 127.5) * (1.0 / 128.0))
    raise ValueError(f"attacker {name!r} has no differentiable copy "
                     f"(available: {', '.join(DIFFERENTIABLE)})")


__all__ = ["DIFFERENTIABLE", "TorchRecognizer", "gaussian_blur", "recognizer"]
