"""Whom to anonymize: every face, every face but consenting people, or only named people.

Identity is uncertain more often than it is certain (a small, blurred or
turned face; a score just under the threshold), so each mode says what
happens then, and **privacy wins** every time:

* ``all`` (default): every detected face is anonymized; no recognizer runs.
* ``keep NAME...``: a face stays visible only when it is *identified* as one
  of the named (enrolled, consenting) people at the operating point (default
  false-match rate 1e-4 per comparison) **and** its quality is usable
  (:data:`facelens.types.USABLE_QUALITY`). Unknown faces, faces too poor to
  decide on, and faces identified as someone else are anonymized. In video the
  decision is made once per track, from its best frames.
* ``only NAME...``: a face is anonymized when it is identified as one of the
  named people, **or** when one of them is its best candidate with a score at
  or above the looser "possible match" threshold (false-match rate
  :data:`POSSIBLE_MATCH_FMR` = 1e-2). In video a track is anonymized when any
  of its faces is, from the first frame to the last. This errs towards hiding
  look-alikes of the named people rather than showing the named people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from facelens.types import Match

__all__ = ["POSSIBLE_MATCH_FMR", "Policy"]

Mode = Literal["all", "keep", "only"]
POSSIBLE_MATCH_FMR = 1e-2
"""``--only``: a named best candidate at this false-match rate or stricter counts as a match."""


@dataclass(frozen=True)
class Policy:
    """A mode and its names; ``possible_threshold`` is the cosine at :data:`POSSIBLE_MATCH_FMR`."""

    mode: Mode = "all"
    names: frozenset[str] = field(default_factory=frozenset)
    possible_threshold: float = 1.0

    @staticmethod
    def make(
        keep: Iterable[str] = (), only: Iterable[str] = (), possible_threshold: float = 1.0
    ) -> Policy:
        """The policy of ``--keep`` / ``--only`` (at most one of them), else ``all``."""
        keep, only = frozenset(keep), frozenset(only)
        if keep and only:
            raise ValueError("--keep and --only cannot be used together")
        if keep:
            return Policy("keep", keep, possible_threshold)
        if only:
            return Policy("only", only, possible_threshold)
        return Policy()

    @property
    def needs_identity(self) -> bool:
        return self.mode != "all"

    def decide(self, match: Match | None) -> tuple[bool, str]:
        """``(anonymize, reason)`` for one face; ``match`` is ``None`` in mode ``all``."""
        if self.mode == "all" or match is None:
            return True, "every face is anonymized"
        identity = match.identity
        if self.mode == "keep":
            if identity in self.names and match.face.quality.usable:
                return False, f"identified as {identity}, who consented"
            if identity in self.names:
                return True, f"possibly {identity}, but quality too low to be sure"
            if identity is not None:
                return True, f"identified as {identity}, not in --keep"
            return True, "unknown or uncertain identity"
        if identity in self.names:
            return True, f"identified as {identity}"
        best = match.candidates[0] if match.candidates else None
        if best is not None and best.name in self.names and best.score >= self.possible_threshold:
            return True, f"possibly {best.name} (score {best.score:.3f})"
        return False, "not one of --only"
