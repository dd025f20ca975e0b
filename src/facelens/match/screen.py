"""Screening a face's template against the gallery before it is saved under a name.

Every way into the gallery applies the same two checks (``apps/enroll.py`` through
the gallery search; ``ingest --into-gallery`` here, on the templates it holds):

* the same face as a template already stored (cosine >= :data:`DUPLICATE_SCORE`)
  is a duplicate: it would add nothing;
* a face whose best-matching person (by their best template) is someone else, at
  or above the operating point's threshold, is probably that person's photo:
  saving it would make them match this name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelens.gallery.store import TemplateMatrix
from facelens.types import FloatArray

__all__ = ["DUPLICATE_SCORE", "Screening", "screen_template"]

DUPLICATE_SCORE = 0.9999  # cosine; the same photo scores 1.0, consecutive video frames <= 0.998


@dataclass(frozen=True)
class Screening:
    """What the gallery already says about a template: ``duplicate_of`` names the person
    holding the same face; ``matches`` the best-matching person at the threshold (None
    below it), with ``score`` their best cosine."""

    duplicate_of: str | None
    matches: str | None
    score: float


def screen_template(vector: FloatArray, gallery: TemplateMatrix, threshold: float) -> Screening:
    """Screen one unit-norm ``vector`` against every template of ``gallery`` (see the module
    docstring); ``threshold`` is the operating point's cosine."""
    if not len(gallery.template_ids):
        return Screening(None, None, -1.0)
    scores = gallery.vectors @ np.asarray(vector, dtype=np.float32)
    top = int(np.argmax(scores))  # the best template's owner is the best person by best template
    name, score = gallery.names[int(gallery.person_ids[top])], float(scores[top])
    return Screening(
        duplicate_of=name if score >= DUPLICATE_SCORE else None,
        matches=name if score >= threshold else None,
        score=score,
    )
