"""The attack's threshold measured on the footage itself: hidden faces against strangers.

A recognizer's threshold at FMR 1e-2 measured on LFW (:func:`facelens.privacy.verify.
verify_threshold`) is not at FMR 1e-2 on every footage: on a dark or soft crowd, hidden
faces reach the LFW threshold against *other people's* originals 5-23% of the time
(docs/benchmarks.md#crowd-clip), so "matched at FMR 1e-2" there says as much about the
footage as about the face, and the verifier escalates faces to their ladder's end for
nothing. An attacker who wants 1 false match in 100 on this footage must set his
threshold where 1 in 100 of its hidden faces match a stranger's original.

:class:`FootageCohort` gathers those stranger scores as the verifier attacks: for every
attacked face, its cosine (as hidden) with the original of every **other face of the same
image or frame**. Two faces seen at once are two people, so these pairs are impostors by
construction (a pair whose originals a recognizer matches at FMR 1e-4 is left out: a
duplicate detection or a reflection). Where at least :data:`MIN_PAIRS` such
cosines from faces of about the same size (half to twice) are known, the threshold is
their ``1 - fmr`` quantile minus the verifier's margin; elsewhere (one face, a few faces,
the start of a clip) it is the LFW threshold, as before.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MAX_PAIRS", "MIN_PAIRS", "FootageCohort"]

MIN_PAIRS = 300
"""Stranger cosines (of faces of about one size) the footage needs for its own threshold at
FMR 1e-2: 3 of them lie above it. One frame of 18 faces gives 306."""
MAX_PAIRS = 20_000
"""Stranger cosines kept per recognizer, the latest (a long video's light and people change;
and a threshold then costs the same at its tenth minute as at its first)."""


@dataclass
class FootageCohort:
    """Cosines between hidden faces and strangers' originals in one image or clip, per
    recognizer, with the hidden face's size (the longer side of its box, px)."""

    scores: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def add(self, recognizer: str, size: float, cosine: float) -> None:
        """One impostor cosine of ``recognizer``, of a hidden face of ``size`` px."""
        self.scores.setdefault(recognizer, deque(maxlen=MAX_PAIRS)).append((size, cosine))
        self._arrays.pop(recognizer, None)

    def pairs(self, recognizer: str, size: float) -> np.ndarray:
        """The impostor cosines of ``recognizer`` of faces of ``size / 2`` to ``2 * size`` px."""
        known = self._arrays.get(recognizer)
        if known is None:
            known = np.asarray(self.scores.get(recognizer, ()), dtype=np.float64).reshape(-1, 2)
            self._arrays[recognizer] = known
        near = (known[:, 0] >= size / 2) & (known[:, 0] <= size * 2)
        selected: np.ndarray = known[near, 1]
        return selected

    def threshold(self, recognizer: str, size: float, fmr: float) -> float | None:
        """The cosine that ``fmr`` of this footage's impostor pairs reach, for faces of about
        ``size`` px; None when fewer than :data:`MIN_PAIRS` are known."""
        near = self.pairs(recognizer, size)
        if near.size < MIN_PAIRS:
            return None
        return float(np.quantile(near, 1.0 - fmr))

    def summary(self) -> dict[str, int]:
        """Impostor cosines known, per recognizer (for reports)."""
        return {r: len(s) for r, s in self.scores.items()}
