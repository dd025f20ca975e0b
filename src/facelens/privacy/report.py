"""The anonymization report of one input: JSON for machines, one self-contained HTML page for people.

The HTML has no external resources (styles inline, pictures as data URIs), so
it can be opened offline and archived beside the output. When the privacy
check failed, it opens with what failed and in which frames, and small
pictures of the frames to review (what failed outlined in red). Then the summary,
the privacy check, the segments flagged for review, a timeline of the tracks
(videos) or the faces table (images), and a downscaled picture of the output.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facelens.types import ImageArray

__all__ = ["write_reports"]

PREVIEW_WIDTH = 480
"""Width in pixels of the output picture embedded in the HTML."""


def write_reports(
    report: dict[str, Any],
    preview: ImageArray | None,
    stem: Path,
    thumbnails: dict[int, ImageArray] | None = None,
) -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.html``; returns both paths.

    ``thumbnails`` maps frame indexes to small pictures of frames to review (HTML only).
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path = stem.with_name(stem.name + ".json")
    html_path = stem.with_name(stem.name + ".html")
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report, preview, thumbnails), encoding="utf-8")
    return [json_path, html_path]


def render_html(
    report: dict[str, Any],
    preview: ImageArray | None,
    thumbnails: dict[int, ImageArray] | None = None,
) -> str:
    """The report as one HTML page (UTF-8, no external resources)."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Anonymization report: {esc(Path(report['source']).name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Anonymization report</h1><p class='source'>{esc(report['source'])}</p>",
    ]
    if report.get("error"):
        parts.append(f"<p class='bad'>Not anonymized: {esc(report['error'])}</p>")
    if report.get("check_failed"):
        parts.append(_failures(report.get("failures", []), thumbnails or {}))
    if report.get("partial"):
        parts.append(
            "<p class='bad'>Partial: the output holds only part of the input. "
            + esc("; ".join(report.get("problems", [])))
            + "</p>"
        )
    parts.append(_summary(report))
    parts.append(_check(report.get("check")))
    parts.append(_review(report["review"]))
    if report["kind"] == "video":
        parts.append(_timeline(report))
        parts.append(_tracks_table(report.get("tracks", [])))
    else:
        parts.append(_faces_table(report.get("faces", [])))
    if preview is not None:
        parts.append(
            "<h2>Output</h2>"
            f"<img alt='anonymized output' src='data:image/jpeg;base64,{_jpeg_base64(preview)}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _failures(failures: list[dict[str, Any]], thumbnails: dict[int, ImageArray]) -> str:
    """What failed and where, first; then the frames to review as small pictures."""
    items = "".join(
        f"<li>{html.escape(f['what'])}: frames {_runs(f['frames'])}</li>" for f in failures
    )
    pictures = "".join(
        f"<figure><img alt='frame {index} to review' "
        f"src='data:image/jpeg;base64,{_jpeg_base64(picture, quality=75)}'>"
        f"<figcaption>frame {index}</figcaption></figure>"
        for index, picture in sorted(thumbnails.items())
    )
    return (
        "<section class='failed' id='failed'><h2>Privacy check failed</h2>"
        "<p class='bad'>The output was written, but a person must review it before use.</p>"
        f"<ul>{items}</ul>"
        + (f"<h3>Frames to review</h3><div class='thumbs'>{pictures}</div>" if pictures else "")
        + "</section>"
    )


def _summary(report: dict[str, Any]) -> str:
    margin = report["margin"]
    rows = [
        ("Output", report.get("output") or "-"),
        ("Kind", f"{report['kind']}, {report['width']}x{report['height']} px"),
        ("Method", report["method"]),
        ("Mode", report["mode"] + (f" ({', '.join(report['names'])})" if report["names"] else "")),
        (
            "Region margin",
            f"top {margin['top']:.2f} x face height, bottom {margin['bottom']:.2f} x height, "
            f"sides {margin['sides']:.2f} x width each",
        ),
        ("Face detections anonymized", str(report["faces_anonymized"])),
        ("Faces/tracks left visible", str(report["faces_kept"])),
    ]
    if report["kind"] == "video":
        rows += [
            ("Tracks anonymized", str(report["tracks_anonymized"])),
            ("Frames", f"{report['frames']} at {report['fps']} fps"),
            ("Frames touched", str(report["frames_touched"])),
            ("Audio", _audio_text(report.get("audio"))),
        ]
    rows.append(("Verified hiding", _verify_text(report.get("verify"))))
    rows.append(("Time", f"{report['seconds']} s"))
    return "<h2>Summary</h2>" + _table(["", ""], [[k, v] for k, v in rows], header=False)


def _verify_text(verify: dict[str, Any] | None) -> str:
    """The summary's line on verified hiding (privacy/verify.py)."""
    if verify is None:
        return "off (--no-verify)"
    unit = "tracks" if "tracks" in verify else "faces"
    return (
        f"{verify[unit]} {unit} attacked by SFace, dlib and their fusion (FMR 1e-2): "
        f"{verify['escalated']} hidden harder, {verify['unverified']} still matched at the "
        f"end of the ladder (listed for review); {verify['cpu_seconds']} s CPU"
    )


def _verified(item: dict[str, Any]) -> str:
    """A face's or track's verification in a few words."""
    result = item.get("verification")
    if result is None:
        return "-"
    verdict = "yes" if result["verified"] else "NO: still matched"
    escalations = result["escalations"]
    if not escalations:
        return f"{verdict} ({result['ended_with']})"
    return f"{verdict}, {escalations} escalation{'s' * (escalations > 1)} to {result['ended_with']}"


def _audio_text(audio: dict[str, Any] | None) -> str:
    if not audio:
        return "no audio stream"
    return ", ".join(f"{k}: {v}" for k, v in audio.items())


def _check(check: dict[str, Any] | None) -> str:
    if check is None:
        return "<h2>Privacy check</h2><p>Not run.</p>"
    rec, ind = check["recognizer"], check["independent_detector"]
    verdict = (
        "<p class='good'>Passed: no anonymized face re-identified or detected.</p>"
        if check["passed"]
        else "<p class='bad'>Failed: see the counts below.</p>"
    )
    rows = [
        ["Frames checked", str(check["frames_checked"])],
        ["Anonymized regions checked", str(check["regions_checked"])],
        [
            "Recognizer: faces found in anonymized regions",
            str(rec["faces_found_in_anonymized_regions"]),
        ],
        ["Recognizer: faces re-identified (target 0)", str(rec["faces_reidentified"])],
        ["Recognizer: tracks re-identified (target 0)", str(len(rec["tracks_reidentified"]))],
        [
            "Recognizer: people identified outside anonymized regions",
            ", ".join(f"{k} ({v})" for k, v in rec["identified_outside_anonymized_regions"].items())
            or "none",
        ],
        [
            f"Independent detector ({ind['model']}): faces in anonymized regions (target 0)",
            str(ind["faces_in_anonymized_regions"]),
        ],
        [
            "Independent detector: frames with such faces",
            _runs(ind["frames_with_faces_in_anonymized_regions"]),
        ],
        [
            "Independent detector: face-shaped finds in anonymized regions that the recognizer "
            "matched neither to the original nor to the gallery at FMR 1e-2 (not failures)",
            _count_in_frames(
                ind.get("face_shaped_finds_nobody_matched", 0),
                ind.get("frames_with_face_shaped_finds", []),
            ),
        ],
        [
            "Independent detector: of those, finds partly outside their region (a box that "
            "takes in the hair and shoulders around a hidden head; not failures)",
            _count_in_frames(
                ind.get("face_shaped_finds_partly_outside", 0),
                ind.get("frames_with_finds_partly_outside", []),
            ),
        ],
        [
            "Independent detector: faces outside anonymized regions, not hidden (target 0)",
            str(ind["faces_outside_anonymized_regions"]),
        ],
        [
            "Independent detector: frames with faces not hidden",
            _runs(ind["frames_with_faces_outside_anonymized_regions"]),
        ],
        [
            "Independent detector: faces on faces kept visible on purpose",
            str(ind.get("faces_on_faces_kept_visible", 0)),
        ],
        ["Not checked", check.get("skipped") or "nothing: every frame was read"],
    ]
    return "<h2>Privacy check</h2>" + verdict + _table(["", ""], rows, header=False)


def _review(review: list[dict[str, Any]]) -> str:
    if not review:
        return "<h2>For review</h2><p>Nothing flagged.</p>"
    rows = [[_runs([item["frames"]]), html.escape(item["reason"])] for item in review]
    return "<h2>For review</h2>" + _table(["frames", "why"], rows, escape=False)


def _timeline(report: dict[str, Any]) -> str:
    frames = max(1, int(report["frames"]))
    tracks = report.get("tracks", [])
    width, row, left = 760, 18, 70
    height = row * (len(tracks) + 1) + 24
    scale = (width - left - 10) / frames
    items = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"]
    for i, track in enumerate(tracks):
        y = 4 + i * row
        colour = "#c0392b" if track.get("anonymized") else "#27ae60"
        items.append(f"<text x='0' y='{y + 12}' font-size='11'>track {track['track_id']}</text>")
        first, last = track["first_frame"], track["last_frame"]
        items.append(
            f"<rect x='{left + first * scale:.1f}' y='{y}' width='{max(1.0, (last - first + 1) * scale):.1f}' "
            f"height='{row - 6}' fill='{colour}'><title>frames {first}-{last}</title></rect>"
        )
    y = 4 + len(tracks) * row
    items.append(f"<text x='0' y='{y + 12}' font-size='11'>review</text>")
    for item in report["review"]:
        first, last = item["frames"]
        items.append(
            f"<rect x='{left + first * scale:.1f}' y='{y}' width='{max(1.0, (last - first + 1) * scale):.1f}' "
            f"height='{row - 6}' fill='#f1c40f'><title>{html.escape(item['reason'])}</title></rect>"
        )
    items.append(
        f"<text x='{left}' y='{height - 4}' font-size='10'>frame 0</text>"
        f"<text x='{width - 80}' y='{height - 4}' font-size='10'>frame {frames - 1}</text></svg>"
    )
    legend = (
        "<p class='legend'><span style='color:#c0392b'>■</span> anonymized track "
        "<span style='color:#27ae60'>■</span> track left visible "
        "<span style='color:#f1c40f'>■</span> flagged for review</p>"
    )
    return "<h2>Timeline</h2>" + "".join(items) + legend


def _tracks_table(tracks: list[dict[str, Any]]) -> str:
    rows = [
        [
            str(t["track_id"]),
            f"{t['first_frame']}-{t['last_frame']}",
            str(t["frames_detected"]),
            str(t["frames_hidden"]),
            f"{t['min_score']:.2f}",
            str(t.get("identity") or "-"),
            "yes" if t["anonymized"] else "no",
            html.escape(_verified(t)),
            html.escape(t["reason"]),
        ]
        for t in tracks
    ]
    return "<h2>Tracks</h2>" + _table(
        [
            "track",
            "frames",
            "detected in",
            "hidden in",
            "lowest score",
            "identity",
            "anonymized",
            "verified",
            "why",
        ],
        rows,
        escape=False,
    )


def _faces_table(faces: list[dict[str, Any]]) -> str:
    rows = [
        [
            " ".join(f"{v:.0f}" for v in f["box"]),
            f"{f['score']:.2f}",
            f"{f['quality']:.2f}",
            str(f.get("identity") or "-"),
            "yes" if f["anonymized"] else "no",
            html.escape(_verified(f)),
            html.escape(f["reason"]),
        ]
        for f in faces
    ]
    return "<h2>Faces</h2>" + _table(
        ["box x y w h", "score", "quality", "identity", "anonymized", "verified", "why"],
        rows,
        escape=False,
    )


def _table(
    columns: list[str], rows: list[list[str]], *, header: bool = True, escape: bool = True
) -> str:
    def cell(value: str) -> str:
        return html.escape(value) if escape else value

    head = (
        "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>" if header else ""
    )
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _count_in_frames(count: int, runs: list[list[int]]) -> str:
    return f"{count} (frames {_runs(runs)})" if count else "0"


def _runs(runs: list[list[int]]) -> str:
    if not runs:
        return "none"
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _jpeg_base64(pixels: ImageArray, quality: int = 85) -> str:
    picture = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    if picture.width > PREVIEW_WIDTH:
        picture = picture.resize(
            (PREVIEW_WIDTH, max(1, round(picture.height * PREVIEW_WIDTH / picture.width)))
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:900px;color:#222}
@media (max-width:600px){body{margin:1em}td,th{overflow-wrap:anywhere;font-size:13px}}
.source{overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:14px}
.good{color:#1e8449;font-weight:bold}.bad{color:#c0392b;font-weight:bold}.source{color:#555}
.legend{font-size:12px}img{max-width:100%;border:1px solid #ccc}
.failed{border:2px solid #c0392b;padding:0 1em 1em;margin-bottom:1em}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumbs figure{margin:0;font-size:12px}
"""
