"""The quickstart job: enroll a folder-per-person set, identify a folder of photos.

With the shared development data present it uses the ``face_recognition``
project's k-NN example (``train/<person>/*.jpg`` to enroll, ``test/*.jpg`` to
identify). Anywhere else it uses the public-domain astronaut portrait that
scikit-image ships: it enrolls the portrait and identifies a mirrored,
half-size copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelens import settings
from facelens.io.image import ImageSource

__all__ = ["default_data_root", "plan_demo"]

DATA_ENV = settings.DATA.name
KNN_EXAMPLE = Path("face_recognition_knn/examples/knn_examples")


def default_data_root() -> Path:
    """``$FACELENS_DATA``, else ``../shared/data`` next to the current folder."""
    return settings.data_root()


@dataclass
class DemoPlan:
    """What the demo enrolls and what it identifies."""

    description: str
    enrollments: dict[str, list[ImageSource]]
    probes: list[ImageSource]


def plan_demo(data_root: Path) -> DemoPlan:
    """The k-NN example when it exists under ``data_root``, else the astronaut."""
    knn = data_root / KNN_EXAMPLE
    if (knn / "train").is_dir() and (knn / "test").is_dir():
        enrollments: dict[str, list[ImageSource]] = {
            person.name: list(sorted(p for p in person.iterdir() if p.is_file()))
            for person in sorted((knn / "train").iterdir())
            if person.is_dir()
        }
        probes: list[ImageSource] = list(sorted(p for p in (knn / "test").iterdir() if p.is_file()))
        return DemoPlan(f"face_recognition k-NN example at {knn}", enrollments, probes)
    return _astronaut_plan()


def _astronaut_plan() -> DemoPlan:
    from skimage import data

    portrait = np.ascontiguousarray(data.astronaut())  # type: ignore[no-untyped-call]  # RGB uint8, 512x512, public domain (NASA)
    mirrored_half = np.ascontiguousarray(portrait[::2, ::-2])
    return DemoPlan(
        "scikit-image's astronaut portrait (no shared data found; set FACELENS_DATA)",
        {"Eileen Collins": [portrait]},
        [mirrored_half],
    )
