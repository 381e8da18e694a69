"""Command-line inputs to a plan of ``(source, destination)`` files.

Inputs
------
Each argument is a file, a folder or a glob pattern:

* a **file** named explicitly is taken whatever its extension (reading it
  reports a clear error if it is not an image or video);
* a **folder** is walked recursively in sorted order, keeping files whose
  extension (case-insensitive) is in ``exts`` (default :data:`MEDIA_EXTS`);
  hidden files and folders (name starting with ``.``, e.g. macOS ``._x.jpg``
  resource forks and facedeid's own temporary files) are skipped, symlinked
  folders are not followed;
* an argument that does not exist but holds ``*``, ``?`` or ``[`` is expanded as
  a glob (``**`` recursive), so quoted patterns work without a shell; matching
  folders are walked as above; matched files are treated like folder contents
  (hidden files and earlier outputs skipped, see below).

A missing file, or a pattern or folder that yields nothing, is an
:class:`~facedeid.errors.InputError`. The same file given twice (also through
another path or a symlink) is kept once.

``.gif`` is in :data:`VIDEO_EXTS`: a GIF is treated as a (possibly one-frame)
animation, handled by the video pipeline, so that every frame is anonymised
and the animation is kept.

Outputs (:func:`plan_outputs`)
------------------------------
* no ``output``: each file gets a sibling ``<stem><suffix><ext>``
  (``photo.jpg`` -> ``photo_anonymized.jpg``); when walking folders or
  expanding patterns, files whose stem already ends with ``suffix`` are skipped
  (earlier outputs);
* one input **file** and an ``output`` that has an extension and is not an
  existing folder: that exact file;
* otherwise ``output`` is a **folder**: files named explicitly (or matched by
  a pattern) go directly into it under their own name; a single input folder is mirrored under it
  (``in/a/b.jpg`` -> ``OUT/a/b.jpg``); with several inputs each folder is
  mirrored under ``OUT/<folder name>/``. An output folder inside an input folder
  is not walked (outputs are never re-processed).

``out_ext`` (e.g. ``".png"``) replaces every destination's extension.
A plan in which a destination equals any source (same real path or inode), or
two sources share a destination, raises :class:`~facedeid.errors.OutputError`.
The plan is sorted by source path.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, OutputError

IMAGE_EXTS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTS: frozenset[str] = frozenset({
    ".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v",
    ".h264", ".h265", ".hevc", ".264", ".265", ".gif",
})
MEDIA_EXTS: frozenset[str] = IMAGE_EXTS | VIDEO_EXTS

DEFAULT_SUFFIX = "_anonymized"
_GLOB_CHARS = set("*?[")


def media_kind(path: str | Path) -> str | None:
    """``"image"``, ``"video"`` or ``None`` from the extension (case-insensitive)."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    return None


@dataclass(frozen=True)
class InputFile:
    """One file to process.

    Attributes:
        path: the file (as found: the argument, or folder + relative path).
        root: the folder argument it was found under (None for a named file).
        rel: its path relative to ``root`` (just the name for a named file).
    """

    path: Path
    root: Path | None
    rel: Path


def _norm_exts(exts: Iterable[str]) -> frozenset[str]:
    return frozenset(e.lower() if e.startswith(".") else "." + e.lower() for e in exts)


def _walk(folder: Path, exts: frozenset[str], exclude: list[str], skip_suffix: str | None) -> list[InputFile]:
    found: list[InputFile] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if exclude and os.path.realpath(here / d) in exclude:
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = here / name
            if p.suffix.lower() not in exts:
                continue
            if skip_suffix and p.stem.endswith(skip_suffix):
                continue
            if not p.is_file():
                continue
            found.append(InputFile(path=p, root=folder, rel=p.relative_to(folder)))
    return found


def expand_inputs(
    args: Sequence[str | Path],
    *,
    exts: Iterable[str] = MEDIA_EXTS,
    exclude: Iterable[str | Path] = (),
    skip_suffix: str | None = None,
) -> list[InputFile]:
    """Expand files, folders and glob patterns (see the module docstring).

    Args:
        args: command-line inputs.
        exts: extensions kept when walking folders.
        exclude: folders never walked (e.g. the output folder).
        skip_suffix: when walking folders, skip files whose stem ends with it.

    Returns:
        Unique files (first occurrence wins), in argument order, each folder's
        files sorted.
    """
    if isinstance(args, (str, Path)):
        args = [args]
    extset = _norm_exts(exts)
    excl = [os.path.realpath(e) for e in exclude]
    out: list[InputFile] = []
    seen: set[str] = set()

    def add(items: list[InputFile]) -> None:
        for item in items:
            key = os.path.realpath(item.path)
            if key not in seen:
                seen.add(key)
                out.append(item)

    for arg in args:
        p = Path(arg)
        if p.is_dir():
            items = _walk(p, extset, excl, skip_suffix)
            if not items:
                raise InputError(f"{arg}: folder holds no files with a supported extension "
                                 f"({' '.join(sorted(extset))})")
            add(items)
        elif p.exists():
            if not p.is_file():
                raise InputError(f"{arg}: not a regular file")
            add([InputFile(path=p, root=None, rel=Path(p.name))])
        elif _GLOB_CHARS & set(str(arg)):
            matches = sorted(glob.glob(str(arg), recursive=True))
            items = []
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    items.extend(_walk(mp, extset, excl, skip_suffix))
                elif mp.is_file() and not mp.name.startswith("."):
                    if any(os.path.realpath(mp).startswith(e + os.sep) for e in excl):
                        continue
                    if skip_suffix and mp.stem.endswith(skip_suffix):
                        continue
                    items.append(InputFile(path=mp, root=None, rel=Path(mp.name)))
            if not items:
                raise InputError(f"{arg}: no files match this pattern")
            add(items)
        else:
            raise InputError(f"{arg}: no such file or folder")
    return out


def _looks_like_dir(output: str | Path) -> bool:
    s = str(output)
    return s.endswith(("/", os.sep)) or Path(s).is_dir() or not Path(s).suffix


def plan_outputs(
    inputs: Sequence[str | Path],
    output: str | Path | None = None,
    *,
    suffix: str = DEFAULT_SUFFIX,
    exts: Iterable[str] = MEDIA_EXTS,
    out_ext: str | None = None,
) -> list[tuple[Path, Path]]:
    """Plan ``(source, destination)`` pairs for CLI inputs (see the module docstring).

    >>> plan_outputs(["/nonexistent.jpg"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    facedeid.errors.InputError: /nonexistent.jpg: no such file or folder
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise InputError("no input given")
    if out_ext is not None and not out_ext.startswith("."):
        out_ext = "." + out_ext

    if output is None:
        if not suffix:
            raise OutputError("an empty suffix without an output path would overwrite the inputs")
        files = expand_inputs(inputs, exts=exts, skip_suffix=suffix)
        plan = []
        for f in files:
            ext = out_ext or f.path.suffix
            plan.append((f.path, f.path.with_name(f.path.stem + suffix + ext)))
        return _checked(plan)

    out = Path(output)
    single_file_arg = len(inputs) == 1 and Path(inputs[0]).is_file()
    if single_file_arg and not _looks_like_dir(output):
        src = Path(inputs[0])
        dst = out.with_suffix(out_ext) if out_ext else out
        return _checked([(src, dst)])

    if out.exists() and not out.is_dir():
        raise OutputError(f"{output}: output must be a folder when there are several inputs "
                          "or a folder input, but it is an existing file")
    files = expand_inputs(inputs, exts=exts, exclude=[out])
    mirror_under_name = len(inputs) > 1
    plan = []
    for f in files:
        if f.root is None:
            dst = out / f.rel
        elif mirror_under_name:
            root_name = Path(os.path.realpath(f.root)).name or "input"
            dst = out / root_name / f.rel
        else:
            dst = out / f.rel
        if out_ext:
            dst = dst.with_suffix(out_ext)
        plan.append((f.path, dst))
    return _checked(plan)


def _checked(plan: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    plan.sort(key=lambda sd: str(sd[0]))
    src_real: dict[str, Path] = {}
    src_inode: dict[tuple[int, int], Path] = {}
    for src, _ in plan:
        src_real[os.path.realpath(src)] = src
        try:
            st = os.stat(src)
            src_inode[(st.st_dev, st.st_ino)] = src
        except OSError:
            pass
    by_dst: dict[str, Path] = {}
    for src, dst in plan:
        key = os.path.realpath(dst)
        if key in by_dst:
            raise OutputError(f"{dst}: two inputs would be written here ({by_dst[key]} and {src}); "
                              "rename one or use separate output folders")
        by_dst[key] = src
        other = src_real.get(key)
        if other is None:
            try:
                st = os.stat(dst)
                other = src_inode.get((st.st_dev, st.st_ino))
            except OSError:
                other = None
        if other is not None:
            raise OutputError(f"{dst}: output would overwrite the input file {other}")
    return plan
