"""Self-contained HTML reports of ``eval verify`` and ``eval identify``.

One file, opened offline: the styles are inline, the plots inline SVG, and
there is no script and no external resource.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from facelens.evaluation import plots
from facelens.evaluation.identification import IdentificationResult
from facelens.evaluation.verification import FAR_GRID, VerificationResult
from facelens.version import __version__

__all__ = ["identification_html", "verification_html", "write_html"]

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.95em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { color: #555; font-size: 0.9em; max-width: 500px; }
figure svg { width: 500px; max-width: 100%; height: auto; }
.tablewrap { overflow-x: auto; max-width: 100%; }
.note { color: #666; font-size: 0.9em; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        f"<tr><td>{row[0]}</td>" + "".join(f'<td class="num">{c}</td>' for c in row[1:]) + "</tr>"
        for row in rows
    )
    return f"<div class='tablewrap'><table><tr>{head}</tr>{body}</table></div>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


def _page(title: str, subtitle: str, sections: list[str]) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class='sub'>{_e(subtitle)}</p>"
        + "".join(sections)
        + f"<p class='note'>Made by facelens {_e(__version__)}.</p></body></html>\n"
    )


def _images_section(images: dict[str, Any], protocol: dict[str, Any]) -> str:
    rows = [
        [_e(k), _e(v if not isinstance(v, list) else ", ".join(map(str, v)))]
        for k, v in protocol.items()
    ]
    text = (
        f"<p>{images['templates']:,} of {images['images']:,} images gave a template "
        f"({images['face_rule']} face of each; {images['several_faces']:,} held several). "
        f"No face found: {images['no_face']:,}. Unreadable: {images['unreadable']:,}.</p>"
    )
    listed = [
        *images["no_face_images"][:30],
        *(e["image"] for e in images["unreadable_images"][:30]),
    ]
    if listed:
        text += f"<p class='note'>Not used: {_e(', '.join(listed))}</p>"
    return "<h2>Data and protocol</h2>" + text + _table(["setting", "value"], rows)


def verification_html(result: VerificationResult, title: str) -> str:
    """The verification report page."""
    data, summary = result.data, result.summary
    overview = _table(
        ["metric", "value"],
        [
            ["genuine / impostor pairs", f"{data['genuine_pairs']:,} / {data['impostor_pairs']:,}"],
            ["ROC AUC", _num(data["auc"], 5)],
            ["EER", f"{_pct(data['eer'])} (threshold {data['eer_threshold']:.4f})"],
            [
                "k-fold accuracy",
                f"{_pct(data['accuracy_mean'])} ± {_pct(data['accuracy_std'])} "
                f"over {len(data['fold_accuracies'])} folds",
            ],
            ["pairs left out (no template)", f"{data['pairs_without_template']:,}"],
        ],
    )
    tar_rows = [
        [
            f"{r['far']:g}",
            _pct(r["tar"]),
            _num(r["threshold"]),
            _e(r["reason"] or ""),
        ]
        for r in data["tar_at_far"]
    ]
    tar_table = _table(["FAR", "TAR", "threshold", "note"], tar_rows)
    lines = [("EER threshold", summary.eer_threshold)]
    lines += [
        (f"FAR {r.false_rate:g}", r.threshold) for r in summary.at_far if r.threshold is not None
    ][-2:]
    figures = [
        _figure(
            plots.roc_figure({"all pairs": summary.curve}, len(summary.impostor)),
            "ROC: true accept rate against false accept rate (log scale).",
        ),
        _figure(
            plots.det_figure(
                summary.curve, len(summary.impostor), len(summary.genuine), summary.eer
            ),
            "DET: false reject against false accept rate (both log scales).",
        ),
        _figure(
            plots.score_histogram(
                summary.genuine, summary.impostor, ("genuine", "impostor"), lines
            ),
            "Score distributions of genuine (same person) and impostor pairs.",
        ),
    ]
    shipped = data.get("shipped_calibration")
    sections = [
        "<h2>Summary</h2>" + overview + "<h3>TAR at FAR</h3>" + tar_table,
        "<h2>Plots</h2><div class='figs'>" + "".join(figures) + "</div>",
    ]
    if shipped:
        sections.append(_shipped_section(shipped))
    if "groups" in data:
        sections.append(_verification_groups(result))
    sections.append(_images_section(data["images"], data["protocol"]))
    subtitle = f"1:1 verification, model {data['model']}"
    return _page(title, subtitle, sections)


def _shipped_section(shipped: dict[str, Any]) -> str:
    rows = [
        [f"{c['fmr']:g}", _num(c["threshold"]), _pct(c["far_observed"]), _pct(c["tar"])]
        for c in shipped["thresholds"]
    ]
    text = (
        "<h2>The model's shipped calibration on this data</h2>"
        f"<p>Thresholds measured on {_e(shipped['dataset'])}; here, the false accept rate "
        "they actually give and the true accept rate.</p>"
        + _table(["promised FMR", "threshold", "FAR here", "TAR here"], rows)
    )
    if "cllr" in shipped:
        text += (
            f"<p>Cllr of the shipped likelihood ratios here: {shipped['cllr']:.3f} bits "
            "(0 perfect, 1 uninformative).</p>"
        )
        if len(shipped.get("llr_bins", [])) >= 2:
            text += _figure(
                plots.llr_figure(shipped["llr_bins"]),
                "Likelihood-ratio calibration: empirical log10 LR of score bins "
                "(each holding at least 5 genuine and 5 impostor scores) against the shipped "
                "prediction.",
            )
    return text


def _verification_groups(result: VerificationResult) -> str:
    groups = result.data["groups"]
    table = groups["per_group"]
    names = sorted(table)
    header = ["group", "genuine", "impostor", "AUC", "EER"]
    header += [f"TAR at FAR {far:g}" for far in FAR_GRID] + ["note"]
    rows = []
    for name in names:
        entry = table[name]
        row = [_e(name), f"{entry['genuine_pairs']:,}", f"{entry['impostor_pairs']:,}"]
        if "reason" in entry:
            rows.append(row + ["n/a"] * (2 + len(FAR_GRID)) + [_e(entry["reason"])])
            continue
        row += [_num(entry["auc"], 5), _pct(entry["eer"])]
        row += [_pct(r["tar"]) for r in entry["tar_at_far"]]
        rows.append([*row, ""])
    gap_rows = [
        [_e(metric), _num(g["gap"], 5), _e(g["max_group"]), _e(g["min_group"])]
        for metric, g in groups["gaps"].items()
        if g["gap"] is not None
    ]
    measured = [n for n in names if n in result.groups]
    series: dict[str, list[float | None]] = {"EER": [result.groups[n].eer for n in measured]}
    if measured and table[measured[0]]["at_global_threshold"]:
        strictest = table[measured[0]]["at_global_threshold"][-1]["far_target"]
        series[f"FRR at global FAR {strictest:g}"] = [
            table[n]["at_global_threshold"][-1]["frr"] for n in measured
        ]
    figures = ""
    if measured:
        figures = _figure(
            plots.group_bars(measured, series, "error rate"),
            "EER per group, and each group's false reject rate at the threshold that gives "
            "the smallest measurable FAR over all pairs.",
        ) + _figure(
            plots.roc_figure(
                {n: result.groups[n].curve for n in measured},
                max(len(result.groups[n].impostor) for n in measured),
            ),
            "ROC per group (pairs inside each group).",
        )
    return (
        "<h2>Per group</h2><p>Pairs whose two images are both in the group; "
        f"{groups['images_without_group']:,} images had no group.</p>"
        + _table(header, rows)
        + f"<div class='figs'>{figures}</div>"
        + "<h3>Gaps (largest minus smallest group)</h3>"
        + _table(["metric", "gap", "highest", "lowest"], gap_rows)
        + _unmatched(groups)
    )


def _unmatched(groups: dict[str, Any]) -> str:
    unmatched = groups.get("unmatched_labels") or []
    if not unmatched:
        return ""
    return (
        f"<p class='note'>Group labels that matched no image: {_e(', '.join(unmatched[:50]))}</p>"
    )


def identification_html(result: IdentificationResult, title: str) -> str:
    """The identification report page."""
    data = result.data
    protocol = data["protocol"]
    overview = _table(
        ["metric", "value"],
        [
            ["rank-1 (closed set)", _pct(data["rank1"])],
            ["rank-5 (closed set)", _pct(data["rank5"])],
            [
                "enrolled people / gallery templates",
                f"{protocol['enrolled_identities']:,} / {protocol['gallery_templates']:,}",
            ],
            [
                "known probes / unknown probes",
                f"{protocol['known_probes']:,} / {protocol['unknown_probes']:,}",
            ],
        ],
    )
    dir_rows = [
        [f"{r['fpir']:g}", _pct(r["dir"]), _num(r["threshold"]), _e(r["reason"] or "")]
        for r in data["dir_at_fpir"]
    ]
    figures = [
        _figure(
            plots.cmc_figure(result.cmc),
            "CMC: fraction of known probes whose "
            "person is among the k best-scoring enrolled people.",
        )
    ]
    if result.curve is not None:
        figures.append(
            _figure(
                plots.roc_figure(
                    {"open set": result.curve},
                    len(result.unknown_top),
                    "false positive identification rate (FPIR)",
                    "detection and identification rate (DIR)",
                ),
                "Open set: DIR against FPIR; the threshold is set on the unknown probes' top scores.",
            )
        )
        lines = [
            (f"FPIR {r.false_rate:g}", r.threshold)
            for r in result.at_fpir
            if r.threshold is not None
        ]
        figures.append(
            _figure(
                plots.score_histogram(
                    result.mated,
                    result.unknown_top,
                    ("known probes, right person first", "unknown probes, top score"),
                    lines,
                ),
                "Top scores of known probes ranked correctly, and of never-enrolled probes.",
            )
        )
    sections = [
        "<h2>Summary</h2>"
        + overview
        + "<h3>DIR at FPIR (open set)</h3>"
        + _table(["FPIR", "DIR", "threshold", "note"], dir_rows),
        "<h2>Plots</h2><div class='figs'>" + "".join(figures) + "</div>",
    ]
    if "groups" in data:
        sections.append(_identification_groups(data["groups"]))
    sections.append(_images_section(data["images"], protocol))
    return _page(title, f"1:N identification, model {data['model']}", sections)


def _identification_groups(groups: dict[str, Any]) -> str:
    table = groups["per_group"]
    names = sorted(table)
    points = [p["fpir_target"] for p in (table[names[0]]["at_global_threshold"] if names else [])]
    header = ["group", "known probes", "unknown probes", "rank-1", "rank-5"]
    for fpir in points:
        header += [f"DIR at global FPIR {fpir:g}", "group's FPIR there"]
    rows = []
    for name in names:
        entry = table[name]
        row = [_e(name), f"{entry['known_probes']:,}", f"{entry['unknown_probes']:,}"]
        row += [_pct(entry["rank1"]), _pct(entry["rank5"])]
        for point in entry["at_global_threshold"]:
            row += [_pct(point["dir"]), _pct(point["fpir"])]
        rows.append(row)
    gap_rows = [
        [_e(metric), _num(g["gap"], 5), _e(g["max_group"]), _e(g["min_group"])]
        for metric, g in groups["gaps"].items()
        if g["gap"] is not None
    ]
    series: dict[str, list[float | None]] = {
        "rank-1": [table[n]["rank1"] for n in names],
        "rank-5": [table[n]["rank5"] for n in names],
    }
    for j, point in enumerate(table[names[0]]["at_global_threshold"] if names else []):
        series[f"DIR at global FPIR {point['fpir_target']:g}"] = [
            table[n]["at_global_threshold"][j]["dir"] for n in names
        ]
    bars = plots.group_bars(names, series, "rate") if names else ""
    return (
        "<h2>Per group</h2><p>Known and unknown probes of each group, at the thresholds set "
        f"on all unknown probes; {groups['images_without_group']:,} images had no group.</p>"
        + _table(header, rows)
        + (_figure(bars, "Identification rates per group.") if bars else "")
        + "<h3>Gaps (largest minus smallest group)</h3>"
        + _table(["metric", "gap", "highest", "lowest"], gap_rows)
        + _unmatched(groups)
    )


def write_html(path: Path, page: str) -> None:
    """Write a report page (UTF-8), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
