"""Training the FATM (seed 004, section 3.2), reproducibly.

    facedeid train-fatm [--steps 1500] [--width-div 8] [--donors 3] [--limit 800] \
        [--seed 0] [--device auto] [-o src/facedeid/data/fatm.pt]

Seed 004's procedure: the encoder-decoder pair ``E-D_i`` is updated on a batch
of face set ``X_i`` to minimise the L1 reconstruction error
``|x - D_i(E(x))|_1`` with Adam, then ``E-D_{i+1}`` on ``X_{i+1}``, and so on
round-robin.  Each batch is augmented (seed 004): a random 64x64 crop of the
72x72 canvas (position), random rotation (+-10 degrees), scaling (+-5 %) and
horizontal mirroring, and random brightness, contrast, colour saturation
("distortion") and sharpness.

Where we differ from the seed, and why: widths divided by ``width_div`` (8 on
CPU), batch 16 instead of 64, learning rate 5e-4 instead of 5e-5 and a few
thousand steps instead of 10^6 (a shared 2-core CPU, about half an hour); the face sets are
made by stage 1 (:mod:`.data`).  Everything is seeded (``--seed``; torch in
deterministic mode, one thread), so the same data and step count give the same
weights.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "fatm.pt"
"""Where ``facedeid train-fatm`` writes, and ``--method fatm`` reads, by default."""


@dataclass
class TrainConfig:
    steps: int = 1500
    width_div: int = 8
    n_donors: int = 3
    limit: int | None = 800
    batch: int = 16
    lr: float = 5e-4
    seed: int = 0
    device: str = "auto"
    minutes: float | None = None
    threads: int = 1
    log_every: int = 250
    command: str = ""
    history: list = field(default_factory=list)


def pick_donors(pool, n: int):
    """``n`` donors spread over the pool (indices ``round(i * len / n)``), deterministic."""
    if n < 1 or n > len(pool):
        raise ValueError(f"need 1..{len(pool)} donors, got {n}")
    idx = [int(round(i * len(pool) / n)) for i in range(n)]
    return [pool.donors[i] for i in idx]


def augment(batch, gen):
    """Seed 004's augmentation on a ``(B, 3, 72, 72)`` float tensor in [0, 1] -> ``(B, 3, 64, 64)``."""
    import torch
    import torch.nn.functional as F

    b = batch.shape[0]
    dev = batch.device

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(b, generator=gen, device="cpu").to(dev)

    ang = u(-10, 10) * math.pi / 180
    sc = u(0.95, 1.05)
    tx, ty = u(-4, 4) / 36.0, u(-4, 4) / 36.0   # canvas half-size is 36 px
    flip = (torch.rand(b, generator=gen) < 0.5).to(dev)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    sx = torch.where(flip, -cos, cos)
    theta = torch.stack([torch.stack([sx, -sin, tx], 1),
                         torch.stack([torch.where(flip, -sin, sin), cos, ty], 1)], 1)
    # output 64x64 sampled from the central 64/72 of the canvas
    theta[:, :, :2] *= 64.0 / 72.0
    grid = F.affine_grid(theta, (b, 3, 64, 64), align_corners=False)
    x = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # colour: brightness, contrast, saturation, sharpness
    x = x * u(0.8, 1.2).view(b, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.8, 1.2).view(b, 1, 1, 1) + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * u(0.7, 1.3).view(b, 1, 1, 1) + gray
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = blur + (x - blur) * u(0.5, 1.5).view(b, 1, 1, 1)
    return x.clamp(0.0, 1.0)


def train(sets, cfg: TrainConfig, out: Path | None = None, donors_meta: dict | None = None):
    """Train on :class:`~facedeid.fatm.data.FaceSets`; returns ``(model, summary)``.

    Writes the weights to ``out`` (float16 state dict + config, atomically) if given.
    """
    import torch

    from .model import FATM, count_parameters

    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, int(cfg.threads)))
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if cfg.device == "auto" else cfg.device))
    model = FATM(sets.names, cfg.width_div).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = [torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))) for a in sets.images]
    t0 = time.perf_counter()
    losses = [[] for _ in sets.names]
    done = 0
    for step in range(cfg.steps):
        s = step % len(data)
        idx = torch.from_numpy(rng.integers(0, len(data[s]), cfg.batch))
        x = augment(data[s][idx].to(device).float() / 255.0, gen)
        y = model(x, s)
        loss = (y - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[s].append(float(loss.detach()))
        done = step + 1
        if done % cfg.log_every == 0:
            recent = {n: round(float(np.mean(v[-50:])), 4) for n, v in zip(sets.names, losses) if v}
            cfg.history.append({"step": done, "seconds": round(time.perf_counter() - t0, 1),
                                "l1": recent})
            log.info("step %d/%d %.0f s L1 %s", done, cfg.steps, time.perf_counter() - t0, recent)
        if cfg.minutes is not None and time.perf_counter() - t0 > cfg.minutes * 60:
            log.warning("stopped at step %d: time budget of %.1f min reached", done, cfg.minutes)
            break
    summary = {
        "steps_done": done, "steps_asked": cfg.steps, "seconds": round(time.perf_counter() - t0, 1),
        "device": str(device), "threads": cfg.threads, "width_div": cfg.width_div,
        "batch": cfg.batch, "lr": cfg.lr, "seed": cfg.seed, "parameters": count_parameters(model),
        "n_faces": int(len(sets.images[0])), "sets": sets.names,
        "final_l1": {n: round(float(np.mean(v[-100:])), 4) for n, v in zip(sets.names, losses) if v},
        "history": cfg.history, "data": donors_meta or {}, "command": cfg.command,
    }
    if out is not None:
        save(model, out, summary)
    return model, summary


def save(model, path: Path, summary: dict) -> None:
    """Encoder and the donor decoders (the ``real`` decoder is not needed to de-identify),
    float16, with the config and the training summary, written atomically."""
    import torch

    from ..io.atomic import atomic_output

    keep = [i for i, n in enumerate(model.set_names) if n != "real"]
    state = {k: v.detach().cpu().half() for k, v in model.state_dict().items()
             if not k.startswith("decoders.") or int(k.split(".")[1]) in keep}
    # renumber the kept decoders 0..n-1
    renum = {}
    for k, v in state.items():
        if k.startswith("decoders."):
            parts = k.split(".")
            parts[1] = str(keep.index(int(parts[1])))
            k = ".".join(parts)
        renum[k] = v
    cfg = {**model.config(), "set_names": [model.set_names[i] for i in keep]}
    payload = {"format": "facedeid-fatm/1", "config": cfg, "state": renum,
               "summary": json.loads(json.dumps(summary))}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


__all__ = ["DEFAULT_WEIGHTS", "TrainConfig", "pick_donors", "augment", "train", "save"]
