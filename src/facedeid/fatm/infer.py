"""Running a trained FATM on one face: align, encode, decode with a donor's decoder, warp back."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceDeidError, ModelNotFoundError

TORCH_HINT = ("--method fatm needs the optional torch extra: "
              "pip install 'facedeid[torch]' (torch==2.13.0, CPU is enough)")


def require_torch():
    """The ``torch`` module, or a clear :class:`FaceDeidError` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise FaceDeidError(TORCH_HINT) from None
    return torch


@dataclass(eq=False)
class LoadedFATM:
    """A model ready for inference (CPU, float32, eval mode) and what it was trained with."""

    model: object
    donors: list[str]
    summary: dict
    path: Path

    def synthesize(self, aligned64: np.ndarray, donor: int) -> np.ndarray:
        """``(64, 64, 3)`` uint8 aligned face -> the donor decoder's ``(64, 64, 3)`` uint8 face."""
        torch = require_torch()
        x = torch.from_numpy(np.ascontiguousarray(aligned64.transpose(2, 0, 1))).float()[None] / 255.0
        with torch.inference_mode():
            y = self.model(x, int(donor))[0]
        return np.clip(np.rint(y.numpy().transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> LoadedFATM:
    torch = require_torch()
    from .model import FATM

    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != "facedeid-fatm/1":
        raise ModelNotFoundError(f"{path}: not a facedeid FATM weights file")
    model = FATM.from_config(payload["config"])
    model.load_state_dict({k: v.float() for k, v in payload["state"].items()})
    model.eval()
    return LoadedFATM(model, list(payload["config"]["set_names"]), payload.get("summary", {}), Path(path))


def load_fatm(path: str | Path | None = None) -> LoadedFATM:
    """The FATM weights at ``path`` (default: the shipped ``facedeid/data/fatm.pt``), loaded once.

    Raises:
        FaceDeidError: torch is not installed.
        ModelNotFoundError: no weights file (train one with ``facedeid train-fatm``).
    """
    from .train import DEFAULT_WEIGHTS

    require_torch()
    p = Path(path).expanduser() if path else DEFAULT_WEIGHTS
    if not p.is_file():
        raise ModelNotFoundError(f"FATM weights not found at {p}; train them with "
                                 "`facedeid train-fatm` (see docs/REPLACE.md)")
    return _load(str(p.resolve()), p.stat().st_mtime)


def render_fatm(fatm: LoadedFATM, rgb: np.ndarray, landmarks68: np.ndarray,
                donor: int) -> tuple[np.ndarray, np.ndarray]:
    """Seed 004's steps on one face of ``rgb`` (RGB uint8): align to the canonical 64x64 frame,
    synthesize with ``donor``'s decoder, warp back.  Returns ``(rgb, coverage)`` in ``rgb``'s frame."""
    from ..landmarks.align import align_face, warp_back, warp_back_coverage

    al = align_face(rgb, landmarks68, 64)
    face = fatm.synthesize(al.image, donor)
    hw = rgb.shape[:2]
    back = warp_back(face, al.matrix, hw, border="replicate")
    cov = warp_back_coverage(64, al.matrix, hw)
    return back, cov


__all__ = ["TORCH_HINT", "require_torch", "LoadedFATM", "load_fatm", "render_fatm"]
