"""Atomic file output: a reader never sees a half-written file.

:func:`atomic_output` yields a temporary path **in the destination's folder**
(same filesystem, so the final :func:`os.replace` is atomic). The caller (an
image encoder, a video muxer, a JSON dump) writes that path by name. When the
block ends normally the file is fsync'ed, given the permissions a plain
``open()`` would have given it (``0o666 & ~umask``), and renamed over the final
name; the folder is then fsync'ed. When the block raises (anything, including
``KeyboardInterrupt``) the temporary file is removed and the final name is left
untouched: absent if it was absent, with its old content if it existed.

The temporary name is hidden and keeps the final extension, e.g.
``.photo_anonymized.jpg.3f9k2a.tmp.jpg``, so writers that choose a format from
the extension work, and folder scans (which skip dot-files) never pick it up.

Errors that make the destination unusable raise
:class:`~facedeid.errors.OutputError` with a one-line message naming the path.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError

_UMASK_LOCK = threading.Lock()


def _default_mode() -> int:
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file: equal real paths, or (when
    both exist) the same inode — which catches hard links and bind mounts."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
    except (OSError, ValueError):
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_not_input(path: str | Path, inputs: Iterable[str | Path]) -> None:
    """Raise :class:`OutputError` when ``path`` is (or would overwrite) one of ``inputs``."""
    for src in inputs:
        if src is not None and same_file(path, src):
            raise OutputError(f"{path}: refusing to overwrite the input file {src}")


def prepare_destination(path: str | Path) -> Path:
    """Check that ``path`` can be written as a file; create its parent folders.

    Raises :class:`OutputError` when ``path`` is a folder, when a parent is a
    file, or when the parent cannot be created.
    """
    p = Path(path)
    if p.name in ("", ".", ".."):
        raise OutputError(f"{path}: output must be a file path, not a folder")
    if p.is_dir():
        raise OutputError(f"{path}: output path is a folder, not a file")
    parent = p.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{path}: cannot create output: {parent} exists and is not a folder") from None
    except NotADirectoryError:
        raise OutputError(f"{path}: cannot create output: a parent of it is a file, not a folder") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot create output folder {parent}: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise OutputError(f"{path}: cannot create output: {parent} is not a folder")
    return p


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems do not support it on folders
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | Path, *, protect: Iterable[str | Path] = (),
                  fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path; on success it becomes ``path`` atomically.

    Args:
        path: the final file name.
        protect: input files that must never be overwritten (same path, same
            real path through symlinks, or same inode): :class:`OutputError`.
        fsync: flush file and folder to disk before returning (default on).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "x.txt").read_text()
    'done'
    """
    final = prepare_destination(path)
    check_not_input(final, protect)
    suffix = ".tmp" + final.suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {final.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.is_file():
            raise OutputError(f"{path}: the writer produced no file")
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        try:
            os.replace(tmp, final)
        except IsADirectoryError:
            raise OutputError(f"{path}: output path is a folder, not a file") from None
        except OSError as exc:
            raise OutputError(f"{path}: cannot write output: {exc.strerror or exc}") from None
        if fsync:
            _fsync_dir(final.parent)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, protect: Iterable[str | Path] = (),
                       fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, protect=protect, fsync=fsync) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write output: {exc.strerror or exc}") from None
    return Path(path)
