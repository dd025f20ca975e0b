"""What :func:`~facelens.apps.video.identify.identify_video` finds: the timeline of tracks.

:class:`TrackTimeline` is one face track (when it was seen, and who it is);
:class:`VideoIdentification` is the whole video, as JSON (:meth:`to_dict`)
or as CSV, one row per track (:meth:`to_csv`, columns :data:`CSV_COLUMNS`).
Times are seconds from the first frame; frame numbers are the source's own.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from facelens.video.frames import VideoInfo
from facelens.video.identity import TrackIdentity

__all__ = ["TrackTimeline", "VideoIdentification"]


@dataclass(frozen=True, eq=False)
class TrackTimeline:
    """One track of the timeline: when it was seen, and who it is."""

    track_id: int
    first_frame: int
    last_frame: int
    first_time: float  # seconds
    last_time: float  # seconds
    frames_detected: int
    decision: TrackIdentity
    segments: tuple[tuple[float, float], ...]  # (start, end) seconds of continuous presence
    detected_frames: tuple[int, ...] = ()  # frame indices where the face was detected (not in JSON)
    expressions: list[dict[str, Any]] | None = None  # smoothed expression segments, if asked for

    @property
    def identity(self) -> str | None:
        return self.decision.identity

    @property
    def label(self) -> str:
        return self.identity or f"unknown #{self.track_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "identity": self.identity,
            "first_time": round(self.first_time, 3),
            "last_time": round(self.last_time, 3),
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames_detected": self.frames_detected,
            "segments": [[round(a, 3), round(b, 3)] for a, b in self.segments],
            **{k: v for k, v in self.decision.to_dict().items() if k != "identity"},
            **({} if self.expressions is None else {"expressions": self.expressions}),
        }


@dataclass(eq=False)
class VideoIdentification:
    """Everything :func:`identify_video` found in one video."""

    source: str
    info: VideoInfo
    tracks: list[TrackTimeline] = field(default_factory=list)
    frames_processed: int = 0
    frames_with_faces: int = 0
    faces_detected: int = 0
    faces_embedded: int = 0
    short_tracks: int = 0
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    threshold: float = math.nan
    fmr: float = math.nan
    calibration: str | None = None  # the calibration in force: "shipped:lfw" or "gallery:<id>"
    seconds: float = 0.0  # wall-clock time of the analysis pass
    every: int = 1
    sample_fps: float | None = None
    drawn: str | None = None

    @property
    def frames_per_second(self) -> float:
        """Processed frames per wall-clock second."""
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def people(self) -> list[str]:
        return sorted({t.identity for t in self.tracks if t.identity})

    def by_person(self) -> dict[str, dict[str, Any]]:
        """Per identified person: their tracks, first and last time and time on screen (s).

        Time on screen adds up the person's segments (overlapping tracks of one
        person are counted once)."""
        summary: dict[str, dict[str, Any]] = {}
        for name in self.people:
            tracks = [t for t in self.tracks if t.identity == name]
            spans = sorted(span for t in tracks for span in t.segments)
            on_screen, reach = 0.0, -math.inf
            for begin, finish in spans:
                on_screen += max(0.0, finish - max(begin, reach))
                reach = max(reach, finish)
            summary[name] = {
                "tracks": [t.track_id for t in tracks],
                "first_time": round(min(t.first_time for t in tracks), 3),
                "last_time": round(max(t.last_time for t in tracks), 3),
                "seconds_on_screen": round(on_screen, 3),
            }
        return summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "video": self.info.to_dict(),
            "sampling": {"every": self.every, "fps": self.sample_fps},
            "operating_point": {
                "threshold": round(self.threshold, 4),
                "fmr": self.fmr,
                "calibration": self.calibration,
            },
            "frames_processed": self.frames_processed,
            "frames_with_faces": self.frames_with_faces,
            "faces_detected": self.faces_detected,
            "faces_embedded": self.faces_embedded,
            "short_tracks_left_out": self.short_tracks,
            "complete": self.complete,
            "problems": list(self.problems),
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames_per_second, 2),
            "people": self.people,
            "by_person": self.by_person(),
            "tracks": [t.to_dict() for t in self.tracks],
            "drawn": self.drawn,
        }

    def to_csv(self) -> str:
        """One row per track (the timeline), with a header."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for t in self.tracks:
            m = t.decision.match
            writer.writerow(
                [
                    t.track_id,
                    t.identity or "",
                    f"{t.first_time:.3f}",
                    f"{t.last_time:.3f}",
                    t.first_frame,
                    t.last_frame,
                    t.frames_detected,
                    "" if math.isnan(m.score) else f"{m.score:.4f}",
                    "" if m.llr is None else f"{m.llr:.3f}",
                    "" if m.score_fmr is None else f"{m.score_fmr:.3g}",
                    f"{m.threshold:.4f}",
                    f"{m.fmr:g}",
                    " ".join(str(i) for i in t.decision.frames),
                    m.candidates[0].name if m.candidates else "",
                ]
            )
        return out.getvalue()


CSV_COLUMNS = [
    "track_id",
    "identity",
    "first_time_s",
    "last_time_s",
    "first_frame",
    "last_frame",
    "frames_detected",
    "score",
    "llr",
    "score_fmr",
    "threshold",
    "fmr",
    "frames_used",
    "best_candidate",
]
