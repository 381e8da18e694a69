"""Labelled face datasets for evaluation: identity folders and LFW pairs files.

Layout (LFW's, and any dataset arranged the same way)::

    ROOT/<identity>/<anything>.jpg|png|...     one folder per person

``--data DIR`` may point at ``ROOT`` itself, at a folder holding ``images/``,
or at a folder holding ``lfw/images/`` (the shared data folder).

Pairs files (LFW format)::

    N                    (or "FOLDS N": FOLDS blocks)
    name  i  j           N same-person lines (per block)
    n1  i  n2  j         N different-person lines (per block)

Image ``i`` of ``name`` is ``ROOT/name/name_<iiii>.jpg`` (1-based, 4 digits).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Pair:
    """One verification pair; ``b`` is the image that gets de-identified."""

    a: Path
    b: Path
    same: bool
    line: int = 0


@dataclass
class Universe:
    """The images of one evaluation run and their identity labels.

    Attributes:
        paths: every distinct image (sorted); indices below refer to it.
        labels: identity of each image.
        pairs: verification pairs as ``(index_a, index_b, same)`` (may be empty).
        source: ``"pairs"`` (images of a pairs file) or ``"folder"`` (a selection).
        notes: what was skipped and why (one line each).
    """

    paths: list[Path]
    labels: list[str]
    pairs: list[tuple[int, int, bool]] = field(default_factory=list)
    source: str = "folder"
    notes: list[str] = field(default_factory=list)
    pairs_file: Path | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def label_array(self) -> np.ndarray:
        return np.asarray(self.labels)

    def index(self, path: Path) -> int:
        return self._index[path]

    def __post_init__(self) -> None:
        self._index = {p: i for i, p in enumerate(self.paths)}
        if len(self.labels) != len(self.paths):
            raise ValueError("labels and paths differ in length")

    def probe_indices(self) -> np.ndarray:
        """Images whose identity has at least one other image (they have a mate)."""
        labels = self.label_array
        if labels.size == 0:
            return np.zeros(0, dtype=int)
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        return np.nonzero(counts[inverse] >= 2)[0]

    def second_indices(self) -> np.ndarray:
        """Distinct images that are the second (de-identified) member of a pair."""
        return np.array(sorted({b for _, b, _ in self.pairs}), dtype=int)

    def describe(self) -> dict:
        labels = self.label_array
        ids, counts = np.unique(labels, return_counts=True) if labels.size else ([], [])
        return {
            "source": self.source,
            "pairs_file": str(self.pairs_file) if self.pairs_file else None,
            "n_images": len(self.paths),
            "n_identities": int(len(ids)),
            "n_identities_with_2plus": int(np.sum(np.asarray(counts) >= 2)),
            "n_pairs": len(self.pairs),
            "n_pairs_same": int(sum(1 for p in self.pairs if p[2])),
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------ locating
def images_root(data: str | Path) -> Path:
    """The folder of identity folders inside ``data`` (see module docstring)."""
    data = Path(data).expanduser()
    if not data.exists():
        raise InputError(f"{data}: data folder does not exist")
    if not data.is_dir():
        raise InputError(f"{data}: not a folder (expected a folder of identity folders)")
    for cand in (data / "lfw" / "images", data / "images", data):
        if cand.is_dir() and any(_identity_dirs(cand)):
            return cand
    raise InputError(f"{data}: no identity folders with images found "
                     "(expected DIR/<name>/<image>, DIR/images/<name>/..., or DIR/lfw/images/...)")


def _identity_dirs(root: Path):
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            if any(_image_files(d)):
                yield d


def _image_files(folder: Path):
    return (p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def find_pairs_file(data: str | Path) -> Path | None:
    """A ``pairs*.txt`` beside the images (``DIR``, ``DIR/lfw``), if exactly one kind exists."""
    data = Path(data).expanduser()
    for folder in (data, data / "lfw", images_root(data).parent):
        found = sorted(folder.glob("pairs*.txt")) if folder.is_dir() else []
        if found:
            # prefer the View 1 training file when several are present
            for name in ("pairsDevTrain.txt", "pairs.txt"):
                for f in found:
                    if f.name == name:
                        return f
            return found[0]
    return None


def scan_identities(root: Path) -> dict[str, list[Path]]:
    """``{identity: [image paths]}`` of every identity folder under ``root``."""
    out = {d.name: list(_image_files(d)) for d in _identity_dirs(root)}
    if not out:
        raise InputError(f"{root}: no identity folders with images")
    return out


# ------------------------------------------------------------------ pairs
def lfw_image_path(root: Path, name: str, number: int) -> Path:
    return root / name / f"{name}_{number:04d}.jpg"


def read_pairs(path: str | Path, root: Path, check_files: bool = True) -> list[Pair]:
    """Parse an LFW pairs file (``N`` or ``FOLDS N`` header).

    Raises:
        InputError: missing or empty file, malformed header or line, wrong line
            count, or (``check_files``) a referenced image that does not exist.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path}: pairs file not found")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read pairs file ({exc})") from None
    lines = [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines())]
    lines = [(no, f) for no, f in lines if f]
    if not lines:
        raise InputError(f"{path}: pairs file is empty")
    header_no, header = lines[0]
    try:
        nums = [int(v) for v in header]
    except ValueError:
        raise InputError(f"{path}:{header_no}: header must be 'N' or 'FOLDS N', "
                         f"got '{' '.join(header)}'") from None
    if len(nums) == 1:
        folds, n = 1, nums[0]
    elif len(nums) == 2:
        folds, n = nums
    else:
        raise InputError(f"{path}:{header_no}: header must be 'N' or 'FOLDS N'")
    if folds < 1 or n < 1:
        raise InputError(f"{path}:{header_no}: header counts must be positive")
    body = lines[1:]
    expected = folds * 2 * n
    if len(body) != expected:
        raise InputError(f"{path}: header announces {folds} x (2 x {n}) = {expected} pairs, "
                         f"the file has {len(body)} pair lines")
    pairs = []
    for k, (no, f) in enumerate(body):
        same = (k % (2 * n)) < n
        try:
            if same:
                if len(f) != 3:
                    raise ValueError("expected 'name i j'")
                a = lfw_image_path(root, f[0], int(f[1]))
                b = lfw_image_path(root, f[0], int(f[2]))
            else:
                if len(f) != 4:
                    raise ValueError("expected 'name1 i name2 j'")
                a = lfw_image_path(root, f[0], int(f[1]))
                b = lfw_image_path(root, f[2], int(f[3]))
        except ValueError as exc:
            kind = "same-person" if same else "different-person"
            raise InputError(f"{path}:{no}: malformed {kind} line '{' '.join(f)}' "
                             f"({exc})") from None
        pairs.append(Pair(a, b, same, no))
    if check_files:
        missing = [p for pr in pairs for p in (pr.a, pr.b) if not p.is_file()]
        if missing:
            raise InputError(f"{path}: {len(missing)} image(s) named in the pairs file do not "
                             f"exist under {root}, e.g. {missing[0]}")
    return pairs


# ------------------------------------------------------------------ universes
def _sample(items: list, k: int | None, seed: int) -> list:
    if k is None or k >= len(items):
        return list(items)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(items), size=k, replace=False))
    return [items[i] for i in idx]


def universe_from_pairs(pairs: list[Pair], root: Path, limit: int | None = None,
                        seed: int = 0, pairs_file: Path | None = None) -> Universe:
    """The images of a pairs file; ``limit`` keeps ``limit//2`` same + ``limit//2`` different
    pairs, sampled with ``seed`` (file order kept)."""
    notes = []
    if limit is not None:
        if limit < 2:
            raise InputError("--limit-pairs must be >= 2")
        same = [p for p in pairs if p.same]
        diff = [p for p in pairs if not p.same]
        half = limit // 2
        kept = _sample(same, half, seed) + _sample(diff, half, seed + 1)
        if len(kept) < len(pairs):
            notes.append(f"pairs limited to {len(kept)} of {len(pairs)} "
                         f"({sum(p.same for p in kept)} same, seed {seed})")
        pairs = sorted(kept, key=lambda p: p.line)
    paths = sorted({p for pr in pairs for p in (pr.a, pr.b)})
    labels = [p.parent.name for p in paths]
    uni = Universe(paths, labels, source="pairs", notes=notes, pairs_file=pairs_file)
    uni.pairs = [(uni.index(p.a), uni.index(p.b), p.same) for p in pairs]
    return uni


def universe_from_folder(root: Path, max_identities: int | None = 200, per_identity: int = 4,
                         distractors: int = 0, seed: int = 0) -> Universe:
    """A seeded selection of identity folders.

    ``max_identities`` identities that have at least 2 images, up to
    ``per_identity`` images each, plus ``distractors`` single-image identities
    (gallery only: they add non-mated comparisons). Identities with one image
    cannot give a mated comparison; they are skipped (and counted in ``notes``)
    unless taken as distractors.
    """
    if per_identity < 2:
        raise InputError("--per-identity must be >= 2 (mated comparisons need two images)")
    ids = scan_identities(root)
    multi = sorted(n for n, files in ids.items() if len(files) >= 2)
    single = sorted(n for n, files in ids.items() if len(files) < 2)
    notes = []
    if not multi:
        raise InputError(f"{root}: no identity has 2 or more images; the naive, reverse, "
                         "parrot and self scenarios need at least one such identity")
    if single:
        notes.append(f"{len(single)} identities with a single image skipped "
                     f"(no mate){'; ' + str(min(distractors, len(single))) + ' used as distractors' if distractors else ''}")
    chosen = _sample(multi, max_identities, seed)
    if len(chosen) < len(multi):
        notes.append(f"{len(chosen)} of {len(multi)} identities with >= 2 images (seed {seed})")
    paths = []
    for name in chosen:
        paths += _sample(ids[name], per_identity, seed + hash_text(name) % 1000)
    for name in _sample(single, distractors, seed + 7) if distractors else []:
        paths += ids[name][:1]
    paths = sorted(paths)
    return Universe(paths, [p.parent.name for p in paths], source="folder", notes=notes)


def hash_text(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


# ------------------------------------------------------------------ images
def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB ``uint8`` (EXIF orientation applied).

    Raises:
        InputError: missing, empty or undecodable file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image not found")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            if im.mode == "I;16" or im.mode.startswith("I"):
                arr = np.asarray(im, dtype=np.float64)
                arr = np.clip(arr / max(arr.max(), 1) * 255, 0, 255).astype(np.uint8)
                return np.repeat(arr[:, :, None], 3, axis=2)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None


def file_digest(path: str | Path) -> str:
    """SHA-1 of a file's bytes (cache key of an original image)."""
    h = hashlib.sha1()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    return h.hexdigest()
