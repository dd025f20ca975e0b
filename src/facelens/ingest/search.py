"""Where does this person appear? A face against every face of a scan index.

Every face of the scan index is a candidate; the best ones (exact cosine,
through the ANN index of :mod:`facelens.index` when the scan holds many
faces) are ranked, and each appearance comes with its evidence: the score,
the log10 likelihood ratio and the impostor tail rate (``score_fmr``) from
the embedder's calibration, and whether it reaches the threshold of the
operating point (``--fmr`` / ``--threshold``), as ``identify`` reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelens.gallery.store import TemplateMatrix
from facelens.index.base import TemplateIndex
from facelens.index.search import ANN_MIN_TEMPLATES, top_templates
from facelens.ingest.scan_index import ScanFaces
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.decide import score_evidence
from facelens.types import FloatArray

__all__ = ["Appearance", "search_appearances"]


@dataclass(frozen=True)
class Appearance:
    """One face of the collection that may be the person searched for.

    ``box`` is ``[x, y, width, height]`` in pixels of the image or frame;
    ``frame_index``/``time`` (seconds) locate it in a video (None for photos).
    """

    source: str
    box: list[float]
    frame_index: int | None
    time: float | None
    score: float
    llr: float | None
    score_fmr: float
    match: bool
    face: int | None = None  # the face's id in a library

    def to_dict(self) -> dict[str, Any]:
        return {
            "face": self.face,
            "source": self.source,
            "box": self.box,
            "frame_index": self.frame_index,
            "time": None if self.time is None else round(self.time, 3),
            "score": round(self.score, 4),
            "llr": None if self.llr is None else round(self.llr, 3),
            "score_fmr": self.score_fmr,
            "match": self.match,
        }


def search_appearances(
    probe: FloatArray,
    faces: ScanFaces,
    point: OperatingPoint,
    calibration: Calibration,
    *,
    limit: int = 100,
    include_below: bool = False,
    index: TemplateIndex | None = None,
) -> list[Appearance]:
    """The faces of ``faces`` most like ``probe`` (a unit template), best first.

    Only those at or above the threshold unless ``include_below``; at most
    ``limit``. ``index`` (an ANN index over the face ids) is used from
    :data:`ANN_MIN_TEMPLATES` faces on.
    """
    if len(faces.face_ids) == 0:
        return []
    matrix = TemplateMatrix(
        template_ids=faces.face_ids,
        person_ids=faces.face_ids,
        vectors=faces.vectors,
        names={},
        qualities=faces.qualities.astype(np.float64),
    )
    rows, scores = top_templates(
        probe[None, :], matrix, limit, index, min_templates=ANN_MIN_TEMPLATES
    )
    found = []
    for row, score in zip(rows[0], scores[0], strict=True):
        if row < 0 or (score < point.threshold and not include_below):
            continue
        llr, score_fmr = score_evidence(calibration, float(score))
        frame = int(faces.frame_index[row])
        time = float(faces.time[row])
        found.append(
            Appearance(
                source=faces.sources[row],
                box=[round(float(v), 1) for v in faces.boxes[row]],
                frame_index=None if frame < 0 else frame,
                time=None if math.isnan(time) else time,
                score=float(score),
                llr=llr,
                score_fmr=score_fmr,
                match=bool(score >= point.threshold),
                face=int(faces.face_ids[row]),
            )
        )
    return found
