"""Anonymize the faces of images (and, in :mod:`facelens.apps.video.anonymize`, videos).

:class:`Anonymizer` finds every face, decides per face (or per track) whether
to hide it (:class:`facelens.privacy.policy.Policy`), hides it in the region
of :mod:`facelens.privacy.regions` with a method of
:mod:`facelens.privacy.methods`, verifies each hidden face against every
registered recognizer and escalates the ones they still match
(:mod:`facelens.privacy.verify`; on by default, ``verify=False`` turns it
off), writes the output and returns a report; then it attacks its own output
with the privacy check of :mod:`facelens.privacy.check`. A bad input becomes a report with an ``error``:
the rest of a batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facelens.errors import FaceLensError
from facelens.gallery.store import TemplateMatrix
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.decide import identify_faces
from facelens.pipeline.faces import FacePipeline
from facelens.privacy import regions as margins
from facelens.privacy.centerface import load_centerface
from facelens.privacy.check import CheckSummary, PrivacyChecker, Thumbnails
from facelens.privacy.methods import SHIPPED, Method, Strength, anonymize_regions
from facelens.privacy.policy import Policy
from facelens.privacy.recall import find_faces_in_image, hiding_detector
from facelens.privacy.regions import Region, anonymization_region
from facelens.privacy.verify import HidingVerifier, TrackVerifier, Verification
from facelens.types import Detection, Face, FloatArray, ImageArray, Match

__all__ = ["LOW_CONFIDENCE", "AnonymizationReport", "Anonymizer"]

LOW_CONFIDENCE = 0.75
"""Faces detected with a confidence below this are flagged for a person to review
(the detector reports faces from 0.6 up; clear frontal faces score above 0.85)."""


@dataclass
class FaceDecision:
    """One face of an image: where it was, who it may be, and what was done."""

    face: Face
    region: Region
    anonymized: bool
    reason: str
    match: Match | None = None
    verification: Verification | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "box": self.face.box.as_list(),
            "score": round(self.face.score, 3),
            "quality": round(self.face.quality.value, 3),
            "region": self.region.box.as_list(),
            "anonymized": self.anonymized,
            "reason": self.reason,
        }
        if self.match is not None:
            data["identity"] = self.match.identity
            data["identity_score"] = (
                None if np.isnan(self.match.score) else round(self.match.score, 4)
            )
        if self.verification is not None:
            data["verification"] = self.verification.to_dict()
        return data


@dataclass
class AnonymizationReport:
    """What was done to one input, as written to ``<output>.json`` and ``.html``.

    ``faces`` lists the faces of an image; for a video, ``tracks`` lists the
    tracks and ``frames_touched`` counts the frames where at least one region
    was hidden. ``review`` lists frame ranges a person should look at (low
    detection confidence, a face held after it was lost, a face the
    independent detector found outside every region).

    ``check_failed`` is true when the privacy check ran and failed (a hidden face
    re-identified or still detected, a face left unhidden); the JSON then leads
    with ``failures`` (what failed, in which frames) and ``thumbnails`` keeps
    small pictures of the first frame of each failing run for the HTML.

    ``partial`` is true when the output holds only part of the input: a video
    whose decoding stopped early (truncated, corrupt), or an animated image of
    which only the first frame was read; ``problems`` says why.
    """

    source: str
    kind: str  # "image" or "video"
    output: str | None = None
    method: str = "blur"
    policy: Policy = field(default_factory=Policy)
    width: int = 0
    height: int = 0
    frames: int = 0
    fps: float | None = None
    faces: list[FaceDecision] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)
    faces_anonymized: int = 0
    frames_touched: int = 0
    review: list[dict[str, Any]] = field(default_factory=list)
    check: CheckSummary | None = None
    audio: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)  # e.g. a truncated video, in words
    partial: bool = False  # the output holds only part of the input (see ``problems``)
    timing: dict[str, float] = field(default_factory=dict)  # seconds per pass (videos)
    verify: dict[str, Any] | None = None  # what verified hiding did (None: turned off)
    error: FaceLensError | None = None
    seconds: float = 0.0
    preview: ImageArray | None = field(default=None, repr=False)  # an output frame for the HTML
    thumbnails: Thumbnails = field(default_factory=Thumbnails, repr=False)  # frames to review

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def check_failed(self) -> bool:
        """The privacy check ran on the output and failed."""
        return self.check is not None and not self.check.passed

    @property
    def tracks_anonymized(self) -> int:
        return sum(1 for t in self.tracks if t.get("anonymized"))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "check_failed": self.check_failed,
            "failures": [] if self.check is None else self.check.failures(),
            "kind": self.kind,
            "output": self.output,
            "method": self.method,
            "mode": self.policy.mode,
            "names": sorted(self.policy.names),
            "margin": {
                "top": margins.MARGIN_TOP,
                "bottom": margins.MARGIN_BOTTOM,
                "sides": margins.MARGIN_SIDE,
                "unit": "fraction of the face box height (top, bottom) and width (sides)",
            },
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "fps": self.fps,
            "faces_anonymized": self.faces_anonymized,
            "faces_kept": len(self.faces) - self.faces_anonymized
            if self.kind == "image"
            else sum(1 for t in self.tracks if not t.get("anonymized")),
            "tracks_anonymized": self.tracks_anonymized if self.kind == "video" else None,
            "frames_touched": self.frames_touched,
            "review": self.review,
            "check": None if self.check is None else self.check.to_dict(),
            "seconds": round(self.seconds, 2),
            "problems": self.problems,
            "partial": self.partial,
            "timing": {k: round(v, 2) for k, v in self.timing.items()},
            "verify": self.verify,
        }
        if self.kind == "image":
            data["faces"] = [f.to_dict() for f in self.faces]
        else:
            data["tracks"] = self.tracks
            data["audio"] = self.audio
        if self.error is not None:
            data["error"] = str(self.error)
            data["error_code"] = self.error.code
        return data


class Anonymizer:
    """Hides faces in images and videos and checks the result.

    Args:
        pipeline: the face pipeline (detector + embedder).
        method: ``blur``, ``pixelate``, ``box`` or ``ellipse``.
        policy: whom to hide (every face by default).
        gallery: templates of the enrolled people (needed by ``--keep``/``--only``;
            also used by the check when given).
        point, calibration: the operating point of identity decisions.
        check: run the privacy check on the output.
        verify: attack each hidden face with every registered recognizer before writing and
            escalate its hiding while one matches (:mod:`facelens.privacy.verify`).
        strength: the method's strength (the shipped one; weaker ones are for tests and
            measurements).
    """

    def __init__(
        self,
        pipeline: FacePipeline,
        point: OperatingPoint,
        calibration: Calibration,
        *,
        method: Method = "blur",
        policy: Policy | None = None,
        gallery: TemplateMatrix | None = None,
        check: bool = True,
        verify: bool = True,
        strength: Strength = SHIPPED,
    ) -> None:
        self.pipeline = pipeline
        self.method: Method = method
        self.policy = policy or Policy()
        self.point = point
        self.calibration = calibration
        self.gallery = gallery if gallery is not None else _empty_gallery()
        self.run_check = check
        self.verify = verify
        self.strength = strength
        if self.policy.needs_identity and len(self.gallery.vectors) == 0:
            raise ValueError("--keep/--only need enrolled people, but the gallery is empty")
        missing = self.policy.names - set(self.gallery.names.values())
        if missing:
            raise ValueError(f"not enrolled in the gallery: {', '.join(sorted(missing))}")

    def checker(self) -> PrivacyChecker:
        return PrivacyChecker(
            self.pipeline, load_centerface(), self.point, self.calibration, self.gallery
        )

    def new_summary(self) -> CheckSummary:
        """An empty check summary that names this anonymizer's independent detector."""
        return CheckSummary(independent_model=self.checker().independent_name)

    def track_verifier(self) -> TrackVerifier | None:
        """A new per-track verifier for one video (``None`` when verification is off)."""
        return TrackVerifier(self.method, self.strength) if self.verify else None

    @property
    def needs_templates(self) -> bool:
        return self.policy.needs_identity or self.run_check

    def matches(self, faces: list[Face]) -> list[Match] | None:
        """Identity decisions for faces with templates (``None`` in mode ``all``)."""
        if not self.policy.needs_identity:
            return None
        return identify_faces(faces, self.gallery, self.point, self.calibration)

    # ---- images -------------------------------------------------------------

    def anonymize_image(
        self,
        source: Path,
        output: Path,
        progress: Callable[[float, str], None] | None = None,
    ) -> AnonymizationReport:
        """Anonymize one image file into ``output``; errors are returned in the report.

        ``progress(share, message)``, when given, is told each step as it starts
        (finding faces, hiding them, checking), with the share of the work done in [0, 1].
        """
        import time

        def step(share: float, message: str) -> None:
            if progress is not None:
                progress(share, message)

        started = time.perf_counter()
        report = AnonymizationReport(
            str(source), "image", method=self.method, policy=self.policy, frames=1
        )
        try:
            step(0.0, "finding faces")
            image = self.pipeline.load(source)
            if image.notes:  # an animation: only its first frame is anonymized and written
                report.problems.extend(image.notes)
                report.partial = True
            # recall first: the lower threshold, dark gain and tiles of privacy/recall.py
            found = find_faces_in_image(
                hiding_detector(self.pipeline.detector), image.pixels, self.pipeline.max_side
            )
            faces = self.pipeline.faces_at(image, found, embed=self.needs_templates)
            step(0.5, "hiding faces")
            pixels = image.pixels.copy()
            report.width, report.height = image.width, image.height
            report.faces = self.decide(faces, image.width, image.height)
            hidden = [d for d in report.faces if d.anonymized]
            if self.verify:
                pixels = self._hide_verified(pixels, hidden, report, output)
            else:
                anonymize_regions(
                    pixels, [d.region.box for d in hidden], self.method, self.strength
                )
            report.faces_anonymized = len(hidden)
            report.frames_touched = 1 if hidden else 0
            report.review = [
                {
                    "frames": [0, 0],
                    "reason": f"low detection confidence {d.face.score:.2f}",
                    "box": d.face.box.as_list(),
                }
                for d in report.faces
                if d.face.score < LOW_CONFIDENCE
            ]
            report.review += [
                {
                    "frames": [0, 0],
                    "reason": "still matched by "
                    + ", ".join(d.verification.matched)
                    + f" after {d.verification.step.name}",
                    "box": d.face.box.as_list(),
                }
                for d in hidden
                if d.verification is not None and not d.verification.verified
            ]
            write_image(pixels, output)
            report.output = str(output)
            report.preview = pixels
            if self.run_check:
                step(0.6, "checking")
                report.check = self._check_image(output, report.faces, report.thumbnails)
                _review_outside(report, report.check)
        except FaceLensError as error:
            report.error = error
        report.seconds = time.perf_counter() - started
        return report

    def _hide_verified(
        self,
        pixels: ImageArray,
        hidden: list[FaceDecision],
        report: AnonymizationReport,
        output: Path,
    ) -> ImageArray:
        """``pixels`` with every hidden face drawn, attacked (as it will be read back from
        ``output``: through JPEG for a JPEG) and escalated until no recognizer matches it (each
        decision gets its :class:`Verification`)."""
        import time

        started = time.process_time()
        faces = [
            (Detection(d.face.box, d.face.landmarks, d.face.score), d.region.box) for d in hidden
        ]
        written = _through_jpeg if output.suffix.lower() in (".jpg", ".jpeg") else None
        out, results = HidingVerifier.shared().hide(
            pixels, faces, self.method, self.strength, written=written
        )
        for decision, result in zip(hidden, results, strict=True):
            decision.verification = result
        report.verify = verify_summary(results, time.process_time() - started)
        return out

    def anonymize_images(self, pairs: Iterable[tuple[Path, Path]]) -> Iterator[AnonymizationReport]:
        """One report per ``(source, output)`` pair, in order; a bad image never stops the rest."""
        for source, output in pairs:
            yield self.anonymize_image(source, output)

    def decide(self, faces: list[Face], width: int, height: int) -> list[FaceDecision]:
        """The decision and region of each face of a ``width x height`` image."""
        matches = self.matches(faces)
        decisions = []
        for index, face in enumerate(faces):
            match = matches[index] if matches is not None else None
            hide, reason = self.policy.decide(match)
            region = anonymization_region(face.box, face.score, width, height)
            decisions.append(FaceDecision(face, region, hide, reason, match))
        return decisions

    def _check_image(
        self, output: Path, faces: list[FaceDecision], thumbnails: Thumbnails
    ) -> CheckSummary:
        written = self.pipeline.load(output).pixels
        hidden = [d for d in faces if d.anonymized]
        originals: list[FloatArray | None] = [
            d.face.template.vector if d.face.template is not None else None for d in hidden
        ]
        regions = [d.region for d in hidden]
        kept = [d.region.box for d in faces if not d.anonymized]
        summary = self.new_summary()
        check = self.checker().check(written, regions, originals, kept)
        summary.add(0, regions, check)
        if check.failed:
            thumbnails.add(0, written, check.boxes_to_review(regions))
        return summary


def verify_summary(results: list[Verification], cpu_seconds: float) -> dict[str, Any]:
    """The report's ``verify`` block: faces verified, escalated, left unverified, CPU s."""
    return {
        "faces": len(results),
        "escalated": sum(1 for r in results if r.escalations),
        "unverified": sum(1 for r in results if not r.verified),
        "ended_with": {
            name: sum(1 for r in results if r.step.name == name)
            for name in sorted({r.step.name for r in results})
        },
        "cpu_seconds": round(cpu_seconds, 3),
    }


def _review_outside(report: AnonymizationReport, check: CheckSummary) -> None:
    """Flag the frames where the check failed: a face left unhidden, one still detected or
    re-identified in a hidden region."""
    for failure in check.failures():
        for first, last in failure["frames"]:
            report.review.append({"frames": [first, last], "reason": failure["what"]})
    report.review.sort(key=lambda r: (r["frames"][0], r["reason"]))


def _through_jpeg(pixels: ImageArray) -> ImageArray:
    """``pixels`` as :func:`write_image` writes them to a JPEG and Pillow reads them back."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    buffer.seek(0)
    with Image.open(buffer) as picture:
        return np.asarray(picture.convert("RGB"))


JPEG_QUALITY = 95
"""Quality of the JPEG images written."""


def write_image(pixels: ImageArray, output: Path) -> None:
    """Save an RGB image; JPEG at quality 95, other formats by their suffix."""
    output.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(pixels)
    if output.suffix.lower() in (".jpg", ".jpeg"):
        picture.save(output, quality=JPEG_QUALITY)
    else:
        picture.save(output)


def _empty_gallery() -> TemplateMatrix:
    return TemplateMatrix(
        template_ids=np.zeros(0, np.int64),
        vectors=np.zeros((0, 0), np.float32),
        person_ids=np.zeros(0, np.int64),
        qualities=np.zeros(0, np.float32),
        names={},
    )
