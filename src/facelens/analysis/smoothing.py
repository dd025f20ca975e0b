"""Expression scores smoothed along a video track, in a sliding time window.

Per-frame expression probabilities flicker: a blink, a half-turned head or
motion blur flips the most likely class for a frame or two. The best
frame-wise affect systems smooth the per-frame class scores over a short
window along each face track before taking the label. Here the window is a
span of **seconds** (not frames), so it means the same thing at any frame
rate or sampling, and frames missed by the detector do not stretch it.

* :func:`smooth_scores`: offline, a whole track at once; ``centred`` windows
  (no lag) or trailing ones.
* :class:`TrackSmoother`: online, one frame at a time for many tracks (live
  video): the trailing mean of each track's last ``window`` seconds.
* :func:`label_flips`, :func:`label_runs`: what the measurement counts.

The default windows were chosen by ``benchmarks/expression_video.py`` on the
shared clips (9 clips, 10 tracks, 2,248 frames; docs/benchmarks.md) with the
default expression model (facelens-expression-cnn48): the longest window
that still shows at least 95 % of the expression episodes of 0.5 s or more.
With its sixth version (session 11), centred 0.8 s cuts label flips from 2.05
to 0.48 per second and keeps all 40 episodes (1.2 s, the window of versions 4
and 5, kept 92.5 %); trailing windows lag, so the live default is shorter
(0.5 s: 0.69 flips/s, 0.15 s latency, 97.5 % of the episodes).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from facelens.types import FloatArray

__all__ = ["DEFAULT_WINDOW_SECONDS", "TrackSmoother", "label_flips", "label_runs", "smooth_scores"]

DEFAULT_WINDOW_SECONDS = 0.8
"""Centred window for offline timelines, seconds (chosen by measurement, see above)."""
LIVE_WINDOW_SECONDS = 0.5
"""Trailing window for live video (:class:`TrackSmoother`), seconds (chosen by measurement)."""


def smooth_scores(
    times: Sequence[float] | npt.NDArray[np.floating],
    scores: FloatArray,
    window: float = DEFAULT_WINDOW_SECONDS,
    *,
    centred: bool = True,
) -> FloatArray:
    """Each row of ``scores`` ``(N, C)`` replaced by the mean of the rows within ``window``
    seconds: centred on its time (``t - w/2 .. t + w/2``) or trailing (``t - w .. t``).

    ``times`` are the rows' times in seconds, increasing. Rows of probabilities
    stay probabilities (means of rows that sum to 1 sum to 1). A window of 0
    returns the scores unchanged.
    """
    values = np.asarray(scores, dtype=np.float64)
    stamps = np.asarray(times, dtype=np.float64)
    if len(stamps) != len(values):
        raise ValueError(f"{len(stamps)} times for {len(values)} rows of scores")
    if window <= 0 or len(values) == 0:
        return np.asarray(values, dtype=np.float32)
    before, after = (window / 2, window / 2) if centred else (window, 0.0)
    starts = np.searchsorted(stamps, stamps - before - 1e-9, side="left")
    ends = np.searchsorted(stamps, stamps + after + 1e-9, side="right")
    cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    sums = cumulative[ends] - cumulative[starts]
    return np.asarray(sums / (ends - starts)[:, None], dtype=np.float32)


class TrackSmoother:
    """Online smoothing for many tracks: the trailing mean of each track's last ``window`` s.

    Call :meth:`update` with each detected face's track id, time (seconds) and
    class scores, in time order per track; call :meth:`end` when a track ends.
    """

    def __init__(self, window: float = LIVE_WINDOW_SECONDS) -> None:
        self.window = window
        self._history: dict[int, deque[tuple[float, FloatArray]]] = {}

    def update(self, track_id: int, time: float, scores: FloatArray) -> FloatArray:
        """The smoothed scores of ``track_id`` at ``time``, including this frame's ``scores``."""
        history = self._history.setdefault(track_id, deque())
        history.append((time, np.asarray(scores, dtype=np.float32)))
        while history and history[0][0] < time - self.window - 1e-9:
            history.popleft()
        return np.asarray(np.mean([row for _, row in history], axis=0), dtype=np.float32)

    def end(self, track_id: int) -> None:
        """Forget a track that has ended."""
        self._history.pop(track_id, None)

    @property
    def tracks(self) -> list[int]:
        return list(self._history)


def label_flips(labels: Sequence[object]) -> int:
    """How many times the label changes from one frame to the next."""
    return sum(a != b for a, b in pairwise(labels))


def label_runs(
    times: Sequence[float], labels: Sequence[str]
) -> list[tuple[str, float, float, int]]:
    """Maximal runs of one label: ``(label, start time, end time, first row)``, in seconds."""
    runs: list[tuple[str, float, float, int]] = []
    for index, (time, label) in enumerate(zip(times, labels, strict=True)):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], time, runs[-1][3])
        else:
            runs.append((label, time, time, index))
    return runs
