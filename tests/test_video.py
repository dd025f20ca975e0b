"""Video in/out, tracking and per-track identity on videos the tests make themselves.

The synthetic clip: scikit-image's astronaut (public domain, NASA) pasted on a
grey background and moving left to right, with frames where a grey block hides
the face (an occlusion), and an AAC tone as its audio track. Nothing here
needs the shared data folder.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facelens.api import FaceLens
from facelens.cli.main import cli
from facelens.errors import FaceLensError, VideoOpenError, VideoWriteError
from facelens.types import Box, Face, Quality, Template
from facelens.video import (
    FaceTracker,
    VideoFrame,
    VideoWriter,
    open_video,
    probe_video,
)
from facelens.video.reader import STILL_IMAGE

WIDTH, HEIGHT, FPS = 480, 320, 25
FACE_SIZE = 150
SAMPLE_RATE = 44100


def astronaut_head() -> np.ndarray:
    """The astronaut's head and shoulders, 150x150 RGB."""
    from skimage import data

    return cv2.resize(data.astronaut()[0:300, 100:400], (FACE_SIZE, FACE_SIZE), cv2.INTER_AREA)


def synthetic_frames(
    count: int = 50, hidden: frozenset[int] = frozenset(), with_face: bool = True
) -> list[np.ndarray]:
    """RGB frames: the head moving right by 6 px a frame; frames in ``hidden`` have it covered.

    A red square in the top-left corner marks the colour order.
    """
    head = astronaut_head()
    frames = []
    for index in range(count):
        canvas = np.full((HEIGHT, WIDTH, 3), 70, np.uint8)
        canvas[4:24, 4:24] = (255, 0, 0)
        if with_face:
            x = 10 + (6 * index) % (WIDTH - FACE_SIZE - 20)  # wraps after 52 frames
            canvas[80 : 80 + FACE_SIZE, x : x + FACE_SIZE] = head
            if index in hidden:
                canvas[60:250, max(0, x - 10) : x + FACE_SIZE + 10] = 70
        frames.append(canvas)
    return frames


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    fps: int = FPS,
    audio: bool = True,
    faststart: bool = False,
    gop: int | None = None,
) -> Path:
    """Encode ``frames`` as H.264 (and a 440 Hz AAC tone as long as the video) with PyAV."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        x264 = {"crf": "18", "preset": "veryfast", **({"g": str(gop)} if gop else {})}
        video = out.add_stream("libx264", rate=fps, options=x264)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        sound = out.add_stream("aac", rate=SAMPLE_RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for pixels in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            total = round(len(frames) / fps * SAMPLE_RATE)
            t = np.arange(total) / SAMPLE_RATE
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, total, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    tone[None, start : start + 1024], format="flt", layout="mono"
                )
                chunk.sample_rate = SAMPLE_RATE
                chunk.pts = start
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


def audio_summary(path: Path) -> dict[str, object]:
    """The first audio stream: codec, sample rate, duration (s), and every packet's bytes."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.size]
        end = packets[-1]
        return {
            "codec": stream.codec_context.name,
            "sample_rate": stream.codec_context.sample_rate,
            "channels": stream.codec_context.channels,
            "duration": round(float((end.pts + end.duration) * end.time_base), 3),
            "packets": [bytes(p) for p in packets],
        }


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 frames (2 s), the face hidden in frames 20-24, with audio."""
    path = tmp_path_factory.mktemp("video") / "astronaut.mp4"
    return write_clip(path, synthetic_frames(50, hidden=frozenset(range(20, 25))))


# -- reading -------------------------------------------------------------------------------


def test_reader_yields_rgb_frames_with_index_and_time(clip: Path) -> None:
    with open_video(clip) as reader:
        info = reader.info
        frames = list(reader)
    assert (info.width, info.height, info.fps, info.kind) == (WIDTH, HEIGHT, Fraction(FPS), "file")
    assert info.has_audio and info.audio_codec == "aac" and info.audio_sample_rate == SAMPLE_RATE
    assert [f.index for f in frames] == list(range(50))
    assert frames[0].time == 0.0
    assert frames[10].time == pytest.approx(10 / FPS, abs=1e-6)
    first = frames[0].pixels
    assert first.dtype == np.uint8 and first.shape == (HEIGHT, WIDTH, 3)
    red = first[8:20, 8:20].reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60  # RGB, not BGR
    assert reader.complete and not reader.problems


def test_yuv_frames_match_the_rgb_frames(clip: Path) -> None:
    """The planar frames anonymization reads: same indices and times, the same picture."""
    with open_video(clip) as reader:
        rgb = list(reader)
    with open_video(clip, every=2) as reader:
        yuv = list(reader.yuv_frames())
    assert [(f.index, f.time) for f in yuv] == [(f.index, f.time) for f in rgb[::2]]
    first = yuv[0]
    assert first.yuv.shape == (HEIGHT * 3 // 2, WIDTH) and (first.width, first.height) == (
        WIDTH,
        HEIGHT,
    )
    difference = np.abs(first.rgb().astype(int) - rgb[0].pixels.astype(int))
    assert difference.mean() < 2.0  # OpenCV's and FFmpeg's conversions differ by rounding


def test_writer_encodes_yuv_frames_in_the_background(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "planar.mp4"
    with open_video(clip) as reader, VideoWriter.like(out, reader, background=True) as writer:
        for frame in reader.yuv_frames():
            writer.write(frame)
    assert writer.frames == 50
    with open_video(out) as check, open_video(clip) as source:
        pairs = list(zip(check, source, strict=True))
    assert all(a.index == b.index and a.time == pytest.approx(b.time) for a, b in pairs)
    difference = np.abs(pairs[10][0].pixels.astype(int) - pairs[10][1].pixels.astype(int))
    assert difference.mean() < 3.0  # one more generation of H.264 at crf 18
    assert audio_summary(out) == audio_summary(clip)


def test_a_background_writer_raises_its_error_in_the_caller(tmp_path: Path) -> None:
    class BrokenEncoder:  # a disk that fills up, say: FFmpeg refuses the next packet
        pix_fmt = "yuv420p"

        def encode(self, picture: object) -> list[object]:
            raise ValueError("no space left on device")

    writer = VideoWriter(tmp_path / "x.mp4", width=64, height=48, fps=10, background=True)
    writer._stream = BrokenEncoder()
    with pytest.raises(VideoWriteError, match="no space left"):
        for _ in range(3 * 8):  # more than the queue holds: the failure must surface
            writer.write(np.zeros((48, 64, 3), np.uint8))
        writer.close()


def test_sampling_every_and_fps_and_time_window(clip: Path) -> None:
    with open_video(clip, every=3) as reader:
        assert [f.index for f in reader] == list(range(0, 50, 3))
    with open_video(clip, fps=5) as reader:
        assert [f.index for f in reader] == list(range(0, 50, 5))
    with open_video(clip, start=1.0, end=1.5) as reader:
        indices = [f.index for f in reader]
    assert indices == list(range(25, 38))


def test_start_after_a_few_seconds_seeks_and_keeps_indices(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "long.mp4", synthetic_frames(125), gop=25)  # 5 s
    with open_video(path) as reader:
        everything = [(f.index, round(f.time, 4)) for f in reader]
    with open_video(path, start=3.2, every=2) as reader:
        window = [(f.index, round(f.time, 4)) for f in reader]
        assert reader.decoded < 125 - 50  # it jumped instead of decoding from the start
    assert window == [(i, t) for i, t in everything if t >= 3.2 and i % 2 == 0]


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    """A phone-style clip stored landscape with "turn 90 degrees" comes out upright."""
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)
        stored = np.zeros((32, 64, 3), np.uint8)
        stored[:, :8] = 255  # a white band on the left of the stored picture
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with open_video(path) as reader:
        assert (reader.info.width, reader.info.height, reader.info.rotation) == (32, 64, 90)
        frames = list(reader)
    assert len(frames) == 3 and frames[0].pixels.shape == (64, 32, 3)
    # turned 90 degrees counterclockwise: the left band is now at the bottom
    assert frames[0].pixels[-4:].mean() > 200 and frames[0].pixels[:40].mean() < 30


def test_image_sequence_in_natural_order_skips_a_bad_image(tmp_path: Path) -> None:
    frames = synthetic_frames(12)
    for index, pixels in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame{index}.png"), pixels[:, :, ::-1])
    (tmp_path / "frame5.png").write_bytes(b"not a png")
    with open_video(tmp_path, sequence_fps=10) as reader:
        got = list(reader)
        assert reader.info.kind == "sequence" and reader.info.fps == 10
    assert [f.index for f in got] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]  # frame10 after frame9
    assert got[-1].time == pytest.approx(1.1)
    assert np.array_equal(got[7].pixels, frames[8])
    assert any("frame 5" in p for p in reader.problems)
    assert not reader.complete  # a frame is missing: the commands exit 1
    with open_video(str(tmp_path / "frame1*.png")) as reader:
        assert [f.index for f in reader] == [0, 1, 2]  # frame1, frame10, frame11
        assert reader.complete


def test_missing_or_non_video_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoOpenError, match="no such file"):
        open_video(tmp_path / "absent.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    with pytest.raises(VideoOpenError) as refused:
        open_video(text)
    # FFmpeg's reason without its error number and without the path said twice
    assert (
        str(refused.value)
        == f"{text}: cannot open as a video (Invalid data found when processing input)"
    )
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoOpenError, match=r"empty.mp4: the file is empty \(0 bytes\)"):
        open_video(tmp_path / "empty.mp4")
    with pytest.raises(VideoOpenError, match="no image files"):
        open_video(tmp_path / "*.png")
    with pytest.raises(FaceLensError):
        open_video("rtsp://127.0.0.1:9/none")  # nothing listens on the discard port


def test_truncated_file_gives_the_frames_before_the_cut(clip: Path, tmp_path: Path) -> None:
    whole = write_clip(tmp_path / "whole.mp4", synthetic_frames(50), faststart=True)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with open_video(cut) as reader:
        frames = list(reader)
    assert 0 < len(frames) < 50
    assert not reader.complete
    assert reader.problems and "truncated" in reader.problems[0]
    # a time limit past the cut (the service reads up to its --max-video-seconds) still says so
    with open_video(cut, end=600.0) as reader:
        assert len(list(reader)) == len(frames)
    assert not reader.complete and "truncated" in reader.problems[0]
    # ... and one before the cut reads its window whole
    with open_video(cut, end=0.1) as reader:
        assert len(list(reader)) >= 1
    assert reader.complete and not reader.problems
    # without the index at the front, a cut file cannot be opened at all: a clear error
    plain = clip.read_bytes()
    headless = tmp_path / "headless.mp4"
    headless.write_bytes(plain[: len(plain) // 2])
    with pytest.raises(VideoOpenError):
        open_video(headless)


def test_a_photo_or_bytes_named_like_one_are_refused_as_a_video(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    """FFmpeg opens a JPEG, or any bytes named .jpg, as a one-frame "video" (that cannot even be
    rewound): refused when opened, with the commands that read photos named."""
    photo = tmp_path / "portrait.jpg"
    Image.fromarray(astronaut).save(photo)
    png = tmp_path / "portrait.png"
    Image.fromarray(astronaut).save(png)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"hello")
    for path in (photo, png, junk):
        with pytest.raises(VideoOpenError) as refused:
            open_video(path)
        assert str(refused.value) == f"{path}: {STILL_IMAGE}"


def test_cli_analyze_video_on_a_truncated_file_warns_and_exits_1(tmp_path: Path) -> None:
    whole = write_clip(tmp_path / "whole.mp4", synthetic_frames(50), faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    run = CliRunner().invoke(
        cli, ["--gallery", str(tmp_path / "g.db"), "analyze-video", str(cut), "--json"]
    )
    assert run.exit_code == 1
    data = json.loads(run.stdout)[0]
    assert data["complete"] is False and "truncated" in data["problems"][0]
    assert 0 < data["frames_processed"] < 50


@pytest.fixture()
def http_server(clip: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_http_stream_is_read_through_a_bounded_queue(http_server: str) -> None:
    with open_video(http_server, queue_size=3) as reader:
        assert reader.info.kind == "stream" and reader.info.live
        assert reader.policy == "block"
        frames = list(reader)
    assert [f.index for f in frames] == list(range(50))  # block: nothing lost
    with open_video(http_server, queue_size=2, policy="drop") as reader:
        kept = []
        for frame in reader:
            kept.append(frame.index)
            cv2.GaussianBlur(frame.pixels, (31, 31), 0)  # a consumer slower than decoding
    assert kept == sorted(set(kept))
    assert len(kept) + reader.dropped == reader.decoded == 50


# -- writing -------------------------------------------------------------------------------


def test_writer_keeps_size_rate_and_audio_packets(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.mp4"
    with open_video(clip) as reader, VideoWriter.like(out, reader) as writer:
        for frame in reader:
            writer.write(frame)
    assert writer.frames == 50 and not writer.problems
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.frame_count) == (WIDTH, HEIGHT, FPS, 50)
    assert audio_summary(out) == audio_summary(clip)  # the very same bytes, same timing


@pytest.mark.parametrize(
    ("suffix", "audio_codec"),
    [(".mkv", "aac"), (".mov", "aac"), (".avi", "aac"), (".webm", "opus")],
)
def test_writer_other_containers(clip: Path, tmp_path: Path, suffix: str, audio_codec: str) -> None:
    out = tmp_path / f"copy{suffix}"
    with open_video(clip, every=2) as reader, VideoWriter.like(out, reader) as writer:
        for frame in reader:
            writer.write(frame)
    with open_video(out) as check:
        assert (check.info.width, check.info.height) == (WIDTH, HEIGHT)
        assert check.info.audio_codec == audio_codec
        times = [f.time for f in check]
    assert len(times) == 25 and times[1] == pytest.approx(2 / FPS, abs=0.002)  # timing kept
    assert bool(writer.problems) == (suffix == ".webm")  # AAC re-encoded only for WEBM
    summary = audio_summary(out)
    assert abs(float(summary["duration"]) - 2.0) < 0.1  # type: ignore[arg-type]


def test_writer_of_a_time_window_starts_at_zero_with_its_audio(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "window.mp4"
    with open_video(clip, start=0.8, end=1.6) as reader, VideoWriter.like(out, reader) as writer:
        for frame in reader:
            writer.write(frame)
    with open_video(out) as check:
        times = [f.time for f in check]
    assert len(times) == 21 and times[0] == 0.0
    summary = audio_summary(out)
    assert abs(float(summary["duration"]) - 0.84) < 0.1  # type: ignore[arg-type]
    source_packets = audio_summary(clip)["packets"]
    assert set(summary["packets"]) <= set(source_packets)  # type: ignore[arg-type]


def test_writer_refuses_frames_of_another_size(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "x.mp4", width=64, height=48, fps=10) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(VideoWriteError, match="expected"):
            writer.write(np.zeros((50, 64, 3), np.uint8))
    assert probe_video(tmp_path / "x.mp4").frame_count == 1


# -- tracking ------------------------------------------------------------------------------


def _face(x: float, y: float, size: float = 60, vector: np.ndarray | None = None) -> Face:
    quality = Quality(0.9, (), size / 2, 100.0, 0.0, 0.95)
    template = Template(vector.astype(np.float32), "test") if vector is not None else None
    landmarks = np.zeros((5, 2), np.float32)
    return Face(Box(x, y, size, size), landmarks, 0.95, quality, template)


def test_tracker_keeps_one_id_through_a_short_occlusion() -> None:
    tracker = FaceTracker(max_gap=0.5)
    seen: dict[int, list[int]] = {}
    for index in range(40):
        time = index / 25
        faces = [] if 15 <= index < 22 else [_face(10 + 8 * index, 50)]  # 7 frames hidden
        for tracked in tracker.update(index, time, faces):
            seen.setdefault(tracked.track_id, []).append(index)
            if not faces:
                assert not tracked.detected  # reported at its predicted box
                assert tracked.box.x == pytest.approx(10 + 8 * index, abs=2)  # constant velocity
    tracks = tracker.finish()
    assert len(tracks) == 1 and tracks[0].length == 33
    assert seen[tracks[0].id] == list(range(40))
    # between detections, the box is interpolated
    box = tracks[0].box_at(18 / 25)
    assert box is not None and box.x == pytest.approx(10 + 8 * 18, abs=0.5)
    assert tracks[0].box_at(50 / 25) is None and tracks[0].box_at(40 / 25, hold=0.2) is not None


def test_tracker_separates_faces_and_ends_stale_tracks() -> None:
    tracker = FaceTracker(max_gap=0.3)
    for index in range(10):
        tracker.update(index, index / 25, [_face(20, 20), _face(300, 20)])
    for index in range(30, 35):  # 0.8 s later: longer than max_gap
        tracker.update(index, index / 25, [_face(20, 20)])
    tracks = tracker.finish()
    assert [t.length for t in tracks] == [10, 10, 5]
    assert tracks[2].first.frame_index == 30


def test_tracker_relinks_by_appearance_after_a_jump() -> None:
    """A face that reappears away from its predicted box (no overlap) is linked by its
    template; a different face at the same place starts a new track."""
    rng = np.random.default_rng(0)
    alice, bob = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 16)))

    def embed(faces: list[Face]) -> list[Face]:
        return faces  # the faces already carry templates

    tracker = FaceTracker(max_gap=1.0, embed=embed)
    for index in range(5):
        tracker.update(index, index / 25, [_face(100, 100, vector=alice)])
    tracker.update(10, 10 / 25, [_face(160, 100, vector=alice)])  # jumped by one box width
    tracker.update(20, 20 / 25, [_face(100, 100, vector=bob)])
    tracks = tracker.finish()
    assert [t.length for t in tracks] == [6, 1]
    assert tracker.relinked == 1


# -- identification ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut_gallery(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("gallery") / "people.db"
    with FaceLens(gallery=path) as lens:
        report = lens.enroll("astronaut", [astronaut])
        assert report.person is not None
    return path


def test_identify_video_one_track_one_decision(clip: Path, astronaut_gallery: Path) -> None:
    with FaceLens(gallery=astronaut_gallery) as lens:
        result = lens.identify_video(clip)
    assert result.frames_processed == 50 and result.complete
    assert result.frames_with_faces >= 40  # 5 frames are hidden
    assert len(result.tracks) == 1
    track = result.tracks[0]
    assert track.identity == "astronaut"
    assert track.first_frame <= 2 and track.last_frame >= 47  # one id across the occlusion
    decision = track.decision
    assert len(decision.frames) == 5 and decision.match.llr is not None and decision.match.llr > 2
    assert decision.match.score_fmr is not None and decision.match.score_fmr < 1e-4
    assert result.faces_embedded < 10  # not one embedding per frame
    data = result.to_dict()
    json.dumps(data)
    assert data["tracks"][0]["identity"] == "astronaut" and data["people"] == ["astronaut"]
    person = data["by_person"]["astronaut"]
    assert person["tracks"] == [track.track_id] and 1.7 < person["seconds_on_screen"] <= 1.96


def test_identify_video_gives_each_track_its_expression_over_time(
    clip: Path, astronaut_gallery: Path
) -> None:
    with FaceLens(gallery=astronaut_gallery) as lens:
        plain = lens.identify_video(clip, every=2)
        result = lens.identify_video(clip, every=2, expressions=True)
    assert "expressions" not in plain.to_dict()["tracks"][0]  # only when asked for
    track = result.to_dict()["tracks"][0]
    segments = track["expressions"]
    assert track["identity"] == "astronaut" and segments
    assert segments == sorted(segments, key=lambda s: s["start"])
    assert segments[0]["start"] >= track["first_time"] - 1e-3
    assert segments[-1]["end"] <= track["last_time"] + 1e-3
    longest = max(segments, key=lambda s: s["end"] - s["start"])
    assert longest["label"] == "happy"  # she smiles in every frame


def test_identify_video_without_faces_or_gallery_is_well_formed(
    tmp_path: Path, astronaut_gallery: Path
) -> None:
    empty = write_clip(tmp_path / "empty.mp4", synthetic_frames(20, with_face=False), audio=False)
    with FaceLens(gallery=astronaut_gallery) as lens:
        result = lens.identify_video(empty, every=2)
    assert result.frames_processed == 10 and result.tracks == [] and result.complete
    assert result.to_csv().count("\n") == 1  # the header only
    with FaceLens(gallery=tmp_path / "new.db") as lens:
        result = lens.identify_video(write_clip(tmp_path / "f.mp4", synthetic_frames(10)))
    assert len(result.tracks) == 1 and result.tracks[0].identity is None
    assert result.tracks[0].decision.reason == "the gallery is empty"


def test_cli_video_identify_writes_json_csv_png_and_a_drawing_with_audio(
    clip: Path, astronaut_gallery: Path, tmp_path: Path
) -> None:
    csv_path, png, drawn = tmp_path / "t.csv", tmp_path / "t.png", tmp_path / "drawn.mp4"
    run = CliRunner().invoke(
        cli,
        [
            "--gallery",
            str(astronaut_gallery),
            "video",
            "identify",
            str(clip),
            "--every",
            "2",
            "--json",
            "--csv",
            str(csv_path),
            "--timeline-png",
            str(png),
            "--draw",
            str(drawn),
        ],
    )
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert data["frames_processed"] == 25 and data["people"] == ["astronaut"]
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("track_id,identity,first_time_s") and ",astronaut," in rows[1]
    assert png.read_bytes()[:4] == b"\x89PNG"
    info = probe_video(drawn)
    assert (info.width, info.height, info.fps, info.frame_count) == (WIDTH, HEIGHT, FPS, 50)
    assert audio_summary(drawn) == audio_summary(clip)
    with open_video(drawn, start=0.4, end=0.4) as reader:
        frame: VideoFrame = next(iter(reader))
    # the box is drawn in the "known" green around the face (x = 10 + 6 * 10 at frame 10)
    green = np.all(np.abs(frame.pixels.astype(int) - (40, 200, 40)) < 60, axis=2)
    assert green[:, 60:230].sum() > 200 and green[:, 300:].sum() == 0


def test_cli_video_identify_reports_a_missing_file(astronaut_gallery: Path, tmp_path: Path) -> None:
    run = CliRunner().invoke(
        cli,
        ["--gallery", str(astronaut_gallery), "video", "identify", str(tmp_path / "nope.mp4")],
    )
    assert run.exit_code == 1 and "no such file" in run.output


def test_cli_video_identify_on_a_truncated_file_gives_json_and_exit_1(
    astronaut_gallery: Path, tmp_path: Path
) -> None:
    whole = write_clip(tmp_path / "whole.mp4", synthetic_frames(50), faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    run = CliRunner().invoke(
        cli, ["--gallery", str(astronaut_gallery), "video", "identify", str(cut), "--json"]
    )
    assert run.exit_code == 1
    data = json.loads(run.stdout)
    assert data["complete"] is False and "truncated" in data["problems"][0]
    assert 0 < data["frames_processed"] < 50
    assert data["people"] == ["astronaut"]  # what was decoded is still analysed


def test_identify_a_stream_reports_each_track_as_it_is_decided(
    http_server: str, astronaut_gallery: Path, tmp_path: Path
) -> None:
    decided = []
    with FaceLens(gallery=astronaut_gallery) as lens:
        result = lens.identify_video(http_server, every=2, on_track=decided.append)
        assert result.info.live and result.frames_processed == 25
        assert [t.identity for t in decided] == ["astronaut"] and decided == result.tracks
        # a live source is drawn as it is processed, with provisional labels
        drawn = tmp_path / "live.mp4"
        live = lens.identify_video(http_server, every=2, draw_to=drawn)
    assert live.drawn == str(drawn) and [t.identity for t in live.tracks] == ["astronaut"]
    with open_video(drawn) as reader:
        frames = list(reader)
    assert len(frames) == 25 and frames[-1].time == pytest.approx(48 / FPS, abs=0.01)
    green = np.all(np.abs(frames[-1].pixels.astype(int) - (40, 200, 40)) < 60, axis=2)
    assert green.sum() > 200  # labelled as known once decided


def test_tracker_keeps_ids_of_two_faces_that_cross() -> None:
    """Two faces on the same row pass each other; constant-velocity prediction keeps them
    apart (IoU with the last box alone would swap them where they overlap)."""
    tracker = FaceTracker()
    for index in range(30):
        left_to_right = _face(20 + 12 * index, 100)
        right_to_left = _face(380 - 12 * index, 104)
        tracker.update(index, index / 25, [left_to_right, right_to_left])
    tracks = tracker.finish()
    assert len(tracks) == 2 and all(t.length == 30 for t in tracks)
    for track in tracks:
        xs = [o.box.x for o in track.observations]
        steps = np.diff(xs)
        assert np.all(steps > 0) or np.all(steps < 0)  # each track kept one direction


def test_sparse_sampling_keeps_one_track(astronaut_gallery: Path, tmp_path: Path) -> None:
    """At 0.7 frames per second the processed frames are 1.4 s apart, more than the tracker's
    default gap: the gap grows with the sampling step, so the face stays one track."""
    still = write_clip(tmp_path / "still.mp4", synthetic_frames(1) * 125, audio=False)  # 5 s
    with FaceLens(gallery=astronaut_gallery) as lens:
        result = lens.identify_video(still, fps=0.7)
    assert result.frames_processed == 4
    assert [t.identity for t in result.tracks] == ["astronaut"]
    assert result.tracks[0].frames_detected == 4


def test_cli_video_info(clip: Path) -> None:
    run = CliRunner().invoke(cli, ["video", "info", str(clip), "--json"])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert (data["width"], data["height"], data["fps"], data["frame_count"]) == (480, 320, 25, 50)
    assert data["has_audio"] and data["audio_codec"] == "aac"


def test_a_missing_webcam_is_a_clear_error() -> None:
    with pytest.raises(VideoOpenError, match="webcam 97"):
        open_video("97")


def test_frames_above_the_pixel_limit_are_refused(clip: Path) -> None:
    with pytest.raises(VideoOpenError, match="exceed the limit"):
        open_video(clip, max_pixels=100_000)  # 480x320 = 153,600
