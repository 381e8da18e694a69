"""Seed 004's facial attribute transfer model (FATM): one shared encoder, one decoder per face set.

Architecture (seed 004, Fig. 3), with every layer width divided by ``width_div``
(the seed's own widths are ``width_div = 1``; the default 8 trains on a 2-core
CPU in half an hour and ships in a few MB):

* **encoder**: four 5x5 convolutions with stride 2 (seed: 128, 256, 512, 1024
  kernels), each followed by leaky ReLU ``max(0.1 x, x)``; then two fully
  connected layers (seed: 1,024 and 16,384 = 4 x 4 x 1,024); the output of the
  second is the *code*.
* **decoder** (one per face set): the code reshaped to 4 x 4 x C, four
  upscale layers (seed: 512, 256, 128 and 64 kernels of 3x3, stride 1, leaky
  ReLU; each followed by a 2x pixel shuffle, 4 -> 8 -> 16 -> 32 -> 64), and a
  final 5x5 convolution with 3 kernels (RGB; a sigmoid keeps it in [0, 1]).

Input and output are 64x64 RGB faces in the canonical frame
(:func:`facedeid.landmarks.align.align_face` at size 64), values in [0, 1].

Torch is an optional extra (``pip install 'facedeid[torch]'``, ``torch==2.13.0``);
this module imports it, so import it only when torch is wanted.
"""

from __future__ import annotations

import torch
from torch import nn

SIZE = 64
"""Side of the faces the model reads and writes (seed 004: 64x64)."""
SEED_ENCODER = (128, 256, 512, 1024)
SEED_FC = 1024
SEED_DECODER = (512, 256, 128, 64)


def leaky(x: torch.Tensor) -> torch.Tensor:
    """Seed 004's activation ``max(0.1 x, x)``."""
    return nn.functional.leaky_relu(x, 0.1)


class Encoder(nn.Module):
    def __init__(self, width_div: int = 8):
        super().__init__()
        ch = [max(4, c // width_div) for c in SEED_ENCODER]
        self.convs = nn.ModuleList()
        c_in = 3
        for c in ch:
            self.convs.append(nn.Conv2d(c_in, c, 5, stride=2, padding=2))
            c_in = c
        self.code_channels = ch[-1]
        self.fc1 = nn.Linear(4 * 4 * ch[-1], max(16, SEED_FC // width_div))
        self.fc2 = nn.Linear(max(16, SEED_FC // width_div), 4 * 4 * ch[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = leaky(conv(x))
        return self.fc2(self.fc1(x.flatten(1)))


class Upscale(nn.Module):
    """3x3 convolution to ``4 c_out`` channels, leaky ReLU, 2x pixel shuffle."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(leaky(self.conv(x)))


class Decoder(nn.Module):
    def __init__(self, code_channels: int, width_div: int = 8):
        super().__init__()
        ch = [max(4, c // width_div) for c in SEED_DECODER]
        self.code_channels = code_channels
        layers, c_in = [], code_channels
        for c in ch:
            layers.append(Upscale(c_in, c))
            c_in = c
        self.ups = nn.Sequential(*layers)
        self.out = nn.Conv2d(c_in, 3, 5, padding=2)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = code.view(-1, self.code_channels, 4, 4)
        return torch.sigmoid(self.out(self.ups(x)))


class FATM(nn.Module):
    """The shared encoder and ``n_sets`` decoders.

    ``set_names[i]`` names decoder ``i`` (``"real"`` for the set of real faces
    that teaches the encoder, the donors' names for the others).
    """

    def __init__(self, set_names: list[str], width_div: int = 8):
        super().__init__()
        if len(set_names) < 2:
            raise ValueError("FATM needs at least two face sets")
        self.set_names = list(set_names)
        self.width_div = int(width_div)
        self.encoder = Encoder(width_div)
        self.decoders = nn.ModuleList(Decoder(self.encoder.code_channels, width_div)
                                      for _ in set_names)

    def forward(self, x: torch.Tensor, decoder: int) -> torch.Tensor:
        return self.decoders[decoder](self.encoder(x))

    def config(self) -> dict:
        return {"set_names": self.set_names, "width_div": self.width_div, "size": SIZE}

    @classmethod
    def from_config(cls, cfg: dict) -> "FATM":
        if int(cfg.get("size", SIZE)) != SIZE:
            raise ValueError(f"FATM weights are for {cfg.get('size')} px faces, this code uses {SIZE}")
        return cls(list(cfg["set_names"]), int(cfg["width_div"]))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["SIZE", "FATM", "Encoder", "Decoder", "Upscale", "leaky", "count_parameters"]
