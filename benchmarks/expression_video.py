"""How much smoothing expression scores along a track steadies the label, and what it costs.

Every frame of every shared clip (``videos/``: 2 talking heads and 7 clips
with strong head motion and expressions) is run through YuNet, the tracker
and the expression model once; the per-frame probabilities of each track are
then smoothed with windows of several lengths, centred (offline timeline) and
trailing (live video), and the resulting labels are scored:

* **flips/s** (stability): label changes per second of track. Raw per-frame
  labels flicker; a good window removes most of that.
* **sustained recall** (responsiveness): the raw labels' runs that last at
  least ``--sustained`` seconds (0.5 s: expressions, not flicker) are real
  expression episodes; the share of them whose label the smoothed sequence
  still shows on at least half of the run's frames. Too long a window
  swallows short expressions.
* **latency**: for episodes that begin with a label change, seconds from the
  episode's first frame until the smoothed label shows it (trailing windows
  lag by about half their length; centred windows do not).
* **agreement**: share of frames where the smoothed label equals the raw one.

Chosen windows: the longest centred window that keeps sustained recall at or
above 0.95 (``DEFAULT_WINDOW_SECONDS`` in ``facelens/analysis/smoothing.py``,
offline timelines), and the longest trailing one (``LIVE_WINDOW_SECONDS``,
live video). Writes ``benchmarks/results/expression_video.json`` for
``facelens-expression-cnn48`` (``expression_video-ID.json`` for any other model)
and prints Markdown.

    .venv/bin/python benchmarks/expression_video.py [--data ../shared/data] [--expression-model ID]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facelens.analysis.analyzer import (
    EXPRESSION_MODELS,
    AttributeAnalyzer,
    default_expression_model,
)
from facelens.analysis.smoothing import label_flips, label_runs, smooth_scores
from facelens.apps.video.expressions import analyze_video_expressions
from facelens.models.attributes import CNN48_ID, EXPRESSIONS
from facelens.pipeline.faces import FacePipeline

REPO = Path(__file__).resolve().parent.parent
WINDOWS = (0.0, 0.12, 0.2, 0.32, 0.5, 0.8, 1.2, 2.0)
MIN_RECALL = 0.95


def raw_tracks(clips: list[Path], model_id: str) -> list[dict[str, Any]]:
    """Per-frame times and probabilities of every track of every clip (no smoothing)."""
    pipeline = FacePipeline(max_upscale=1.0)
    attributes = AttributeAnalyzer(age_gender=False, expression_model=model_id)
    tracks = []
    for clip in clips:
        started = time.perf_counter()
        result = analyze_video_expressions(clip, pipeline, attributes, window=0.0)
        seconds = time.perf_counter() - started
        print(
            f"{clip.name}: {result.frames_processed} frames, {len(result.tracks)} tracks, "
            f"{seconds:.1f} s",
            file=sys.stderr,
        )
        for track in result.tracks:
            tracks.append({"clip": clip.name, "times": track.times, "scores": track.scores})
    return tracks


def evaluate(
    tracks: list[dict[str, Any]], window: float, centred: bool, sustained: float
) -> dict[str, float]:
    flips = duration = agree = frames = 0.0
    episodes = kept = 0
    latencies: list[float] = []
    for track in tracks:
        times, scores = track["times"], track["scores"]
        raw = [EXPRESSIONS[i] for i in scores.argmax(1)]
        smoothed = [
            EXPRESSIONS[i] for i in smooth_scores(times, scores, window, centred=centred).argmax(1)
        ]
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
        flips += label_flips(smoothed)
        duration += float(times[-1] - times[0]) + step
        agree += sum(a == b for a, b in zip(raw, smoothed, strict=True))
        frames += len(raw)
        runs = label_runs(list(times), raw)
        for index, (label, start, end, first) in enumerate(runs):
            if end - start + step < sustained:
                continue
            last = runs[index + 1][3] if index + 1 < len(runs) else len(raw)
            episodes += 1
            shown = [s == label for s in smoothed[first:last]]
            kept += sum(shown) >= len(shown) / 2
            if index > 0:  # begins with a change of label
                hit = next((i for i, ok in enumerate(shown) if ok), None)
                latencies.append(
                    float(times[first + hit] - start) if hit is not None else end - start + step
                )
    return {
        "window": window,
        "centred": centred,
        "flips_per_second": flips / duration,
        "sustained_recall": kept / episodes if episodes else float("nan"),
        "episodes": episodes,
        "latency": float(np.mean(latencies)) if latencies else float("nan"),
        "agreement": agree / frames,
    }


def longest_window(rows: list[dict[str, Any]], centred: bool) -> float:
    """The longest window of one kind whose sustained recall is at least MIN_RECALL."""
    good = [r for r in rows if r["centred"] == centred and r["sustained_recall"] >= MIN_RECALL]
    return float(max(good, key=lambda r: r["window"])["window"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--sustained", type=float, default=0.5, help="seconds (episode length)")
    parser.add_argument(
        "--expression-model",
        choices=EXPRESSION_MODELS,
        default=None,
        help="default: the engine's own (analysis.analyzer.default_expression_model)",
    )
    args = parser.parse_args()
    args.expression_model = args.expression_model or default_expression_model()
    clips = sorted((args.data / "videos").rglob("*.mp4"))
    if not clips:
        print(f"no clips under {args.data / 'videos'}", file=sys.stderr)
        return 1
    load = os.getloadavg()
    tracks = raw_tracks(clips, args.expression_model)
    rows = [
        evaluate(tracks, window, centred, args.sustained)
        for centred in (True, False)
        for window in WINDOWS
    ]
    chosen = {kind: longest_window(rows, kind == "centred") for kind in ("centred", "trailing")}
    total_seconds = sum(float(t["times"][-1] - t["times"][0]) for t in tracks)
    report = {
        "expression_model": args.expression_model,
        "clips": [c.name for c in clips],
        "tracks": len(tracks),
        "frames": int(sum(len(t["times"]) for t in tracks)),
        "track_seconds": total_seconds,
        "sustained_seconds": args.sustained,
        "rows": rows,
        "chosen_windows": chosen,
        "load_average": load,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    suffix = "" if args.expression_model == CNN48_ID else f"-{args.expression_model}"
    (REPO / f"benchmarks/results/expression_video{suffix}.json").write_text(
        json.dumps(report, indent=2)
    )
    print(
        f"{len(clips)} clips, {len(tracks)} tracks, {report['frames']} frames, "
        f"{total_seconds:.1f} s of track; episodes = raw-label runs >= {args.sustained} s\n"
    )
    print("| window (s) | kind | flips/s | sustained recall | latency (s) | agreement with raw |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['window']:g} | {'centred' if r['centred'] else 'trailing'} | "
            f"{r['flips_per_second']:.2f} | {r['sustained_recall']:.3f} ({r['episodes']}) | "
            f"{r['latency']:.2f} | {r['agreement']:.3f} |"
        )
    print(
        f"\nchosen: centred {chosen['centred']:g} s, trailing {chosen['trailing']:g} s "
        f"(the longest windows with sustained recall >= {MIN_RECALL}); "
        f"load average at start {load[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
