"""The README figure of natural face replacement: originals next to replacements.

    python tools/replace_figure.py                 # -> docs/img/replace_grid.jpg (shippable)
    python tools/replace_figure.py --lfw           # -> benchmarks/results/tmp/replace_grid_lfw.jpg

LFW's photos may not be copied into the repository (../shared/data/README.md:
non-commercial evaluation only, photographers' copyright), so the shipped figure
uses only images we may redistribute: scikit-image's public-domain ``astronaut``
photo and synthetic faces of nobody (the ``gan-face-generate`` DCGAN, DigiFace-1M;
research terms), 12 faces in all, each shown as original | ``replace`` (default
settings, k-averaged donors, ``--seed 0``).  ``--lfw`` draws the same figure for 12
LFW people (different poses and expressions) into the git-ignored
``benchmarks/results/tmp/`` for local inspection only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TILE = 160


def tile(img: np.ndarray, box) -> np.ndarray:
    """A square crop around ``box`` (1.8x its size), resized to TILE px."""
    import cv2

    x0, y0, x1, y1 = box
    cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, 0.9 * max(x1 - x0, y1 - y0)
    h, w = img.shape[:2]
    a, b = int(max(cx - s, 0)), int(max(cy - s, 0))
    c, d = int(min(cx + s, w)), int(min(cy + s, h))
    return cv2.resize(np.ascontiguousarray(img[b:d, a:c]), (TILE, TILE), interpolation=cv2.INTER_AREA)


def synthetic_targets(n: int) -> list[np.ndarray]:
    """The astronaut and synthetic DCGAN faces (upscaled onto a blurred copy of themselves)."""
    import cv2
    from skimage import data

    out = [data.astronaut()]
    from facedeid.replace.gan import generate_faces

    for face in generate_faces(3 * n, seed=11):
        big = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.GaussianBlur(cv2.resize(face, (288, 288), interpolation=cv2.INTER_CUBIC), (0, 0), 12)
        canvas[48:240, 48:240] = big
        out.append(canvas)
    return out


def lfw_targets(n: int) -> list[np.ndarray]:
    from facedeid.config import data_dir
    from facedeid.evaluate.datasets import load_rgb

    people = sorted((data_dir() / "lfw" / "images").iterdir())
    return [load_rgb(sorted(p.iterdir())[0]) for p in people[::max(1, len(people) // (3 * n))]]


def build(images: list[np.ndarray], n: int, cols: int = 4) -> np.ndarray:
    from facedeid.pipeline import Anonymizer

    anon = Anonymizer(method="replace", seed=0)
    pairs = []
    for img in images:
        res = anon.anonymize(img)
        done = [(f, r) for f, r in zip(res.faces, res.record["faces"]) if r["method"] == "replace"]
        if not done:
            continue
        face = max((f for f, _ in done), key=lambda f: f.area)
        pairs.append(np.hstack([tile(img, face.box), tile(res.image, face.box)]))
        if len(pairs) == n:
            break
    gap = np.full((pairs[0].shape[0], 8, 3), 255, np.uint8)
    rows = []
    for i in range(0, len(pairs), cols):
        row = []
        for p in pairs[i:i + cols]:
            row += [p, gap]
        while len(row) < 2 * cols:
            row += [np.full_like(pairs[0], 255), gap]
        rows.append(np.hstack(row[:-1]))
        rows.append(np.full((8, rows[-1].shape[1], 3), 255, np.uint8))
    return np.vstack(rows[:-1])


def main(argv: list[str] | None = None) -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", action="store_true", help="LFW people (local only, git-ignored output)")
    ap.add_argument("-n", type=int, default=12)
    args = ap.parse_args(argv)
    if args.lfw:
        out = REPO / "benchmarks" / "results" / "tmp" / "replace_grid_lfw.jpg"
        grid = build(lfw_targets(args.n), args.n)
    else:
        out = REPO / "docs" / "img" / "replace_grid.jpg"
        grid = build(synthetic_targets(args.n), args.n)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), grid[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
