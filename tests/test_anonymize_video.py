"""Anonymization of the real clips in ../shared/data/videos (skipped when absent).

After anonymization, in **every frame of every clip**: the independent
detector (CenterFace) finds no face at all, and the recognizer (YuNet + SFace,
with both named people enrolled from the first second of their clips)
identifies nobody, inside or outside the hidden regions. The audio track is
copied packet for packet, and size, frame rate and frame count are kept.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from facelens.api import FaceLens
from facelens.apps.anonymize import Anonymizer
from facelens.apps.video.anonymize import anonymize_video
from facelens.privacy.policy import Policy
from facelens.video import open_video
from tests.conftest import data_path

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

NAMED = {
    "WDA_AlexandriaOcasioCortez_000.mp4": "Alexandria Ocasio-Cortez",
    "WDA_KatieHill_000.mp4": "Katie Hill",
}
CLIPS = [
    "WDA_AlexandriaOcasioCortez_000.mp4",
    "WDA_KatieHill_000.mp4",
    "d0.mp4",
    "d3.mp4",
    "d9.mp4",
    "d12.mp4",
    "d18.mp4",
    "d19.mp4",
    "d20.mp4",
]


def clip_path(name: str) -> Path:
    found = sorted(data_path("videos").rglob(name))
    if not found:
        pytest.skip(f"{name} not found under {data_path('videos')}")
    return found[0]


@pytest.fixture(scope="module")
def lens(tmp_path_factory: pytest.TempPathFactory) -> FaceLens:
    """Both named people enrolled from frames of the first second of their own clip.

    Frames are searched at their own size (512 px): the recognizer attacks the
    output at the resolution it was made in.
    """
    gallery = tmp_path_factory.mktemp("gallery") / "people.db"
    lens = FaceLens(gallery=gallery, max_side=512)
    for clip, name in NAMED.items():
        with open_video(clip_path(clip), end=1.0, every=5) as reader:
            frames = [frame.pixels for frame in reader]
        report = lens.enroll(name, frames)
        assert len(report.accepted) >= 3, report
    return lens


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def video_shape(path: Path) -> tuple[int, int, float, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return stream.width, stream.height, float(stream.average_rate or 0), frames


@pytest.mark.parametrize("clip", CLIPS)
def test_nobody_found_or_identified_after_anonymization(
    clip: str, lens: FaceLens, tmp_path: Path
) -> None:
    source = clip_path(clip)
    anonymizer = Anonymizer(
        lens.pipeline,
        lens.operating_point(),
        lens.calibration,
        gallery=lens.gallery.template_matrix(),
    )
    output = tmp_path / clip
    report = anonymize_video(anonymizer, source, output, check_every=1)
    assert report.ok, report.error
    data = report.to_dict()
    check = data["check"]
    frames = video_shape(source)[3]
    assert check["frames_checked"] == frames == data["frames"]  # every frame was checked
    assert data["tracks_anonymized"] >= 1 and data["frames_touched"] > 0
    independent = check["independent_detector"]
    assert independent["faces_in_anonymized_regions"] == 0, independent
    assert independent["faces_outside_anonymized_regions"] == 0, independent
    recognizer = check["recognizer"]
    assert recognizer["faces_reidentified"] == 0, recognizer
    assert recognizer["identified_outside_anonymized_regions"] == {}, recognizer
    assert video_shape(output) == video_shape(source)
    assert audio_packets(output) == audio_packets(source)


def test_keep_leaves_the_consenting_person_identifiable(lens: FaceLens, tmp_path: Path) -> None:
    """--keep "Katie Hill": her clip stays as it was, and the recognizer still knows her."""
    source = clip_path("WDA_KatieHill_000.mp4")
    anonymizer = Anonymizer(
        lens.pipeline,
        lens.operating_point(),
        lens.calibration,
        policy=Policy.make(keep=["Katie Hill"]),
        gallery=lens.gallery.template_matrix(),
    )
    report = anonymize_video(anonymizer, source, tmp_path / "kept.mp4", check_every=10)
    assert report.ok, report.error
    data = report.to_dict()
    assert data["tracks_anonymized"] == 0 and data["frames_touched"] == 0
    assert {t["identity"] for t in data["tracks"]} == {"Katie Hill"}
    identified = data["check"]["recognizer"]["identified_outside_anonymized_regions"]
    assert identified.get("Katie Hill", 0) >= 0.9 * data["check"]["frames_checked"]
