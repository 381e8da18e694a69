"""``facedeid train-fatm``: build the face sets and train seed 004's FATM (see :mod:`.train`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def add_fatm_command(sub) -> None:
    """Register ``train-fatm`` on the CLI's subparsers."""
    p = sub.add_parser("train-fatm", help="train seed 004's facial attribute transfer model (torch)",
                       description=__doc__)
    p.add_argument("--data", type=Path, default=None,
                   help="shared data folder holding lfw/ (default: $FACEDEID_DATA)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="weights file (default: the package's facedeid/data/fatm.pt)")
    p.add_argument("--steps", type=int, default=1500, help="training steps (batches), default 1500")
    p.add_argument("--width-div", type=int, default=8,
                   help="divide seed 004's layer widths by this (1 = the seed's; default 8 for CPU)")
    p.add_argument("--donors", type=int, default=3, help="donor decoders (seed 004: 2 to 3); default 3")
    p.add_argument("--limit", type=int, default=800, help="real training faces, default 800")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop early after this many minutes (the weights then depend on speed)")
    p.set_defaults(func=cmd_train_fatm)


def cmd_train_fatm(args: argparse.Namespace) -> int:
    from ..config import cache_dir, data_dir
    from ..errors import InputError
    from .infer import require_torch

    require_torch()
    from ..replace.donors import averaged_donors
    from .data import build_face_sets
    from .train import DEFAULT_WEIGHTS, TrainConfig, pick_donors, train

    logging.getLogger("facedeid").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="facedeid: %(message)s")
    lfw = (args.data or data_dir()) / "lfw"
    if not (lfw / "images").is_dir():
        raise InputError(f"LFW not found at {lfw} (give --data or set FACEDEID_DATA)")
    out = args.output or DEFAULT_WEIGHTS
    donors = pick_donors(averaged_donors(), args.donors)
    print(f"donors: {', '.join(d.name for d in donors)} (each the average of >= "
          f"{min(d.k for d in donors)} people)", file=sys.stderr)
    sets = build_face_sets(lfw, donors, limit=args.limit, cache=cache_dir() / "fatm")
    print(f"{len(sets.images[0])} real faces, {len(sets)} face sets", file=sys.stderr)
    cfg = TrainConfig(steps=args.steps, width_div=args.width_div, n_donors=args.donors,
                      limit=args.limit, batch=args.batch, lr=args.lr, seed=args.seed,
                      device=args.device, minutes=args.minutes, threads=args.threads,
                      command="facedeid train-fatm " + " ".join(sys.argv[2:]))
    from .data import TRAIN_SWAP

    meta = {"donors": [{"name": d.name, "people": d.k} for d in donors],
            "stage1_settings": dict(TRAIN_SWAP)}
    _, summary = train(sets, cfg, out=out, donors_meta=meta)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return 0


__all__ = ["add_fatm_command", "cmd_train_fatm"]
