"""Anonymize the faces of a video: detect and track, decide per track, hide, check.

Every face is found by the detector on one frame in ``detect_every``
(searching a copy whose longest side is at most ``detect_side`` pixels) and
linked into tracks by :class:`facelens.video.FaceTracker` (by motion, and after
a gap by appearance; by position alone when nothing needs templates: every face
hidden and no check, see :func:`_tracking`). Each hidden track's
box at a frame's time comes from :meth:`facelens.video.Track.box_at`:
interpolated linearly between the detections around it, and held at the
nearest detection's box for ``hold`` frames after its last detection and for
:data:`LEAD_IN_SECONDS` (or ``hold``, the longer) before its first. So the frames
between two detections, the frames where the detector blinked (up to the
tracker's gap of 1 s), and the frames just before a face is found and just
after it is lost are all covered. The box is
grown into the region of :mod:`facelens.privacy.regions` and hidden; the output
keeps the input's size, frame rate and audio (copied packet by packet by
:class:`facelens.video.VideoWriter`).

How the file is read depends on whether a track's fate waits for its end:

* **Every face hidden** (the default mode): **one pass**. Frames are decoded as
  planar YUV (:meth:`facelens.video.VideoReader.yuv_frames`); only the frames
  the detector searches, and the hidden patches, are converted to RGB. A frame
  is written once the detections up to ``lag`` seconds after it are known
  (the tracker's gap + ``hold``, or the lead-in if longer, + one detection
  step: about 1.3 s of video,
  33 frames at 25 fps, held in memory), which is exactly what its regions
  depend on, so the output equals that of the two passes below.
* **``--keep``/``--only``** (or an odd-sized frame): **two passes**. (1) Track
  the whole file; each track gets one identity decision from its best faces
  (:func:`track_decision`). (2) Decode again, hide and write.

Then the **check**: the written file is decoded and attacked with the privacy
check (:mod:`facelens.privacy.check`) on one frame in ``check_every`` (default:
:func:`check_step`, a budget of :data:`CHECK_PIXEL_RATE` pixels per second of
video) and on the last frame; what it skips is written in the report
(``check.skipped``). Every track's best faces
are embedded for it.

**Verified hiding** (on unless the anonymizer's ``verify`` is off): each track
is attacked on the first frame it is detected in, then every
:data:`~facelens.privacy.verify.VERIFY_EVERY_SECONDS`, and sooner where its face has grown
by a quarter since (:data:`~facelens.privacy.verify.VERIFY_AGAIN_GROWN`), by
:class:`facelens.privacy.verify.TrackVerifier` (issued at search time, on the RGB
frame, and run in the verifier's own thread while the next frames are decoded and
searched); a match raises the track's drawing for every frame drawn after the attack
is settled: in one pass, from :data:`SETTLE_AHEAD_SECONDS` before the attacked frame.

``progress`` is told the share of the work done (0 to 1) after every decoded
frame of every pass: each pass (track, hide and write, check) is an equal
share, and within a pass the share is the frame reached over the frames the
container declares.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from facelens.apps.anonymize import LOW_CONFIDENCE, AnonymizationReport, Anonymizer, _review_outside
from facelens.errors import FaceLensError
from facelens.io.image import DecodedImage
from facelens.match.decide import identify_faces
from facelens.models.runtime import using_engine
from facelens.privacy.check import CheckSummary, Thumbnails
from facelens.privacy.methods import anonymize_i420_regions, anonymize_regions
from facelens.privacy.recall import find_faces_to_hide, hiding_detector, search_side
from facelens.privacy.regions import Region, RegionOrigin, anonymization_region
from facelens.privacy.verify import VIDEO_VERIFY_ENGINE, Step, TrackVerifier
from facelens.types import Box, Detection, Face, FloatArray
from facelens.vectors import unit_rows
from facelens.video import (
    FaceTracker,
    Track,
    TrackedFace,
    VideoInfo,
    VideoReader,
    VideoWriter,
    YuvFrame,
    open_video,
    probe_video,
)

__all__ = [
    "DEFAULT_DETECT_EVERY",
    "DEFAULT_DETECT_SIDE",
    "DEFAULT_HOLD",
    "EDGE_HOLD",
    "LEAD_IN_SECONDS",
    "anonymize_video",
    "output_preset",
    "track_box",
]

DEFAULT_HOLD = 5
"""Frames a region stays before a track's first and after its last detection."""
DEFAULT_DETECT_EVERY = 2
"""The detector runs on one frame in this many; regions are interpolated between."""
DEFAULT_DETECT_SIDE = 960
"""Longest side, in pixels, of the copy of a frame the detector searches (frames are
never enlarged): faces from about 10 px at that scale, 14 px in a 1280x720 frame."""
CHECK_PIXEL_RATE = 600_000
"""Pixels per second of video the check's independent detector searches by default (so the
check costs no more than the anonymization pass: CenterFace costs about 10 times YuNet per
pixel; docs/benchmarks.md#video-throughput): about 2.3 frames a second at 512x512, 0.65 at
1080p (searched at 1280x720). The first and the last frame are always checked."""
SETTLE_AHEAD_SECONDS = 0.5
"""One pass: a frame is drawn with the outcome of every attack on the frames up to this long
after it (:meth:`TrackVerifier.settle`). The writer runs ``lag`` (about 1.3 s) behind the
search, so the attacks on the frames in between run in the verifier's thread meanwhile
instead of holding up the decoding; a rung an attack raises reaches back this far."""
PAINT_AHEAD = 8
"""Frames queued for the hider's thread at most (3.1 MB each at 1080p); then the caller
waits."""
DEFAULT_PRESET = "superfast"
"""x264 speed preset of the output up to 720p (at constant quality, crf 18): at 720p it
costs about 12 ms of CPU per frame against 21 ms for ``veryfast``, for files about 40%
larger."""
LARGE_FRAME_PRESET = "ultrafast"
"""x264 speed preset of frames larger than 720p: at 1080p about 10-13 ms of CPU per frame
against 22-29 ms for ``superfast`` (the largest cost of the hiding pass), for files about
1.7x larger at the same crf (docs/benchmarks.md#video-throughput-session8)."""


def output_preset(width: int, height: int) -> str:
    """The x264 preset for a ``width`` x ``height`` (pixels) output: :data:`DEFAULT_PRESET`
    up to 1280x720 pixels, :data:`LARGE_FRAME_PRESET` above."""
    return LARGE_FRAME_PRESET if width * height > 1280 * 720 else DEFAULT_PRESET


@dataclass
class TrackPlan:
    """What will be done with one track, and the template the check compares against."""

    track: Track
    anonymized: bool
    reason: str
    identity: str | None = None
    template: FloatArray | None = None

    def to_dict(self, frames_hidden: int) -> dict[str, Any]:
        observations = self.track.observations
        return {
            "track_id": self.track.id,
            "first_frame": observations[0].frame_index,
            "last_frame": observations[-1].frame_index,
            "first_time": round(observations[0].time, 3),
            "last_time": round(observations[-1].time, 3),
            "frames_detected": len(observations),
            "frames_hidden": frames_hidden,
            "min_score": round(min(o.score for o in observations), 3),
            "identity": self.identity,
            "anonymized": self.anonymized,
            "reason": self.reason,
        }


def anonymize_video(
    anonymizer: Anonymizer,
    source: Path,
    output: Path,
    *,
    hold: int = DEFAULT_HOLD,
    detect_every: int = DEFAULT_DETECT_EVERY,
    detect_side: int = DEFAULT_DETECT_SIDE,
    check_every: int | None = None,
    preset: str | None = None,
    progress: VideoProgress | None = None,
) -> AnonymizationReport:
    """Anonymize ``source`` into ``output`` (see the module docstring); errors go in the report.

    ``progress(share, message)``, when given, is called after every decoded frame
    with the share of the whole work done, in [0, 1]. ``preset``: the x264 speed preset
    of the output (default: :func:`output_preset` of the frame size).
    """
    started = time.perf_counter()
    report = AnonymizationReport(
        str(source), "video", method=anonymizer.method, policy=anonymizer.policy
    )
    verifier = anonymizer.track_verifier()
    try:
        # A video embeds few faces (a track once, then every 2 s): its models, the check's
        # included, load on VIDEO_VERIFY_ENGINE, one engine for the process.
        with using_engine(VIDEO_VERIFY_ENGINE), verifier or contextlib.nullcontext():
            info = probe_video(source)
            preset = preset or output_preset(info.width, info.height)
            two_passes = anonymizer.policy.needs_identity or not _even_sized(info)
            steps = _Progress(
                progress,
                _declared_frames(info),
                ["tracking faces"] * two_passes
                + ["hiding faces"]
                + ["checking"] * anonymizer.run_check,
            )
            if verifier is not None:
                # The detector first (the first frames need it), then the recognizers
                # load beside the first frames instead of holding up the first attack.
                anonymizer.pipeline.detector  # noqa: B018
                verifier.load_in_background()
            passes = _two_passes if two_passes else _one_pass
            plans, frame_regions, hidden_counts = passes(
                anonymizer,
                source,
                output,
                hold,
                detect_every,
                detect_side,
                report,
                preset,
                steps,
                verifier,
            )
            report.output = str(output)
            report.tracks = [p.to_dict(hidden_counts.get(p.track.id, 0)) for p in plans]
            report.faces_anonymized = sum(len(p.track.observations) for p in plans if p.anonymized)
            report.frames_touched = sum(1 for regions in frame_regions if regions)
            report.review = _review(frame_regions, detect_every)
            if verifier is not None:
                report.verify = verifier.annotate(report.tracks, report.review)
            if anonymizer.run_check:
                templates = {p.track.id: p.template for p in plans}
                checking = time.perf_counter()
                kept = [p.track for p in plans if not p.anonymized]
                report.check = _check(
                    anonymizer,
                    output,
                    frame_regions,
                    templates,
                    check_every,
                    steps,
                    kept=(kept, hold / float(info.fps or 25), detect_every),
                    thumbnails=report.thumbnails,
                )
                report.timing["check"] = time.perf_counter() - checking
                _review_outside(report, report.check)
    except FaceLensError as error:
        report.error = error
    report.seconds = time.perf_counter() - started
    return report


FrameRegions = list[list[Region]]
"""The regions hidden in each frame of the output, by frame index."""

VideoProgress = Callable[[float, str], None]
"""Told the share of the work done, in [0, 1], and what is being done (``"checking: frame 3 of 90"``)."""


class _Progress:
    """The share of the work done: equal shares per pass, frames reached within a pass."""

    def __init__(self, report: VideoProgress | None, frames: int, passes: list[str]) -> None:
        self.report = report
        self.frames = max(1, frames)
        self.passes = passes
        self.current = 0

    def start(self, name: str) -> None:
        """The pass ``name`` begins (one of ``passes``)."""
        self.current = self.passes.index(name) if name in self.passes else self.current

    def frame(self, index: int) -> None:
        """Frame ``index`` (0-based, of the source) of the current pass is done."""
        if self.report is None or not self.passes:
            return
        reached = min(self.frames, index + 1)
        share = (self.current + reached / self.frames) / len(self.passes)
        self.report(share, f"{self.passes[self.current]}: frame {reached} of {self.frames}")


def _two_passes(
    anonymizer: Anonymizer,
    source: Path,
    output: Path,
    hold: int,
    detect_every: int,
    detect_side: int,
    report: AnonymizationReport,
    preset: str,
    steps: _Progress | None = None,
    verifier: TrackVerifier | None = None,
) -> tuple[list[TrackPlan], FrameRegions, dict[int, int]]:
    """Track the whole file, decide per track, then decode again to hide and write."""
    started = time.perf_counter()
    steps = steps or _Progress(None, 1, [])
    tracks, info = _track(anonymizer, source, detect_every, detect_side, steps, verifier)
    report.timing["track"] = time.perf_counter() - started
    plans = [plan_track(anonymizer, track) for track in tracks]
    hold_seconds = hold / float(info.fps or 25)
    end = (_declared_frames(info) - 1) / float(info.fps or 25)
    frame_regions, hidden_counts = _write(
        anonymizer,
        source,
        output,
        plans,
        hold_seconds,
        detect_every,
        report,
        preset,
        steps,
        end,
        verifier,
    )
    report.timing["write"] = time.perf_counter() - started - report.timing["track"]
    return plans, frame_regions, hidden_counts


def _one_pass(
    anonymizer: Anonymizer,
    source: Path,
    output: Path,
    hold: int,
    detect_every: int,
    detect_side: int,
    report: AnonymizationReport,
    preset: str,
    steps: _Progress | None = None,
    verifier: TrackVerifier | None = None,
) -> tuple[list[TrackPlan], FrameRegions, dict[int, int]]:
    """Detect, track, hide and write in one decoding pass (every face is hidden).

    A decoded frame waits in a queue until the detections ``lag`` seconds after
    it are known; then every track that can reach it is: a track re-found after
    a gap is re-found within the tracker's ``max_gap``, and a track starting
    within ``hold`` of the frame has started (see the module docstring).
    """
    started = time.perf_counter()
    pipeline = anonymizer.pipeline
    tracker, make_faces = _tracking(anonymizer)
    steps = steps or _Progress(None, 1, [])
    detector = hiding_detector(pipeline.detector)
    with (
        open_video(source) as reader,
        VideoWriter.like(output, reader, preset=preset, background=True) as writer,
    ):
        fps = float(reader.info.fps or 25)
        side = search_side(reader.info.width, reader.info.height, detect_side)
        lag = max(tracker.max_gap + hold / fps, LEAD_IN_SECONDS) + detect_every / fps
        waiting: deque[YuvFrame] = deque()
        searched = -1
        ahead = round(SETTLE_AHEAD_SECONDS * fps)
        with _FrameHider(anonymizer, writer, hold / fps, detect_every, verifier, ahead) as hider:

            def search(frame: YuvFrame) -> None:
                pixels = frame.rgb()
                detections = find_faces_to_hide(detector, pixels, side)
                faces = make_faces(DecodedImage(pixels, frame.source), detections)
                found = tracker.update(frame.index, frame.time, faces)
                if verifier is not None:
                    verifier.verify(pixels, frame.index, frame.time, _detected(found))
                hider.follow(tracker.live_tracks)

            steps.start("hiding faces")
            for frame in reader.yuv_frames():
                if not waiting and not hider.frame_regions:
                    hider.start = frame.time
                if frame.index % detect_every == 0:
                    search(frame)
                    searched = frame.index
                waiting.append(frame)
                while waiting[0].time + lag <= frame.time:
                    hider.write(waiting.popleft())
                steps.frame(frame.index)
            if waiting and waiting[-1].index != searched:
                search(waiting[-1])  # the last frame is always searched
            tracks = tracker.finish()
            hider.follow(tracks)
            if waiting:
                hider.end = waiting[-1].time  # the clip's end is known: hold regions up to it
            while waiting:
                hider.write(waiting.popleft())
        _raise_if_incomplete(reader)
    _describe_output(report, reader, writer)  # once the writer has encoded every frame
    report.preview = hider.preview
    report.timing["track and write"] = time.perf_counter() - started
    return [plan_track(anonymizer, track) for track in tracks], hider.frame_regions, hider.counts


class _FrameHider:
    """Hides the regions of the followed tracks in each frame, in order, and writes it.

    :meth:`write` decides a frame's regions and their drawings in the caller's thread
    (they depend on the tracks and on the verifier's rungs at that moment, so the output
    does not depend on thread timing); drawing them and handing the frame to the writer
    happen in a thread of the hider's own, in order, while the caller decodes and searches
    the next frames. Use it as a context manager: leaving waits for every frame queued.
    """

    def __init__(
        self,
        anonymizer: Anonymizer,
        writer: VideoWriter,
        hold_seconds: float,
        detect_every: int,
        verifier: TrackVerifier | None = None,
        settle_ahead: int = 0,
    ) -> None:
        self.method = anonymizer.method
        self.verifier = verifier
        self.settle_ahead = settle_ahead  # frames: see SETTLE_AHEAD_SECONDS
        self.step = (verifier or TrackVerifier(anonymizer.method, anonymizer.strength)).step
        self.writer = writer
        self.hold_seconds = hold_seconds
        self.detect_every = detect_every
        self.tracks: dict[int, Track] = {}
        self.frame_regions: FrameRegions = []
        self.counts: dict[int, int] = {}
        self.preview: np.ndarray | None = None
        self._preview_regions = 0
        self.start = 0.0  # time of the clip's first frame
        self.end: float | None = None  # time of its last frame, once known
        self._painter = ThreadPoolExecutor(1, thread_name_prefix="facelens-hider")
        self._painting: deque[Future[None]] = deque()
        self._failed = False  # set by the hider's thread when a frame fails

    def __enter__(self) -> _FrameHider:
        return self

    def __exit__(self, *exc: object) -> None:
        """Wait for the frames queued (the first failure among them is raised), or, when
        leaving on an error, drop those not started yet."""
        try:
            if exc[0] is None:
                while self._painting:
                    self._painting.popleft().result()
        finally:
            self._painter.shutdown(wait=True, cancel_futures=True)

    def follow(self, tracks: list[Track]) -> None:
        """Tracks that may place regions (new ones are added; known ones are kept)."""
        for track in tracks:
            self.tracks.setdefault(track.id, track)

    def write(self, frame: YuvFrame) -> None:
        """Decide ``frame``'s regions now; queue their drawing and the frame's writing."""
        # a track last seen more than ``hold`` before this frame cannot reach it or a later one
        reach = max(self.hold_seconds, EDGE_HOLD)  # a track may be held to the clip's end
        done = [i for i, t in self.tracks.items() if t.last.time + reach < frame.time]
        for track_id in done:
            del self.tracks[track_id]
        if self.verifier is not None:  # the attacks this frame's drawings wait for
            self.verifier.settle(frame.index + self.settle_ahead)
        regions = _regions_at(
            list(self.tracks.values()),
            frame.index,
            frame.time,
            self.hold_seconds,
            self.detect_every,
            (frame.width, frame.height),
            (self.start, self.end),
        )
        drawings = [(region.box, self.step(region.track_id)) for region in regions]
        for region in regions:
            assert region.track_id is not None
            self.counts[region.track_id] = self.counts.get(region.track_id, 0) + 1
        while len(self.frame_regions) < frame.index:
            self.frame_regions.append([])  # frames the reader skipped (none for files)
        self.frame_regions.append(regions)
        self._painting.append(self._painter.submit(self._paint_and_write, frame, drawings))
        while len(self._painting) > PAINT_AHEAD:
            self._painting.popleft().result()

    def _paint_and_write(self, frame: YuvFrame, drawings: list[tuple[Box, Step]]) -> None:
        """The hider's thread: draw each region with its step, then hand the frame on
        (nothing more once a frame has failed: the caller raises that failure)."""
        if self._failed:
            return
        try:
            for box, step in drawings:
                anonymize_i420_regions(frame.yuv, [box], step.method, step.strength)
            if len(drawings) > self._preview_regions:
                self.preview, self._preview_regions = frame.rgb(), len(drawings)
            self.writer.write(frame)
        except BaseException:
            self._failed = True
            raise


def check_step(info: VideoInfo, independent: Any) -> int:
    """One frame in this many is checked by default (see :data:`CHECK_PIXEL_RATE`)."""
    fps = float(info.fps or 25)
    longest = max(info.width, info.height, 1)
    scale = min(1.0, float(getattr(independent, "max_side", longest)) / longest)
    searched = info.width * info.height * scale * scale
    return max(1, int(np.ceil(fps * searched / CHECK_PIXEL_RATE)))


def _even_sized(info: VideoInfo) -> bool:
    return info.width % 2 == 0 and info.height % 2 == 0


def _declared_frames(info: VideoInfo) -> int:
    """The frames the container declares (or its duration times its rate); at least 1."""
    if info.frame_count:
        return info.frame_count
    if info.duration and info.fps:
        return max(1, round(info.duration * float(info.fps)))
    return 1


def _tracking(
    anonymizer: Anonymizer,
) -> tuple[FaceTracker, Callable[[DecodedImage, list[Detection]], list[Face]]]:
    """The tracker, and how a searched frame's detections become its faces.

    Templates are needed to decide identities (``--keep``/``--only``) and for the
    check. Without them faces are only located (the embedder is never loaded, about
    0.3 CPU s and 4 ms a face at 1080p saved) and tracks are linked by motion and,
    after a gap, by position alone (the nearest face inside the track's gate).
    """
    pipeline = anonymizer.pipeline
    if anonymizer.needs_templates:
        return FaceTracker(embed=pipeline.embed_faces), partial(pipeline.faces_at, embed=False)
    return FaceTracker(), pipeline.located_faces


def _track(
    anonymizer: Anonymizer,
    source: Path,
    detect_every: int,
    detect_side: int,
    steps: _Progress | None = None,
    verifier: TrackVerifier | None = None,
) -> tuple[list[Track], Any]:
    """Pass 1 of 2: detect on one frame in ``detect_every`` (and on the last frame) and link
    the faces into tracks."""
    pipeline = anonymizer.pipeline
    tracker, make_faces = _tracking(anonymizer)
    steps = steps or _Progress(None, 1, [])
    steps.start("tracking faces")
    detector = hiding_detector(pipeline.detector)

    def search(frame: Any) -> None:
        detections = find_faces_to_hide(detector, frame.pixels, side)
        found = tracker.update(frame.index, frame.time, make_faces(frame.as_image(), detections))
        if verifier is not None:
            verifier.verify(frame.pixels, frame.index, frame.time, _detected(found))

    with open_video(source) as reader:
        side = search_side(reader.info.width, reader.info.height, detect_side)
        last, searched = None, -1
        for frame in reader:
            if frame.index % max(1, detect_every) == 0:
                search(frame)
                searched = frame.index
            last = frame
            steps.frame(frame.index)
        if last is not None and last.index != searched:
            search(last)  # the last frame is always searched
        _raise_if_incomplete(reader)
        info = reader.info
    if verifier is not None:
        verifier.settle()  # pass 2 draws every track with the rung its attacks ended on
    return tracker.finish(), info


def plan_track(anonymizer: Anonymizer, track: Track) -> TrackPlan:
    """Hide the track or not (the policy, decided once from its best faces); its template."""
    best = [t.face for t in track.best_faces() if t.face is not None]
    faces = _embedded(anonymizer, best) if anonymizer.needs_templates else []
    template = _mean_template(faces)
    if not anonymizer.policy.needs_identity:
        return TrackPlan(track, True, "every face is anonymized", None, template)
    return track_decision(anonymizer, track, faces, template)


def track_decision(
    anonymizer: Anonymizer, track: Track, faces: list[Face], template: FloatArray | None
) -> TrackPlan:
    """One decision per track under ``--keep``/``--only`` (privacy wins on doubt).

    ``--keep``: the track stays visible only if *every* one of its best faces
    is identified as the same kept person with usable quality (so a track
    that switched between two people, or that is uncertain in any of its best
    frames, is hidden). ``--only``: the track is hidden if *any* best face is
    (see :class:`facelens.privacy.policy.Policy`).
    """
    if not faces:
        return TrackPlan(track, True, "no face good enough to decide on", None, template)
    matches = identify_faces(faces, anonymizer.gallery, anonymizer.point, anonymizer.calibration)
    decisions = [anonymizer.policy.decide(m) for m in matches]
    identities = {m.identity for m in matches}
    identity = next(iter(identities)) if len(identities) == 1 else None
    hidden = [reason for hide, reason in decisions if hide]
    if hidden:
        return TrackPlan(track, True, hidden[0], identity, template)
    return TrackPlan(track, False, decisions[0][1], identity, template)


def _write(
    anonymizer: Anonymizer,
    source: Path,
    output: Path,
    plans: list[TrackPlan],
    hold_seconds: float,
    detect_every: int,
    report: AnonymizationReport,
    preset: str = DEFAULT_PRESET,
    steps: _Progress | None = None,
    end: float | None = None,
    verifier: TrackVerifier | None = None,
) -> tuple[list[list[Region]], dict[int, int]]:
    """Pass 2 of 2: hide each hidden track's region in every frame and write the video
    (``end``: the time of the clip's last frame, s, when known)."""
    hidden = [p.track for p in plans if p.anonymized]
    step_of = (verifier or TrackVerifier(anonymizer.method, anonymizer.strength)).step
    frame_regions: FrameRegions = []
    counts: dict[int, int] = {}
    preview_at = _busiest_frame(hidden)
    steps = steps or _Progress(None, 1, [])
    steps.start("hiding faces")
    with open_video(source) as reader, VideoWriter.like(output, reader, preset=preset) as writer:
        for frame in reader:
            regions = _regions_at(
                hidden,
                frame.index,
                frame.time,
                hold_seconds,
                detect_every,
                (frame.width, frame.height),
                (0.0, end),
            )
            pixels = frame.pixels
            if regions:
                pixels = pixels.copy() if not pixels.flags.writeable else pixels
                for region in regions:
                    step = step_of(region.track_id)
                    anonymize_regions(pixels, [region.box], step.method, step.strength)
                    assert region.track_id is not None
                    counts[region.track_id] = counts.get(region.track_id, 0) + 1
            while len(frame_regions) < frame.index:
                frame_regions.append([])  # frames the reader skipped (none for files)
            frame_regions.append(regions)
            writer.write(pixels)
            if frame.index == preview_at:
                report.preview = pixels.copy()
            steps.frame(frame.index)
        _raise_if_incomplete(reader)
        _describe_output(report, reader, writer)
    return frame_regions, counts


def _detected(found: list[TrackedFace]) -> list[tuple[int, Detection]]:
    """``(track id, detection)`` of each face a tracker update found (not the predicted ones)."""
    return [
        (t.track_id, Detection(t.face.box, t.face.landmarks, t.face.score))
        for t in found
        if t.face is not None
    ]


def _describe_output(report: AnonymizationReport, reader: VideoReader, writer: VideoWriter) -> None:
    """Size, frame rate, frames written, audio copied and decoding problems, into the report."""
    info = reader.info
    report.width, report.height, report.fps = info.width, info.height, round(float(info.fps), 3)
    report.problems.extend(reader.problems)
    report.partial = report.partial or not reader.complete  # decoding stopped early
    report.frames = writer.frames
    report.audio = (
        {
            "input": info.audio_codec,
            "sample_rate": info.audio_sample_rate,
            "packets_copied": writer.audio_packets,
            "problems": list(writer.problems),
        }
        if info.has_audio
        else None
    )


def _regions_at(
    tracks: list[Track],
    index: int,
    at: float,
    hold: float,
    detect_every: int,
    size: tuple[int, int],
    edges: tuple[float, float | None] = (0.0, None),
) -> list[Region]:
    """The regions of ``tracks`` at frame ``index`` (time ``at``, s); ``edges`` = the times of
    the clip's first and last frames (the last ``None`` while unknown)."""
    regions = []
    for track in tracks:
        box = track_box(track, at, hold, edges)
        if box is None:
            continue
        origin, score = _origin(track, index, detect_every)
        regions.append(anonymization_region(box, score, size[0], size[1], origin, track.id))
    return regions


LEAD_IN_SECONDS = 0.5
"""Seconds a region is drawn before its track's first detection at least (``hold`` when
longer): a face the detector finds only once it is near enough, or light enough, was there
before (a walker's 22 px face in a clip at a fifth of its brightness was first found 7
frames after it appeared: benchmarks/crowd_clip.py). The output waits about 1.3 s for the
detections after each frame anyway, so this costs no delay."""
EDGE_HOLD = 1.0
"""Seconds: a track first seen this soon after the clip's start is hidden from its first
frame; one last seen this close to its end, to its last frame (a face entering or leaving
the picture, or blurred by motion, is there before the detector finds it)."""


def track_box(
    track: Track, at: float, hold: float, edges: tuple[float, float | None] = (0.0, None)
) -> Box | None:
    """Where ``track``'s face is at time ``at`` (s), or ``None``.

    Between detections: interpolated. Up to ``hold`` seconds after the last detection, and
    up to ``hold`` or :data:`LEAD_IN_SECONDS` (the longer) before the first (and from the
    clip's start or up to its end, within :data:`EDGE_HOLD`):
    the nearest detection's box joined with the box the track's motion predicts there
    (from its two nearest detections), so a face the detector lost while it moved stays
    hidden.
    """
    observations = track.observations
    first, last = observations[0], observations[-1]
    start, end = edges
    if first.time <= at <= last.time:
        return track.box_at(at, 0.0)
    if at < first.time:
        near_start = first.time - start <= EDGE_HOLD
        if at < first.time - max(hold, LEAD_IN_SECONDS) and not near_start:
            return None
        return _predicted(
            first.box, observations[1] if len(observations) > 1 else first, at, first.time
        )
    near_end = end is not None and end - last.time <= EDGE_HOLD and at <= end
    if at > last.time + hold and not near_end:
        return None
    return _predicted(last.box, observations[-2] if len(observations) > 1 else last, at, last.time)


def _predicted(box: Box, other: Any, at: float, seen: float) -> Box:
    """``box`` (seen at time ``seen``) joined with where it moves by ``at`` at the velocity
    from ``other`` (another observation of the track), the move capped at one box size."""
    if other.time == seen:
        return box
    rate = (at - seen) / (seen - other.time)
    dx = float(np.clip((box.x - other.box.x) * rate, -box.width, box.width))
    dy = float(np.clip((box.y - other.box.y) * rate, -box.height, box.height))
    x0, y0 = min(box.x, box.x + dx), min(box.y, box.y + dy)
    return Box(x0, y0, box.width + abs(dx), box.height + abs(dy))


def _origin(track: Track, index: int, detect_every: int) -> tuple[RegionOrigin, float]:
    """How the region of ``track`` at frame ``index`` was placed, and the score behind it.

    A frame next to a detection that the detector did not search (``detect_every``)
    counts as interpolated; ``held`` means the face was searched for and not found.
    """
    observations = track.observations
    frames = [o.frame_index for o in observations]
    position = int(np.searchsorted(frames, index))
    if position < len(frames) and frames[position] == index:
        return "detected", observations[position].score
    if position == 0 or position == len(frames):
        nearest = observations[0] if position == 0 else observations[-1]
        unsearched = abs(index - nearest.frame_index) < detect_every
        return ("interpolated" if unsearched else "held"), nearest.score
    before, after = observations[position - 1], observations[position]
    return "interpolated", min(before.score, after.score)


def _busiest_frame(tracks: list[Track]) -> int:
    """A frame with the most hidden tracks detected (for the report's picture)."""
    seen: dict[int, int] = {}
    for track in tracks:
        for observation in track.observations:
            seen[observation.frame_index] = seen.get(observation.frame_index, 0) + 1
    return max(seen, key=lambda i: (seen[i], -i)) if seen else 0


def _review(frame_regions: FrameRegions, detect_every: int) -> list[dict[str, Any]]:
    """Frame ranges to look at: low detection confidence, faces held after being lost,
    long stretches where a face was not detected and its region was interpolated."""
    flags: list[tuple[int, str]] = []
    for index, regions in enumerate(frame_regions):
        reasons = set()
        for region in regions:
            if region.score < LOW_CONFIDENCE:
                reasons.add(f"low detection confidence (< {LOW_CONFIDENCE})")
            if region.origin == "held":
                reasons.add("face not detected: region held from the nearest detection")
        for reason in sorted(reasons):
            flags.append((index, reason))
    segments: dict[str, list[list[int]]] = {}
    for index, reason in flags:
        runs = segments.setdefault(reason, [])
        if runs and index <= runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    review = [
        {"frames": run, "reason": reason} for reason, runs in segments.items() for run in runs
    ]
    return sorted(review, key=lambda r: (r["frames"][0], r["reason"]))


def _check(
    anonymizer: Anonymizer,
    output: Path,
    frame_regions: FrameRegions,
    templates: dict[int, FloatArray | None],
    check_every: int | None,
    steps: _Progress | None = None,
    *,
    kept: tuple[list[Track], float, int] = ([], 0.0, 1),
    thumbnails: Thumbnails | None = None,
) -> CheckSummary:
    """Pass 3: decode the written file and attack one frame in ``check_every`` (default:
    :func:`check_step`) and the last frame.

    ``kept`` = (tracks left visible on purpose, hold in seconds, detect_every): a face the
    independent detector finds on one of them is not a failure. Frames where the check
    fails go into ``thumbnails``.
    """
    checker = anonymizer.checker()
    summary = anonymizer.new_summary()
    steps = steps or _Progress(None, 1, [])
    steps.start("checking")
    visible, hold_seconds, detect_every = kept

    def check(frame: Any, pixels: np.ndarray) -> None:
        regions = frame_regions[frame.index] if frame.index < len(frame_regions) else []
        originals = [templates.get(r.track_id) if r.track_id is not None else None for r in regions]
        kept_boxes = [
            r.box
            for r in _regions_at(
                visible,
                frame.index,
                frame.time,
                hold_seconds,
                detect_every,
                (pixels.shape[1], pixels.shape[0]),
            )
        ]
        result = checker.check(pixels, regions, originals, kept_boxes)
        summary.add(frame.index, regions, result)
        if result.failed and thumbnails is not None:
            thumbnails.add(frame.index, pixels, result.boxes_to_review(regions))

    with open_video(output) as reader:
        every = check_every or check_step(reader.info, checker.independent)
        summary.step = every
        if thumbnails is not None:
            thumbnails.step = every
        frames = reader.yuv_frames() if _even_sized(reader.info) else iter(reader)
        last: Any = None
        for frame in frames:
            if frame.index % every == 0:
                check(frame, frame.rgb() if isinstance(frame, YuvFrame) else frame.pixels)
            last = frame
            steps.frame(frame.index)
        if last is not None and last.index % every != 0:  # the last frame is always checked
            check(last, last.rgb() if isinstance(last, YuvFrame) else last.pixels)
    if every > 1:
        summary.skipped = (
            f"{every - 1} frames in {every} (every {every}th frame and the last were checked: "
            f"a face visible for less than {every / float(reader.info.fps or 25):.2f} s may "
            "escape the check)"
        )
    if not len(checker.gallery.vectors):
        summary.skipped = (summary.skipped or "no frame") + (
            "; the recognizer searched only around the hidden regions (no gallery: "
            "nobody to identify elsewhere)"
        )
    return summary


def _embedded(anonymizer: Anonymizer, faces: list[Face]) -> list[Face]:
    missing = [f for f in faces if f.template is None]
    if not missing:
        return faces
    done = iter(anonymizer.pipeline.embed_faces(missing))
    return [f if f.template is not None else next(done) for f in faces]


def _mean_template(faces: list[Face]) -> FloatArray | None:
    vectors = [f.template.vector for f in faces if f.template is not None]
    if not vectors:
        return None
    mean: FloatArray = unit_rows(np.stack(vectors).mean(axis=0, keepdims=True))[0]
    return mean


def _raise_if_incomplete(reader: Any) -> None:
    """A truncated input is still anonymized as far as it goes; the problem is reported."""
    if not reader.complete and reader.decoded == 0:
        from facelens.errors import VideoDecodeError

        raise VideoDecodeError(
            f"{reader.label}: no frame could be decoded ({'; '.join(reader.problems)})"
        )
