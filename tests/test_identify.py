"""Identification and verification on real photos of real people."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from facelens.api import FaceLens
from facelens.errors import CalibrationError, NoFaceError
from facelens.evaluation.lfw import people_images, read_people

# The k-NN example's test photos and who is in them, left to right (checked by eye).
# In obama_and_biden.jpg a girl stands at the bottom right: she was never enrolled.
KNN_EXPECTED = {
    "alex_lacamoire1.jpg": ["alex_lacamoire"],
    "johnsnow_test1.jpg": ["kit_harington"],
    "kit_with_rose.jpg": ["rose_leslie", "kit_harington"],
    "obama1.jpg": ["obama"],
    "obama_and_biden.jpg": ["biden", "obama", None],
}


@pytest.fixture(scope="module")
def knn_lens(tmp_path_factory: pytest.TempPathFactory, knn_root: Path) -> FaceLens:
    lens = FaceLens(gallery=tmp_path_factory.mktemp("knn") / "gallery.db")
    for person in sorted((knn_root / "train").iterdir()):
        report = lens.enroll(person.name, sorted(person.iterdir()))
        assert report.accepted, f"nothing of {person.name} was enrolled: {report.outcomes}"
    return lens


def test_knn_round_trip_names_every_test_photo(knn_lens: FaceLens, knn_root: Path) -> None:
    for name, expected in KNN_EXPECTED.items():
        matches = sorted(knn_lens.identify(knn_root / "test" / name), key=lambda m: m.face.box.x)
        assert [m.identity for m in matches] == expected, name
        for match in matches:
            assert (match.score >= match.threshold) == (match.identity is not None)
            assert match.identity is None or match.candidates[0].name == match.identity
            assert match.fmr == pytest.approx(1e-4)
            assert match.llr is not None and match.score_fmr is not None
            if match.identity:  # strong evidence, and a score impostors practically never reach
                assert match.llr > 2 and match.score_fmr < 1e-5
            else:
                assert match.llr < 1


def test_lfw_people_never_enrolled_are_unknown(knn_lens: FaceLens, lfw_root: Path) -> None:
    people = [p for group in read_people(lfw_root / "people.txt") for p in group]
    enrolled = {"Barack_Obama", "Joe_Biden", "Kit_Harington", "Rose_Leslie", "Alex_Lacamoire"}
    strangers = [p for p in people if p[0] not in enrolled]
    sample = random.Random(7).sample(
        people_images(lfw_root / "images_deepfunneled", strangers), 300
    )
    faces = 0
    for result, matches in knn_lens.identify_many([path for _, path in sample]):
        assert result.error is None
        faces += len(matches)
        assert all(m.identity is None for m in matches), (
            result.source,
            [m.to_dict() for m in matches],
        )
    assert faces >= 300


def test_operating_point_by_fmr(knn_lens: FaceLens, knn_root: Path) -> None:
    strict = knn_lens.identify(knn_root / "test" / "obama1.jpg", fmr=1e-5)[0]
    loose = knn_lens.identify(knn_root / "test" / "obama1.jpg", fmr=1e-2)[0]
    assert strict.threshold > loose.threshold
    assert strict.fmr == 1e-5 and loose.fmr == 1e-2
    raw = knn_lens.identify(knn_root / "test" / "obama1.jpg", threshold=loose.threshold)[0]
    assert raw.fmr == pytest.approx(1e-2, rel=0.05)
    with pytest.raises(CalibrationError, match="below what"):
        knn_lens.identify(knn_root / "test" / "obama1.jpg", fmr=1e-12)


def test_verify_same_and_different(knn_lens: FaceLens, knn_root: Path) -> None:
    obama = sorted((knn_root / "train" / "obama").iterdir())
    biden = sorted((knn_root / "train" / "biden").iterdir())
    same = knn_lens.verify(obama[0], obama[1])
    different = knn_lens.verify(obama[0], biden[0])
    assert same.same and same.score > same.threshold
    assert not different.same and different.score < different.threshold
    assert same.fmr == different.fmr == pytest.approx(1e-4)


def test_verify_without_a_face_says_so(knn_lens: FaceLens, knn_root: Path) -> None:
    import numpy as np

    with pytest.raises(NoFaceError, match="no face"):
        knn_lens.verify(
            np.full((200, 200, 3), 90, np.uint8), next((knn_root / "train" / "obama").iterdir())
        )
