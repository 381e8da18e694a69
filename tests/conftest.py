"""Shared fixtures. Tests that need ../shared/data use the ``data_dir`` fixture:
it skips locally when the data is absent, and FAILS when CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facedeid.config import data_dir as _data_dir


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not (path / "lfw").is_dir():
        msg = f"shared evaluation data not found at {path} (set FACEDEID_DATA)"
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut photo (RGB uint8, 512x512, one face)."""
    from skimage import data

    return data.astronaut()
