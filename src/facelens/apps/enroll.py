"""Enrollment: from photos of one person to templates in the gallery.

Each photo must hold exactly one usable face, unless the caller picks one (a
:class:`~facelens.pipeline.face_choice.FaceChoice`: the largest usable face, or
the face at a point of the photo). A photo with none, with several usable
faces and no choice, or whose face is of too low quality is rejected with the
reason; the other photos of the same call are still enrolled (in one
transaction).

Before anything is stored each face is screened against the gallery (a
``screen``, e.g. :meth:`facelens.apps.gallery_search.GallerySearch.screen`):

* an exact duplicate (the same face as a template already in the gallery, or as
  another photo of this call: cosine >= :data:`DUPLICATE_SCORE`) is rejected,
  ``duplicate``; it would add nothing;
* a face that another enrolled person matches at the operating point, better
  than the person being enrolled, is rejected, ``matches_other_person``, unless
  ``force``: it is probably that other person's photo, and saving it would make
  them match this person's name.

:func:`prepare_enrollment` decides without writing; :func:`save_enrollment` stores
what was accepted in one transaction; :func:`enroll_person` does both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from facelens.errors import FaceLensError, PersonNotFoundError
from facelens.gallery.store import GalleryStore, NewTemplate, clean_name
from facelens.io.image import ImageSource
from facelens.match.screen import DUPLICATE_SCORE
from facelens.pipeline.face_choice import ONLY_FACE, FaceChoice
from facelens.pipeline.faces import FacePipeline, ImageFaces
from facelens.types import Candidate, Face, Match, Person

__all__ = [
    "DUPLICATE",
    "MATCHES_OTHER_PERSON",
    "EnrollOutcome",
    "EnrollPlan",
    "EnrollReport",
    "enroll_person",
    "prepare_enrollment",
    "save_enrollment",
]

DUPLICATE = "duplicate"
MATCHES_OTHER_PERSON = "matches_other_person"

Screen = Callable[[list[Face]], list[Match]]
"""Who each face already matches in the gallery: the best person by best template, decided
at the operating point (``Match.identity`` set when the best score reaches it)."""


@dataclass(frozen=True)
class EnrollOutcome:
    """What happened to one photo.

    ``code`` says why it was rejected (an error code such as ``decode_failed``,
    ``no_face``, ``multiple_faces``, ``low_quality``, ``duplicate`` or
    ``matches_other_person``); ``match`` is the
    enrolled person the face matched, for the last two (and for a forced save).
    """

    source: str
    accepted: bool
    reason: str | None = None
    quality: float | None = None
    template_id: int | None = None
    code: str | None = None
    match: Candidate | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "accepted": self.accepted,
            "reason": self.reason,
            "code": self.code,
            "quality": None if self.quality is None else round(self.quality, 3),
            "template_id": self.template_id,
            "matches": None if self.match is None else self.match.to_dict(),
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

    @property
    def conflicts(self) -> list[EnrollOutcome]:
        """Photos held back because another enrolled person matches them (see ``force``)."""
        return [o for o in self.outcomes if o.code == MATCHES_OTHER_PERSON]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "templates": self.person.templates if self.person else 0,
            "photos": [o.to_dict() for o in self.outcomes],
        }


@dataclass
class EnrollPlan(EnrollReport):
    """An enrollment decided but not stored yet: ``pending`` pairs an outcome's index
    with the template to store for it."""

    pending: list[tuple[int, NewTemplate]] = field(default_factory=list)


def prepare_enrollment(
    pipeline: FacePipeline,
    gallery: GalleryStore,
    name: str,
    sources: Iterable[ImageSource],
    *,
    screen: Screen | None = None,
    force: bool = False,
    choice: FaceChoice = ONLY_FACE,
    on_item: Callable[[EnrollOutcome], None] | None = None,
) -> EnrollPlan:
    """Analyse and screen every photo of ``sources`` for ``name``; nothing is written.

    The name is checked first (:func:`~facelens.gallery.store.clean_name`, unless the
    person exists), so a refused name costs no analysis. ``choice`` picks each photo's
    face (default: its only usable face).
    """
    try:
        target = gallery.get_person(name).name
    except PersonNotFoundError:
        target = clean_name(name)
    plan = EnrollPlan(name=target)
    for result in pipeline.detect_many(sources):
        outcome = _screened(plan, result, target, screen, force, choice)
        plan.outcomes.append(outcome)
        if on_item:
            on_item(outcome)
    return plan


def _screened(
    plan: EnrollPlan,
    result: ImageFaces,
    target: str,
    screen: Screen | None,
    force: bool,
    choice: FaceChoice,
) -> EnrollOutcome:
    """The outcome of one analysed photo; an accepted face joins ``plan.pending``."""
    face = result.enrollment_face(choice)
    if isinstance(face, FaceLensError):
        return EnrollOutcome(result.source, False, reason=str(face), code=face.code)
    assert face.template is not None
    vector = face.template.vector
    quality = face.quality.value
    for index, earlier in plan.pending:
        if float(np.dot(vector, earlier.vector)) >= DUPLICATE_SCORE:
            reason = f"the same face as {plan.outcomes[index].source}, earlier in this enrollment"
            return EnrollOutcome(result.source, False, reason, quality, code=DUPLICATE)
    match = screen([face])[0] if screen is not None else None
    best = match.candidates[0] if match is not None and match.candidates else None
    if best is not None and best.score >= DUPLICATE_SCORE:
        reason = f"the same face is already enrolled for {best.name!r}: a duplicate adds nothing"
        return EnrollOutcome(result.source, False, reason, quality, code=DUPLICATE, match=best)
    other = best if match is not None and match.identity not in (None, target) else None
    if other is not None and not force:
        assert match is not None
        reason = (
            f"this face matches {other.name!r} (score {other.score:.3f}, threshold "
            f"{match.threshold:.3f}) better than {target!r}: not saved unless forced"
        )
        return EnrollOutcome(
            result.source, False, reason, quality, code=MATCHES_OTHER_PERSON, match=other
        )
    template = NewTemplate(vector, face.template.model_id, result.source, quality, _jpeg(face))
    plan.pending.append((len(plan.outcomes), template))
    return EnrollOutcome(result.source, True, quality=quality, match=other)


def save_enrollment(gallery: GalleryStore, plan: EnrollPlan) -> EnrollReport:
    """Store the accepted templates of ``plan`` in one transaction (the person is
    created if new); the report gives each stored photo its template id."""
    report = EnrollReport(name=plan.name, outcomes=list(plan.outcomes))
    if plan.pending:
        templates = [t for _, t in plan.pending]
        ids = gallery.add_templates(plan.name, templates, create=True)
        for (index, _), template_id in zip(plan.pending, ids, strict=True):
            old = report.outcomes[index]
            report.outcomes[index] = EnrollOutcome(
                old.source, True, None, old.quality, template_id, match=old.match
            )
    try:
        report.person = gallery.get_person(plan.name)
    except PersonNotFoundError:  # nobody was stored: every photo was rejected
        report.person = None
    return report


def enroll_person(
    pipeline: FacePipeline,
    gallery: GalleryStore,
    name: str,
    sources: Iterable[ImageSource],
    *,
    screen: Screen | None = None,
    force: bool = False,
    choice: FaceChoice = ONLY_FACE,
    on_item: Callable[[EnrollOutcome], None] | None = None,
) -> EnrollReport:
    """Add every acceptable photo of ``sources`` to ``name`` (created if new); see the
    module docstring for ``screen``, ``force`` and ``choice``."""
    plan = prepare_enrollment(
        pipeline, gallery, name, sources, screen=screen, force=force, choice=choice, on_item=on_item
    )
    return save_enrollment(gallery, plan)


def _jpeg(face: Face) -> bytes | None:
    if face.aligned is None:
        return None
    ok, encoded = cv2.imencode(".jpg", face.aligned[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return encoded.tobytes() if ok else None
