"""Settings read from the environment (one place for each).

``FACEDEID_DATA``: folder of the shared evaluation data (LFW, WIDER FACE,
group photos, video). Default: ``../shared/data`` beside the repository.
``FACEDEID_CACHE``: cache folder (embeddings of originals, converted models).
Default: ``~/.cache/facedeid``.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    env = os.environ.get("FACEDEID_DATA")
    return Path(env).expanduser() if env else (_REPO.parent / "shared" / "data")


def cache_dir() -> Path:
    env = os.environ.get("FACEDEID_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "facedeid"
    path.mkdir(parents=True, exist_ok=True)
    return path
