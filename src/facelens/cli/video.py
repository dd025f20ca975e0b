"""``facelens video``: faces in video: tracks, one identity per track, a timeline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from facelens.apps.video.charts import identity_timeline_png
from facelens.apps.video.results import TrackTimeline, VideoIdentification
from facelens.cli.common import (
    FiniteFloat,
    cannot_write,
    check_time_window,
    friendly_errors,
    get_lens,
    json_option,
    operating_point_options,
    require_gallery,
    writable_file,
)
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar
from facelens.video.identity import DEFAULT_TOP_FRAMES
from facelens.video.reader import VideoSource, probe_video

__all__ = ["command"]


@click.group("video")
def command() -> None:
    """Faces in video: tracks, identities over time, annotated copies."""


@command.command("info")
@click.argument("video")
@json_option
@friendly_errors
def info(video: str, as_json: bool) -> None:
    """What VIDEO holds (size, frame rate, frames, duration, codecs, audio), without decoding."""
    described = probe_video(video).to_dict()
    if as_json:
        emit_json(described)
        return
    print_table(
        f"Video {video}",
        ["property", "value"],
        [[key, "-" if value is None else str(value)] for key, value in described.items()],
    )


@command.command("identify")
@click.argument("video")
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Process one frame in N.",
)
@click.option(
    "--fps",
    "sample_fps",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Process at most F frames per second of video.",
)
@click.option(
    "--start", type=FiniteFloat(min=0), default=None, help="Start at this time (seconds)."
)
@click.option(
    "--end",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Stop after this time (seconds; after --start).",
)
@click.option(
    "--top-frames",
    type=click.IntRange(min=1),
    default=DEFAULT_TOP_FRAMES,
    show_default=True,
    help="Best-quality frames per track used for its decision.",
)
@operating_point_options
@json_option
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the timeline (one row per track) as CSV here.",
)
@click.option(
    "--timeline-png",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a timeline chart (one row per person) as PNG here.",
)
@click.option(
    "--draw",
    "draw_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write an annotated copy (boxes, track ids, names; audio kept), e.g. out.mp4.",
)
@click.option(
    "--expressions",
    is_flag=True,
    help="Also give each track its expression over time (smoothed; in the JSON timeline).",
)
@click.pass_context
@friendly_errors
def identify(
    ctx: click.Context,
    video: str,
    every: int,
    sample_fps: float | None,
    start: float | None,
    end: float | None,
    top_frames: int,
    fmr: float | None,
    threshold: float | None,
    as_json: bool,
    csv_path: str | None,
    timeline_png: str | None,
    draw_path: str | None,
    expressions: bool,
) -> None:
    """Track every face of VIDEO and identify each track once, from its best frames.

    VIDEO is a file (MP4, MOV, MKV, AVI, WEBM, ...), a folder or glob of
    frames, a webcam index (0) or a stream URL (rtsp://, http://...).
    """
    check_time_window(start, end)
    require_gallery(ctx)  # no gallery file: refused before anything is made (not even outputs)
    for output in (csv_path, timeline_png, draw_path):  # refused now, not after the whole run
        if output:
            writable_file(output, inputs=[video])
    lens = get_lens(ctx)
    source: VideoSource = video
    info = probe_video(source)
    total = _expected_frames(
        info.frame_count, info.duration, float(info.fps), every, sample_fps, start, end
    )
    if draw_path and total is not None and not info.live:  # then every frame is drawn
        drawn = _expected_frames(
            info.frame_count, info.duration, float(info.fps), 1, None, start, end
        )
        total += drawn or 0
    with progress_bar("Tracking faces", total) as progress:
        result = lens.identify_video(
            source,
            fmr=fmr,
            threshold=threshold,
            every=every,
            fps=sample_fps,
            start=start,
            end=end,
            top_frames=top_frames,
            draw_to=draw_path,
            progress=lambda steps: advance(progress, steps),
            on_track=_print_track if info.live and not as_json else None,
            expressions=expressions,
        )
    if csv_path:
        try:
            Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
            Path(csv_path).write_text(result.to_csv(), encoding="utf-8")
        except OSError as error:
            raise cannot_write(csv_path, error) from None
    if timeline_png:
        try:
            _timeline_png(result, timeline_png)
        except OSError as error:
            raise cannot_write(timeline_png, error) from None
    if as_json:
        emit_json(result.to_dict())
    else:
        print_timeline(result)
        for written in (csv_path, timeline_png, draw_path):
            if written:
                console.print(f"wrote {written}")
    for problem in result.problems:
        console.print(f"[yellow]warning[/yellow] {problem}")
    if not result.complete:
        ctx.exit(1)


def _print_track(track: TrackTimeline) -> None:
    """One line per decided track, as they end (live sources)."""
    match = track.decision.match
    score = "" if math.isnan(match.score) else f" score {match.score:.3f}"
    console.print(
        f"track {track.track_id}: {track.identity or 'unknown'}{score}, "
        f"{track.first_time:.1f}-{track.last_time:.1f} s"
    )


def _timeline_png(result: VideoIdentification, target: str) -> None:
    identity_timeline_png(result, target)


def _expected_frames(
    frame_count: int | None,
    duration: float | None,
    rate: float,
    every: int,
    sample_fps: float | None,
    start: float | None,
    end: float | None,
) -> int | None:
    """About how many frames will be processed (for the progress bar); None if unknown."""
    if duration is None and frame_count is None:
        return None
    length = duration if duration is not None else (frame_count or 0) / (rate or 25.0)
    window = min(length, end if end is not None else length) - (start or 0.0)
    if window <= 0:
        return 0
    per_second = (rate or 25.0) / every
    if sample_fps:
        per_second = min(per_second, sample_fps)
    return max(1, math.ceil(window * per_second))


def print_timeline(result: VideoIdentification) -> None:
    """A table of the tracks, then a one-line summary."""
    rows: list[list[str]] = []
    for track in result.tracks:
        match = track.decision.match
        best = match.candidates[0] if match.candidates else None
        rows.append(
            [
                str(track.track_id),
                track.identity or "[yellow]unknown[/yellow]",
                f"{track.first_time:.2f}",
                f"{track.last_time:.2f}",
                str(track.frames_detected),
                "-" if math.isnan(match.score) else f"{match.score:.3f}",
                "-" if match.llr is None else f"{match.llr:+.1f}",
                "-" if match.score_fmr is None else f"{match.score_fmr:.1g}",
                f"{best.name} ({best.score:.3f})" if best else "-",
            ]
        )
    print_table(
        f"Tracks in {Path(result.source).name}",
        [
            "track",
            "identity",
            "from (s)",
            "to (s)",
            "frames",
            "score",
            "llr",
            "score fmr",
            "best candidate",
        ],
        rows,
    )
    people = result.by_person()
    if people:
        print_table(
            "People",
            ["person", "tracks", "first (s)", "last (s)", "on screen (s)"],
            [
                [
                    name,
                    " ".join(str(i) for i in p["tracks"]),
                    f"{p['first_time']:.2f}",
                    f"{p['last_time']:.2f}",
                    f"{p['seconds_on_screen']:.2f}",
                ]
                for name, p in people.items()
            ],
        )
    summary: dict[str, Any] = {
        "frames": result.frames_processed,
        "with faces": result.frames_with_faces,
        "embedded": result.faces_embedded,
        "speed": f"{result.frames_per_second:.1f} frames/s",
    }
    console.print(
        ", ".join(f"{k} {v}" for k, v in summary.items())
        + f"; threshold {result.threshold:.3f} = false-match rate {result.fmr:g} per comparison"
    )
