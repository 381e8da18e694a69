"""Helpers shared by the benchmarks: data lookup, thread settings, timing, results.

Results go to ``benchmarks/results/<name>.json`` (numbers + config + versions +
machine) and ``benchmarks/results/<name>.md`` (a human-readable table).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from facedeid.config import data_dir

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


class DataMissingError(SystemExit):
    """The shared evaluation data is not where FACEDEID_DATA points (exit with a clear line)."""


def require_data(*parts: str) -> Path:
    """``data_dir() / parts``, or exit with a message saying where it was looked for."""
    root = data_dir()
    path = root.joinpath(*parts)
    if not path.exists():
        raise DataMissingError(
            f"benchmark data not found: {path}\n"
            f"  (data root {root}; set FACEDEID_DATA to the folder holding the shared "
            "evaluation data, see ../shared/data/README.md)")
    return path


def set_threads(n: int) -> None:
    """One thread setting for every library the benchmarks time (stated in the results).

    OpenCV: ``cv2.setNumThreads(n)``. onnxruntime sessions are created by the
    benchmarks with ``intra_op_num_threads=n``. BLAS/OpenMP via env variables (for
    libraries imported afterwards).
    """
    import cv2

    cv2.setNumThreads(int(n))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def versions(packages: list[str]) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": "none used (CPU only)",
    }
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")))
        info["memory_gb"] = round(mem_kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return info


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def write_results(name: str, payload: dict[str, Any], markdown: str | None = None,
                  packages: list[str] | None = None) -> Path:
    """Write ``results/<name>.json`` (with machine, versions, command, date) and ``.md``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    meta = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", f"benchmarks.{name}"] + sys.argv[1:])
        if name.startswith("bench_") else " ".join(sys.argv),
        "git_commit": git_commit(),
        "machine": machine_info(),
        "versions": versions(packages or ["facedeid", "numpy", "opencv-python-headless",
                                          "onnxruntime"]),
        "data_dir": str(data_dir()),
    }
    out = RESULTS_DIR / f"{name.removeprefix('bench_')}.json"
    out.write_text(json.dumps({"meta": meta, **payload}, indent=1, default=_jsonable) + "\n")
    if markdown is not None:
        out.with_suffix(".md").write_text(markdown)
    return out


def _jsonable(o: Any):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
