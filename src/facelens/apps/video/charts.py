"""The video applications' charts (PNG, drawn with matplotlib, loaded only when asked for).

* :func:`identity_timeline_png`: who appears when, one row per person (and per
  unknown track), from :func:`~facelens.apps.video.identify.identify_video`.
* :func:`expression_timeline_png`: each track's smoothed expression
  probabilities over time, from
  :func:`~facelens.apps.video.expressions.analyze_video_expressions`.

Times on the x axis are seconds from the first frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facelens.apps.draw import KNOWN, UNKNOWN
from facelens.models.attributes import EXPRESSIONS

if TYPE_CHECKING:
    from facelens.apps.video.expressions import VideoExpressions
    from facelens.apps.video.results import VideoIdentification


__all__ = ["expression_timeline_png", "identity_timeline_png"]


def identity_timeline_png(result: VideoIdentification, target: str | Path) -> Path:
    """A timeline chart: one row per person (and per unknown track), bars where they appear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[str, list[tuple[float, float]]] = {}
    known: dict[str, bool] = {}
    for track in result.tracks:
        rows.setdefault(track.label, []).extend(track.segments)
        known[track.label] = track.identity is not None
    labels = sorted(rows, key=lambda name: (not known[name], name))
    duration = result.info.duration or max((t.last_time for t in result.tracks), default=1.0)
    minimum = max(duration / 400, 0.04)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * max(1, len(labels))), dpi=100)
    for row, name in enumerate(labels):
        spans = [(a, max(b - a, minimum)) for a, b in rows[name]]
        colour = tuple(c / 255 for c in (KNOWN if known[name] else UNKNOWN))
        ax.broken_barh(spans, (row - 0.35, 0.7), facecolors=colour)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.7, max(len(labels), 1) - 0.3)
    ax.set_xlim(0, max(duration, 0.1))
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(f"{Path(result.source).name}: who appears when")
    ax.grid(axis="x", alpha=0.3)
    if not labels:
        ax.text(0.5, 0.5, "no face found", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return Path(target)


def expression_timeline_png(result: VideoExpressions, target: str | Path) -> Path:
    """A chart per track: smoothed probability of each expression over time (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(1, len(result.tracks))
    figure, axes = plt.subplots(
        count, 1, figsize=(11, 2.2 * count + 0.6), squeeze=False, sharex=True
    )
    for axis, track in zip(axes[:, 0], result.tracks, strict=False):
        for index, label in enumerate(EXPRESSIONS):
            axis.plot(track.times, track.smoothed[:, index], label=label, linewidth=1.4)
        axis.set_ylim(0, 1)
        axis.set_ylabel(f"track {track.track_id}")
        axis.grid(alpha=0.3)
    title = f"{Path(result.source).name}: expression over time ({result.window:g} s window)"
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("seconds")
    axes[0, 0].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
