"""Tracking and identification on the real clips of the shared data folder.

* Each single-person clip ``d*.mp4`` (strong head motion and expressions)
  yields one dominant track that covers at least 90% of the frames where a
  face is visible. "Visible" is decided independently of the video pipeline:
  the photo-grade search (the default ``FacePipeline``, frames enlarged up to
  2x as photos are) finds a face there; the video pipeline searches frames at
  their own size. To keep the test affordable the reference is computed on
  every 3rd frame. A visible frame is covered when the dominant track was
  detected there, or the frame falls in a gap of at most ``max_gap`` seconds
  between two of its detections (the track lives on there with the same id).
* On the two named talking-head clips, the person is enrolled from frames of
  the first second and identified for the rest of the clip; the other person
  is never identified as them.
* The audio of a real clip survives ``--draw``: same codec, sample rate,
  duration and packet bytes.

Skipped when ``$FACELENS_DATA`` (default ``../shared/data``) has no videos.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facelens.api import FaceLens
from facelens.apps.video.results import VideoIdentification
from facelens.io.image import DecodedImage
from facelens.pipeline.faces import FacePipeline
from facelens.video import open_video, probe_video
from facelens.video.tracker import DEFAULT_MAX_GAP
from tests.conftest import data_path
from tests.test_video import audio_summary

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

SINGLE_PERSON = ["d0", "d3", "d9", "d12", "d18", "d19", "d20"]
NAMED = {"AOC": "WDA_AlexandriaOcasioCortez_000.mp4", "KatieHill": "WDA_KatieHill_000.mp4"}
REFERENCE_STEP = 3


def find_clip(name: str) -> Path:
    root = data_path("videos")
    found = sorted(root.rglob(name))
    if not found:
        pytest.skip(f"{name} not found under {root}")
    return found[0]


def visible_frames(clip: Path, pipeline: FacePipeline) -> set[int]:
    """Indices (every REFERENCE_STEP-th frame) where the photo-grade search finds a face."""
    with open_video(clip, every=REFERENCE_STEP) as reader:
        indices: list[int] = []

        def images() -> Iterator[DecodedImage]:
            for frame in reader:
                indices.append(frame.index)
                yield frame.as_image()

        visible = set()
        for result in pipeline.detect_many(images(), embed=False):
            index = indices.pop(0)
            if result.faces:
                visible.add(index)
    return visible


def covered(frame: int, detected: list[int], fps: float) -> bool:
    """Detected there, or inside a gap of at most max_gap seconds between two detections."""
    position = int(np.searchsorted(detected, frame))
    if position < len(detected) and detected[position] == frame:
        return True
    if position == 0 or position == len(detected):
        return False
    return (detected[position] - detected[position - 1]) / fps <= DEFAULT_MAX_GAP


@pytest.fixture(scope="module")
def lens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaceLens]:
    with FaceLens(gallery=tmp_path_factory.mktemp("video-real") / "empty.db") as lens:
        yield lens


@pytest.mark.parametrize("name", SINGLE_PERSON)
def test_single_person_clip_has_one_dominant_track(
    name: str, lens: FaceLens, pipeline: FacePipeline
) -> None:
    clip = find_clip(f"{name}.mp4")
    visible = visible_frames(clip, pipeline)
    assert visible, "the reference search finds no face at all"
    result = lens.identify_video(clip)
    assert result.complete and result.tracks
    dominant = max(result.tracks, key=lambda t: t.frames_detected)
    fps = float(result.info.fps)
    detected = sorted(dominant.detected_frames)
    coverage = sum(covered(f, detected, fps) for f in visible) / len(visible)
    assert coverage >= 0.9, (
        f"{name}: the dominant track covers {coverage:.1%} of {len(visible)} visible frames; "
        f"tracks {[(t.track_id, t.first_frame, t.last_frame) for t in result.tracks]}"
    )
    others = sum(t.frames_detected for t in result.tracks if t is not dominant)
    assert others <= 0.1 * dominant.frames_detected  # one person, so one dominant track


def enroll_first_second(lens: FaceLens, name: str, clip: Path) -> None:
    with open_video(clip, end=0.999, every=5) as reader:
        frames = [frame.pixels for frame in reader]
    report = lens.enroll(name, frames)
    assert sum(o.accepted for o in report.outcomes) >= 3, report


@pytest.fixture(scope="module")
def named_gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("named") / "people.db"
    with FaceLens(gallery=path) as lens:
        for name, file in NAMED.items():
            enroll_first_second(lens, name, find_clip(file))
    return path


def rest_of_clip(gallery: Path, file: str) -> VideoIdentification:
    with FaceLens(gallery=gallery) as lens:
        return lens.identify_video(find_clip(file), start=1.0, every=2)


@pytest.mark.parametrize("name", list(NAMED))
def test_named_person_identified_for_the_rest_of_the_clip(name: str, named_gallery: Path) -> None:
    other = next(n for n in NAMED if n != name)
    result = rest_of_clip(named_gallery, NAMED[name])
    assert result.tracks
    dominant = max(result.tracks, key=lambda t: t.frames_detected)
    assert dominant.identity == name
    assert dominant.first_time <= 1.2 and dominant.last_time >= result.info.duration - 0.3  # type: ignore[operator]
    assert dominant.frames_detected >= 0.9 * result.frames_processed
    assert dominant.decision.match.llr is not None and dominant.decision.match.llr > 3
    assert all(t.identity != other for t in result.tracks)
    assert all(min(t.decision.frames) >= 25 for t in result.tracks)  # decided after second 1


@pytest.mark.parametrize("name", list(NAMED))
def test_other_person_is_not_identified_as_the_enrolled_one(name: str, tmp_path: Path) -> None:
    """Only ``name`` enrolled: the other clip's tracks stay unknown (open set)."""
    other = next(n for n in NAMED if n != name)
    with FaceLens(gallery=tmp_path / "one.db") as lens:
        enroll_first_second(lens, name, find_clip(NAMED[name]))
    result = rest_of_clip(tmp_path / "one.db", NAMED[other])
    assert result.tracks and all(t.identity is None for t in result.tracks)
    best = max(t.decision.match.score for t in result.tracks)
    assert best < result.threshold


def test_audio_of_a_real_clip_survives_draw(tmp_path: Path, lens: FaceLens) -> None:
    clip = find_clip("d12.mp4")
    source = probe_video(clip)
    assert source.has_audio, "d12.mp4 is expected to carry an AAC track"
    drawn = tmp_path / "d12-drawn.mp4"
    lens.identify_video(clip, every=5, draw_to=drawn)
    out = probe_video(drawn)
    assert (out.width, out.height, out.fps, out.frame_count) == (
        source.width,
        source.height,
        source.fps,
        source.frame_count,
    )
    assert audio_summary(drawn) == audio_summary(clip)
