"""Expression along video tracks: smoothing, and the timeline on real faces.

Always-on: smoothing on made-up score sequences, and a short image-sequence
video made from the astronaut portrait. Shared clips skip when absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facelens.analysis.smoothing import (
    DEFAULT_WINDOW_SECONDS,
    TrackSmoother,
    label_flips,
    label_runs,
    smooth_scores,
)
from facelens.apps.video.charts import expression_timeline_png
from facelens.apps.video.expressions import analyze_video_expressions
from facelens.cli.main import cli
from facelens.pipeline.faces import FacePipeline
from tests.conftest import data_path

FPS = 25.0


def flickering_scores(frames: int = 100, every: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 most likely, except one frame in ``every`` where class 1 wins narrowly."""
    times = np.arange(frames) / FPS
    scores = np.tile(np.array([0.6, 0.4], dtype=np.float32), (frames, 1))
    scores[::every] = [0.45, 0.55]
    return times, scores


def test_centred_window_removes_flicker_and_keeps_probabilities() -> None:
    times, scores = flickering_scores()
    smoothed = smooth_scores(times, scores, 0.32)
    raw_labels, smooth_labels = scores.argmax(1), smoothed.argmax(1)
    assert label_flips(list(raw_labels)) > 20
    assert label_flips(list(smooth_labels)) == 0
    assert np.allclose(smoothed.sum(1), 1.0, atol=1e-6)
    assert np.array_equal(smooth_scores(times, scores, 0.0), scores)


def test_a_real_change_survives_and_the_trailing_window_lags() -> None:
    times = np.arange(100) / FPS
    scores = np.zeros((100, 2), dtype=np.float32)
    scores[:50, 0] = scores[50:, 1] = 1.0  # the expression changes at 2.0 s
    centred = smooth_scores(times, scores, 0.8).argmax(1)
    trailing = smooth_scores(times, scores, 0.8, centred=False).argmax(1)
    assert label_flips(list(centred)) == label_flips(list(trailing)) == 1
    change_centred = times[int(np.argmax(centred == 1))]
    change_trailing = times[int(np.argmax(trailing == 1))]
    assert change_centred == pytest.approx(2.0, abs=0.05)
    assert change_trailing == pytest.approx(2.0 + 0.4, abs=0.05)  # half the window late


def test_online_smoother_matches_the_offline_trailing_window() -> None:
    times, scores = flickering_scores()
    smoother = TrackSmoother(window=0.5)
    online = np.stack([smoother.update(7, float(t), s) for t, s in zip(times, scores, strict=True)])
    assert np.allclose(online, smooth_scores(times, scores, 0.5, centred=False), atol=1e-6)
    smoother.end(7)
    assert smoother.tracks == []


def test_label_runs() -> None:
    assert label_runs([0.0, 0.1, 0.2, 0.3], ["a", "a", "b", "b"]) == [
        ("a", 0.0, 0.1, 0),
        ("b", 0.2, 0.3, 2),
    ]


def test_timeline_on_a_made_up_video_of_a_smiling_face(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(8):  # the face drifts a little to the right, frame by frame
        shifted = np.roll(astronaut, 3 * index, axis=1)
        Image.fromarray(shifted).save(frames / f"frame_{index:03d}.png")
    result = analyze_video_expressions(frames, FacePipeline(max_upscale=1.0))
    assert result.frames_processed == 8
    [track] = result.tracks
    assert len(track.times) == 8 and track.labels == ["happy"] * 8
    [segment] = track.segments()
    assert segment.label == "happy" and segment.start == 0.0
    assert segment.frames == 8 and segment.agreement == 1.0
    assert segment.confidence == pytest.approx(float(track.scores[:, 3].mean()))  # happy's column
    assert 0.5 < segment.confidence <= 1.0
    assert expression_timeline_png(result, tmp_path / "timeline.png").stat().st_size > 1000

    output = CliRunner().invoke(
        cli,
        ["--gallery", str(tmp_path / "g.db"), "analyze-video", str(frames), "--json", "--frames"],
    )
    assert output.exit_code == 0, output.output
    [record] = json.loads(output.stdout)
    [segment_json] = record["tracks"][0]["segments"]
    assert segment_json["label"] == "happy" and segment_json["frames"] == 8
    assert segment_json["confidence"] == pytest.approx(segment.confidence, abs=1e-3)
    assert len(record["tracks"][0]["frames"]) == 8


@pytest.mark.shared_data
def test_smiling_episode_in_a_real_clip() -> None:
    """d0.mp4: a woman turns from neutral to a smile and back (measured: happy 0.8-2.7 s)."""
    clip = data_path("videos/KwaiVGI+LivePortrait/assets/examples/driving/d0.mp4")
    result = analyze_video_expressions(clip, FacePipeline(max_upscale=1.0))
    assert result.window == DEFAULT_WINDOW_SECONDS
    [track] = result.tracks
    happy = [s for s in track.segments() if s.label == "happy"]
    assert happy and max(s.end - s.start for s in happy) > 1.0
    assert label_flips(track.labels) <= label_flips(track.raw_labels)
