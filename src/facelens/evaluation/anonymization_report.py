"""The self-contained HTML page of ``facelens eval anonymization`` (inline SVG plots, no script)."""

from __future__ import annotations

from typing import Any

from facelens.evaluation import plots
from facelens.evaluation.report import _figure, _page, _pct, _table

__all__ = ["anonymization_html"]


def anonymization_html(data: dict[str, Any]) -> str:
    """Privacy curves (re-identification rate against face size) and utility, per set."""
    sizes = data["sizes"]
    attack = data["attack"]
    verdict = (
        "No recognizer re-identified any anonymized face, at any size."
        if data["passed"]
        else "Some anonymized faces were re-identified: see the worst rates below."
    )
    sections = [
        "<h2>Summary</h2>",
        f"<p>{verdict}</p>",
        _table(
            ["method", "worst re-identification rate (any set, recognizer, size)"],
            [[m, _pct(r)] for m, r in data["worst_rate"].items()],
        ),
        "<p class='note'>Attack: "
        + attack["original"]
        + f"; re-identified when the cosine reaches the threshold at FMR {attack['fmr']:g} ("
        + ", ".join(f"{r} {t:.3f}" for r, t in attack["thresholds"].items())
        + "; on faces of one size, the threshold at that FMR among different people's "
        "originals of that size, shown in each cell). Rank-1: the own original is also the best match among the set's originals. "
        "Chance: anonymized faces against other people's originals above the threshold.</p>",
    ]
    for set_name, by_method in data["reidentification"].items():
        held = f", after the first {data['lfw_skip']} people" if set_name == "lfw" else ""
        held = held if data.get("lfw_skip") else ""
        sections.append(f"<h2>{set_name} ({data['samples'][set_name]} faces{held})</h2>")
        figures = []
        for recognizer in data["recognizers"]:
            series = {
                method: [by_method[method][recognizer].get(str(s), {}).get("rate") for s in sizes]
                for method in data["methods"]
            }
            highest = max((v for vs in series.values() for v in vs if v is not None), default=0)
            figures.append(
                _figure(
                    plots.size_curves(
                        sizes, series, "re-identification rate", max(0.1, 1.2 * highest)
                    ),
                    f"{recognizer}: share of anonymized faces matched to their original",
                )
            )
        utility = data["utility_share_altered"][set_name]
        figures.append(
            _figure(
                plots.size_curves(
                    sizes,
                    {m: [utility[m].get(str(s)) for s in sizes] for m in data["methods"]},
                    "share of the image altered",
                ),
                "utility: share of each image's pixels the method changed",
            )
        )
        sections.append("<div class='figs'>" + "".join(figures) + "</div>")
        rows = []
        for method in data["methods"]:
            for recognizer in data["recognizers"]:
                cells = by_method[method][recognizer]
                rows.append(
                    [f"{method} / {recognizer}"]
                    + [
                        f"{_pct(c['rate'])} (rank-1 {_pct(c['rank1_rate'])}, "
                        f"chance {_pct(c['chance_rate'])}, max {c['cosine_max']:.2f} "
                        f"/ threshold {c['threshold']:.2f}; "
                        f"{_pct(c['rate_calibrated'])} at the calibrated one)"
                        if (c := cells.get(str(s)))
                        else "n/a"
                        for s in sizes
                    ]
                )
        sections.append(_table(["method / recognizer", *[f"{s} px" for s in sizes]], rows))
        verification = data.get("verification", {}).get(set_name, {})
        if verification:
            sections.append(
                "<h3>Verified hiding: faces escalated (redrawn because a recognizer still "
                "matched), left unverified, and what they ended with</h3>"
            )
            sections.append(
                _table(
                    ["method", *[f"{s} px" for s in sizes]],
                    [
                        [method]
                        + [
                            f"{c['escalated']} of {c['faces']} escalated, "
                            f"{c['unverified']} unverified; "
                            + ", ".join(f"{n}: {k}" for n, k in c["ended_with"].items())
                            if (c := cells.get(str(s)))
                            else "n/a"
                            for s in sizes
                        ]
                        for method, cells in verification.items()
                    ],
                )
            )
    return _page(
        "Anonymization: privacy against utility",
        "re-identification rate against face size, per method and recognizer",
        sections,
    )
