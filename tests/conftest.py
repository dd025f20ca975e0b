"""Shared fixtures: where the real photos are, and models loaded once per session.

Real-data tests read ``$FACELENS_DATA`` (default: ``../shared/data`` beside the
repository) and skip with a message when it is absent. Always-on tests use
images the tests make or that an installed package ships.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facelens.pipeline.analyzer import FaceAnalyzer

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data")).resolve()


def data_path(relative: str) -> Path:
    """A path under the shared data folder; skips the test when it is missing."""
    path = DATA_ROOT / relative
    if not path.exists():
        pytest.skip(
            f"real-photo data not found at {path}; set FACELENS_DATA to the shared data folder"
        )
    return path


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut portrait (NASA), RGB uint8 512x512."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def knn_root() -> Path:
    return data_path("face_recognition_knn/examples/knn_examples")


@pytest.fixture(scope="session")
def group_photos() -> Path:
    return data_path("group_photos")


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    return data_path("lfw")


@pytest.fixture(scope="session")
def obama_photo() -> Path:
    return data_path("misc_labelled_singles/ageitgey+face_recognition/examples/obama.jpg")
