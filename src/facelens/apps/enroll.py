"""Enrollment: from photos of one person to templates in the gallery.

Each photo must hold exactly one usable face. A photo with none, with several
usable faces, or whose only face is of too low quality is rejected with the
reason; the other photos of the same call are still enrolled (in one
transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2

from facelens.errors import PersonNotFoundError
from facelens.gallery.store import GalleryStore, NewTemplate
from facelens.io.image import ImageSource
from facelens.pipeline.analyzer import FaceAnalyzer
from facelens.types import Face, Person


@dataclass(frozen=True)
class EnrollOutcome:
    """What happened to one photo."""

    source: str
    accepted: bool
    reason: str | None = None
    quality: float | None = None
    template_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "accepted": self.accepted,
            "reason": self.reason,
            "quality": None if self.quality is None else round(self.quality, 3),
            "template_id": self.template_id,
        }


@dataclass
class EnrollReport:
    """The result of enrolling one person from several photos."""

    name: str
    outcomes: list[EnrollOutcome] = field(default_factory=list)
    person: Person | None = None

    @property
    def accepted(self) -> list[EnrollOutcome]:
        return [o for o in self.outcomes if o.accepted]

    @property
    def rejected(self) -> list[EnrollOutcome]:
        return [o for o in self.outcomes if not o.accepted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "templates": self.person.templates if self.person else 0,
            "photos": [o.to_dict() for o in self.outcomes],
        }


def enroll_person(
    analyzer: FaceAnalyzer,
    gallery: GalleryStore,
    name: str,
    sources: Iterable[ImageSource],
    *,
    on_item: Callable[[EnrollOutcome], None] | None = None,
) -> EnrollReport:
    """Add every acceptable photo of ``sources`` to ``name`` (created if new)."""
    report = EnrollReport(name=name)
    pending: list[tuple[int, NewTemplate]] = []
    for result in analyzer.analyze_many(sources):
        choice = result.enrollment_face()
        if isinstance(choice, str):
            outcome = EnrollOutcome(result.source, False, reason=choice)
        else:
            assert choice.template is not None
            crop = _jpeg(choice)
            pending.append(
                (
                    len(report.outcomes),
                    NewTemplate(
                        choice.template.vector,
                        choice.template.model_id,
                        result.source,
                        choice.quality.value,
                        crop,
                    ),
                )
            )
            outcome = EnrollOutcome(result.source, True, quality=choice.quality.value)
        report.outcomes.append(outcome)
        if on_item:
            on_item(outcome)
    if pending:
        ids = gallery.add_templates(name, [t for _, t in pending], create=True)
        for (index, _), template_id in zip(pending, ids, strict=True):
            old = report.outcomes[index]
            report.outcomes[index] = EnrollOutcome(old.source, True, None, old.quality, template_id)
    try:
        report.person = gallery.get_person(name)
    except PersonNotFoundError:  # nobody was stored: every photo was rejected
        report.person = None
    return report


def _jpeg(face: Face) -> bytes | None:
    if face.aligned is None:
        return None
    ok, encoded = cv2.imencode(".jpg", face.aligned[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return encoded.tobytes() if ok else None
