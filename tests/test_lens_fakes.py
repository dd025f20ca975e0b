"""The logic around the models, with fake models: runs anywhere, in milliseconds.

``FaceLens`` takes a :class:`~facelens.models.base.Detector` and an
:class:`~facelens.models.base.Embedder` as well as registered ids; the fakes
of ``tests/fakes.py`` see synthetic photos, and a deployment calibration
fitted on synthetic people is stored in each gallery. Everything else (decode,
alignment, quality, the gallery, screening, matching, calibration, erasure) is
the real code. What only real faces show stays in the real-data tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facelens import FaceLens
from facelens.apps.enroll import DUPLICATE, MATCHES_OTHER_PERSON
from facelens.errors import CalibrationError, GalleryModelMismatchError, NoFaceError
from facelens.models.base import Detector, Embedder
from tests.fakes import PixelEmbedder, TileDetector, fitted_calibration, photo, png

ADA, BOB = 1, 2  # synthetic people (tests/fakes.py)
STRANGER = 7  # never enrolled


@pytest.fixture
def lens(tmp_path: Path) -> Iterator[FaceLens]:
    detector: Detector = TileDetector()
    embedder: Embedder = PixelEmbedder()
    with FaceLens(gallery=tmp_path / "people.db", detector=detector, embedder=embedder) as lens:
        lens.gallery.store_calibration(fitted_calibration())
        yield lens


def test_a_lens_runs_the_models_it_is_given(lens: FaceLens) -> None:
    assert isinstance(lens.pipeline.detector, TileDetector)
    assert lens.pipeline.embedder_id == "fake-pixel-embedder"
    assert lens.calibration.source.startswith("gallery:")
    faces = lens.detect(photo((ADA, 0), (BOB, 0)))
    assert len(faces) == 2
    assert all(f.quality.usable and f.template is not None for f in faces)
    assert lens.detect(photo()) == []


def test_enrolled_people_are_known_and_strangers_unknown(lens: FaceLens) -> None:
    assert len(lens.enroll("Ada", [photo((ADA, 0)), photo((ADA, 1))]).accepted) == 2
    assert len(lens.enroll("Bob", png(photo((BOB, 0)))).accepted) == 1
    matches = lens.identify(photo((BOB, 5), (STRANGER, 0), (ADA, 5)))
    by_left = sorted(matches, key=lambda m: m.face.box.x)
    assert [m.identity for m in by_left] == ["Bob", None, "Ada"]
    known, unknown = by_left[0], by_left[1]
    assert known.score >= known.threshold > unknown.score
    assert known.candidates[0].name == "Bob"
    assert known.calibration == lens.calibration.source
    assert {p.name: p.templates for p in lens.people()} == {"Ada": 2, "Bob": 1}


def test_verify_says_same_or_different(lens: FaceLens) -> None:
    same = lens.verify(photo((ADA, 0)), photo((ADA, 4)))
    different = lens.verify(photo((ADA, 0)), photo((BOB, 0)))
    assert same.same and same.score >= same.threshold
    assert not different.same and different.score < different.threshold
    with pytest.raises(NoFaceError):
        lens.verify(photo(), photo((ADA, 0)))


def test_erase_forgets_a_person(lens: FaceLens) -> None:
    lens.enroll("Ada", [photo((ADA, 0)), photo((ADA, 1))])
    lens.enroll("Bob", [photo((BOB, 0))])
    assert lens.erase("Ada") == 2
    assert [p.name for p in lens.people()] == ["Bob"]
    (match,) = lens.identify(photo((ADA, 2)))
    assert match.identity is None


def test_the_same_face_twice_is_refused_as_a_duplicate(lens: FaceLens) -> None:
    lens.enroll("Ada", [photo((ADA, 0))])
    again = lens.enroll("Ada", [photo((ADA, 0)), photo((ADA, 1)), photo((ADA, 1))])
    assert [o.code for o in again.outcomes] == [DUPLICATE, None, DUPLICATE]
    assert lens.gallery.get_person("Ada").templates == 2


def test_a_face_of_someone_else_is_held_back_unless_forced(lens: FaceLens) -> None:
    lens.enroll("Ada", [photo((ADA, 0))])
    held = lens.enroll("Bob", [photo((ADA, 3)), photo((BOB, 0))])
    assert [o.code for o in held.outcomes] == [MATCHES_OTHER_PERSON, None]
    assert held.conflicts and len(held.accepted) == 1
    forced = lens.enroll("Bob", [photo((ADA, 3))], force=True)
    assert len(forced.accepted) == 1
    assert lens.gallery.get_person("Bob").templates == 2


def test_one_bad_item_never_sinks_a_batch(lens: FaceLens, tmp_path: Path) -> None:
    lens.enroll("Ada", [photo((ADA, 0))])
    missing = tmp_path / "gone.png"
    results = list(
        lens.identify_many(
            [photo((ADA, 1)), b"not an image", str(missing), photo(), png(photo((ADA, 2)))]
        )
    )
    assert [r.ok for r, _ in results] == [True, False, False, True, True]
    assert results[1][0].error is not None and results[1][0].error.code
    assert results[2][0].error is not None and results[2][0].error.code == "not_found"
    assert results[3][1] == []  # no face: no match, no error
    assert [m.identity for _, ms in results for m in ms] == ["Ada", "Ada"]
    report = lens.enroll("Ada", [b"\x00" * 10, photo((ADA, 4)), photo()])
    assert [o.accepted for o in report.outcomes] == [False, True, False]
    assert report.outcomes[0].code and report.outcomes[2].reason == "no face found"


def test_a_gallery_refuses_another_embedder(lens: FaceLens, tmp_path: Path) -> None:
    lens.enroll("Ada", [photo((ADA, 0))])
    lens.close()
    other = FaceLens(
        gallery=tmp_path / "people.db", detector=TileDetector(), embedder=PixelEmbedder("other")
    )
    with pytest.raises(GalleryModelMismatchError):
        other.people()


def test_the_operating_point_moves_the_threshold(lens: FaceLens) -> None:
    lens.enroll("Ada", [photo((ADA, 0))])
    strict = lens.identify(photo((ADA, 1)), fmr=1e-3)[0]
    loose = lens.identify(photo((ADA, 1)), fmr=1e-1)[0]
    assert loose.threshold < strict.threshold and loose.fmr > strict.fmr
    assert strict.identity == loose.identity == "Ada"
    raw = lens.identify(photo((ADA, 1)), threshold=strict.score + 1e-3)[0]
    assert raw.identity is None  # just above the face's own score
    with pytest.raises(CalibrationError):  # 60 synthetic people cannot support 1e-6
        lens.identify(photo((ADA, 1)), fmr=1e-6)
