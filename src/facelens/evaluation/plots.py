"""The figures of the evaluation reports, as inline SVG text (matplotlib, no display needed).

Axes: scores are cosine similarities; error rates are fractions, drawn on log
scales where small rates matter (FAR, FPIR, and both axes of the DET curve).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from facelens.evaluation.metrics import Curve

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "cmc_figure",
    "det_figure",
    "group_bars",
    "llr_figure",
    "roc_figure",
    "score_histogram",
    "size_curves",
]

GENUINE = "#1f77b4"
IMPOSTOR = "#d62728"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, which="major", alpha=0.3)
    return figure, axes


def to_svg(figure: Figure) -> str:
    """The figure as an ``<svg>`` element (text kept as text, no XML prologue, deterministic ids)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "facelens"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return text[text.index("<svg") :]


def _floor(n: int) -> float:
    """The smallest rate worth drawing for ``n`` samples (one sample), at least 1e-6."""
    return max(1.0 / max(n, 1), 1e-6)


def roc_figure(
    curves: dict[str, Curve],
    negatives: int,
    x_label: str = "false accept rate (FAR)",
    y_label: str = "true accept rate (TAR)",
) -> str:
    """TAR against FAR (log scale), one line per named curve."""
    figure, axes = _figure()
    for (name, full), colour in zip(curves.items(), PALETTE, strict=False):
        curve = full.sample()
        keep = curve.far > 0
        axes.step(curve.far[keep], curve.tar[keep], where="post", label=name, color=colour)
    axes.set_xscale("log")
    axes.set_xlim(_floor(negatives) / 2, 1)
    # Zoom on the rates reached at the smallest FAR drawn (a ROC near 1 is flat on 0..1).
    lowest = min(float(c.tar[c.far > 0].min(initial=1.0)) for c in curves.values())
    axes.set_ylim(max(0.0, np.floor((lowest - 0.01) * 20) / 20), 1.005)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.legend(loc="lower right")
    return to_svg(figure)


def det_figure(curve: Curve, negatives: int, positives: int, eer: float) -> str:
    """FRR against FAR, both on log scales, with the equal-error point."""
    figure, axes = _figure()
    curve = curve.sample()
    keep = (curve.far > 0) & (curve.frr > 0)
    axes.step(curve.far[keep], curve.frr[keep], where="post", color=GENUINE, label="DET")
    if not keep.any():
        axes.text(
            0.5,
            0.5,
            "scores fully separated:\nno false reject at any FAR > 0",
            transform=axes.transAxes,
            ha="center",
            va="center",
            color="dimgray",
        )
    axes.plot([1e-6, 1], [1e-6, 1], color="grey", lw=0.8, ls=":", label="FAR = FRR")
    if eer > 0:
        axes.plot([eer], [eer], "o", color=IMPOSTOR, label=f"EER {eer:.2%}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(_floor(negatives) / 2, 1)
    axes.set_ylim(_floor(positives) / 2, 1)
    axes.set_xlabel("false accept rate (FAR)")
    axes.set_ylabel("false reject rate (FRR)")
    axes.legend(loc="upper right")
    return to_svg(figure)


def score_histogram(
    positive: np.ndarray,
    negative: np.ndarray,
    labels: tuple[str, str],
    thresholds: Sequence[tuple[str, float]] = (),
) -> str:
    """Densities of the two score distributions on shared bins, with threshold lines."""
    figure, axes = _figure(6.0, 4.2)
    finite = np.concatenate([positive[np.isfinite(positive)], negative])
    bins = np.linspace(float(finite.min()), float(finite.max()), 60).tolist()
    for scores, label, colour in ((negative, labels[1], IMPOSTOR), (positive, labels[0], GENUINE)):
        scores = scores[np.isfinite(scores)]
        axes.hist(
            scores,
            bins=bins,
            density=True,
            alpha=0.45,
            color=colour,
            label=f"{label} (n={len(scores):,})",
        )
    for (name, value), style in zip(thresholds, ("--", ":", "-."), strict=False):
        axes.axvline(value, color="black", lw=1, ls=style, label=f"{name} = {value:.3f}")
    axes.set_xlabel("cosine score")
    axes.set_ylabel("density")
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    return to_svg(figure)


def group_bars(groups: list[str], series: dict[str, list[float | None]], y_label: str) -> str:
    """Bars per group, one colour per series; a missing value leaves a gap (and says n/a)."""
    figure, axes = _figure(max(6.0, 1.2 + 0.5 * len(groups) * max(len(series), 1)), 4.0)
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, ((name, values), colour) in enumerate(zip(series.items(), PALETTE, strict=False)):
        heights = [np.nan if v is None else v for v in values]
        bars = axes.bar(
            x + (i - (len(series) - 1) / 2) * width, heights, width, label=name, color=colour
        )
        labels = ["n/a" if v is None else f"{v:.3g}" for v in values]
        axes.bar_label(bars, labels=labels, fontsize="x-small", padding=2)
    axes.set_xticks(x, groups)
    axes.set_ylabel(y_label)
    axes.margins(y=0.15)
    figure.legend(loc="outside lower center", ncols=min(len(series), 3), fontsize="small")
    return to_svg(figure)


def cmc_figure(cmc: np.ndarray) -> str:
    """Identification rate against rank."""
    figure, axes = _figure(6.0, 3.6)
    ranks = np.arange(1, len(cmc) + 1)
    axes.plot(ranks, cmc, "o-", color=GENUINE)
    axes.set_xticks(ranks)
    axes.set_ylim(min(0.9, float(cmc.min()) - 0.02), 1.005)
    axes.set_xlabel("rank")
    axes.set_ylabel("identification rate")
    return to_svg(figure)


def llr_figure(bins: list[dict[str, Any]]) -> str:
    """Empirical against predicted log10 likelihood ratio per score bin (diagonal: perfect)."""
    figure, axes = _figure(4.6, 4.0)
    predicted = np.array([b["predicted"] for b in bins])
    empirical = np.array([b["empirical"] for b in bins])
    low = float(min(predicted.min(), empirical.min())) - 0.5
    high = float(max(predicted.max(), empirical.max())) + 0.5
    axes.plot([low, high], [low, high], color="grey", lw=0.8, ls=":", label="perfect calibration")
    axes.plot(predicted, empirical, "o-", color=GENUINE, label="score bins")
    axes.set_xlabel("predicted log10 LR (shipped calibration)")
    axes.set_ylabel("empirical log10 LR (this data)")
    axes.legend(loc="upper left", fontsize="small")
    return to_svg(figure)


def size_curves(
    sizes: list[int], series: dict[str, list[float | None]], y_label: str, ceiling: float = 1.0
) -> str:
    """One line per named series against face size in pixels (log-2 x axis)."""
    figure, axes = _figure(5.0, 3.4)
    for index, (name, values) in enumerate(series.items()):
        points = [(s, v) for s, v in zip(sizes, values, strict=True) if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, marker="o", color=PALETTE[index % len(PALETTE)], label=name)
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(s) for s in sizes])
    axes.set_xlabel("face size (pixels, longer side of the face box)")
    axes.set_ylabel(y_label)
    axes.set_ylim(-0.02 * ceiling, ceiling * 1.02)
    axes.legend(fontsize=8)
    return to_svg(figure)
