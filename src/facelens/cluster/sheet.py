"""Contact sheets: self-contained HTML pages to look at the groups (thumbnails embedded).

``index.html`` shows every group of at least ``min_faces`` faces, a strip of
its best-fitting faces, and links to one page per group (``group-<id>.html``)
with every face. Under each thumbnail: the face id (what corrections take),
the photo's file name and the face's *fit*, its mean cosine score to the
group's other faces; faces that fit below the merge threshold are outlined
in red, first candidates for ``split``, ``move`` or ``reject``. The pages
load nothing from anywhere: they open offline.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from facelens.cluster.clusterer import FaceClusters
from facelens.cluster.store import FaceRecord, GroupRecord

__all__ = ["write_contact_sheets"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin: 1.2rem 0 0.4rem; }
section { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 0.6rem 1rem;
          margin-bottom: 1rem; }
.faces { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; width: 112px; text-align: center; font-size: 11px; }
figure img { width: 112px; height: 112px; object-fit: cover; border-radius: 6px;
             border: 3px solid transparent; display: block; }
figure.weak img { border-color: #d33; }
figcaption { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.name { color: #06c; } .muted { color: #777; } code { background: #eee; padding: 0 3px; }
"""

STRIP_FACES = 12
"""Faces of a group shown on the index page."""


def write_contact_sheets(clusters: FaceClusters, out_dir: Path, min_faces: int = 2) -> Path:
    """Write ``index.html`` and one page per group shown into ``out_dir``; returns the index."""
    out_dir.mkdir(parents=True, exist_ok=True)
    threshold = clusters.operating_point().threshold
    groups = clusters.store.groups()
    shown = [g for g in groups if g.faces >= min_faces]
    sections = []
    for group in shown:
        faces, fit = _faces_by_fit(clusters, group)
        (out_dir / f"group-{group.id}.html").write_text(
            _page(
                f"Group {group.id}" + (f" · {group.name}" if group.name else ""),
                '<p><a href="index.html">All groups</a></p>'
                + _group_section(group, faces, fit, threshold, link=False)
                + _commands_hint(group),
            ),
            encoding="utf-8",
        )
        sections.append(_group_section(group, faces[:STRIP_FACES], fit, threshold, link=True))
    hidden = len(groups) - len(shown)
    summary = (
        f"<p>{len(shown)} groups of {min_faces} faces or more"
        + (f"; {hidden} smaller groups not shown" if hidden else "")
        + f". Merge threshold: cosine {threshold:.3f}.</p>"
    )
    index = out_dir / "index.html"
    index.write_text(_page("Face groups", summary + "".join(sections)), encoding="utf-8")
    return index


def _faces_by_fit(
    clusters: FaceClusters, group: GroupRecord
) -> tuple[list[_Shown], dict[int, float]]:
    """The group's faces with their crops, best fit first, and the fit of each."""
    fit = clusters.group_cohesion(group.id)
    faces = sorted(clusters.store.faces(group_id=group.id), key=lambda f: -fit[f.id])
    return [_Shown(f, clusters.store.crop(f.id)) for f in faces], fit


@dataclass(frozen=True)
class _Shown:
    face: FaceRecord
    crop: bytes | None


def _group_section(
    group: GroupRecord,
    faces: list[_Shown],
    fit: dict[int, float],
    threshold: float,
    *,
    link: bool,
) -> str:
    title = f"Group {group.id}"
    if group.name:
        title += f' · <span class="name">{html.escape(group.name)}</span> (in the gallery)'
    title += f' <span class="muted">· {group.faces} faces</span>'
    if link:
        title = f'<a href="group-{group.id}.html">{title}</a>'
    figures = "".join(_figure(shown, fit[shown.face.id], threshold, group.faces) for shown in faces)
    return f'<section><h2>{title}</h2><div class="faces">{figures}</div></section>'


def _figure(shown: _Shown, fit: float, threshold: float, group_size: int) -> str:
    face = shown.face
    weak = group_size > 1 and fit < threshold
    source = html.escape(Path(face.source).name)
    image = (
        f'<img alt="face {face.id}" src="data:image/jpeg;base64,{base64.b64encode(shown.crop).decode()}">'
        if shown.crop is not None
        else '<div class="muted">no crop</div>'
    )
    fit_text = f" · fit {fit:.2f}" if group_size > 1 else ""
    return (
        f'<figure class="{"weak" if weak else ""}" title="{html.escape(face.source)}">{image}'
        f"<figcaption>face {face.id}{fit_text}</figcaption>"
        f'<figcaption class="muted">{source}</figcaption></figure>'
    )


def _commands_hint(group: GroupRecord) -> str:
    return (
        "<section><h2>Corrections</h2><p>"
        f"<code>facelens cluster name {group.id} 'Full Name'</code> enrolls this group; "
        f"<code>facelens cluster split {group.id} FACE...</code> takes faces out into a new group; "
        "<code>facelens cluster move FACE... --to GROUP</code>; "
        "<code>facelens cluster reject FACE...</code> (not this person); "
        f"<code>facelens cluster merge {group.id} OTHER</code>.</p></section>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
