"""From a cosine score to a false-match rate, and from a target rate to a threshold.

A :class:`Calibration` is measured once per embedder on impostor pairs (two
different people) and stored as JSON beside the registry
(``facelens/models/calibration/<model id>.json``, written by
``benchmarks/calibrate.py``). It holds the score that only a fraction ``fmr``
of impostor pairs reach, for a grid of ``fmr`` values; rates between grid
points are interpolated on a log scale. A rate smaller than what the number
of impostor pairs can support (``1 / impostor_pairs``) is refused rather than
invented.

A deployment fits its own calibration on its own people (``facelens calibrate``,
:mod:`facelens.match.deployment`); it is stored in the gallery and replaces the
shipped one for every decision. ``source`` names which one is in force:
``"shipped:lfw"`` or ``"gallery:<id>"``; a calibration is only ever applied to
the embedder it was fitted for (:func:`check_embedder`).
"""

from __future__ import annotations

import importlib.resources
import json
import math
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from facelens.errors import CalibrationError, CalibrationMismatchError, NotCalibratedError
from facelens.match.evidence import LogisticLLR

__all__ = [
    "DEFAULT_FMR",
    "FMR_GRID",
    "Calibration",
    "OperatingPoint",
    "calibration_for",
    "check_embedder",
    "fit_calibration",
    "operating_point",
]

DEFAULT_FMR = 1e-4
"""Operating point used when the caller names neither a rate nor a threshold."""

SHIPPED_SOURCE = "shipped:lfw"
"""How decisions name the calibration that ships with facelens (fitted on LFW)."""

FMR_GRID = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)
"""False-match rates at which a calibration records the threshold."""


@dataclass(frozen=True)
class Calibration:
    """Impostor-score quantiles of one embedder (thresholds increase as ``fmr`` falls)."""

    model_id: str
    dataset: str  # what the pairs were drawn from, in words
    command: str  # the command that produced this file
    impostor_pairs: int
    genuine_pairs: int
    fmr: tuple[float, ...]  # decreasing
    thresholds: tuple[float, ...]  # increasing: score reached by a fraction fmr[i] of impostors
    tar: tuple[float, ...]  # fraction of genuine pairs at or above thresholds[i]
    llr: LogisticLLR | None = None  # score -> log10 likelihood ratio (see match/evidence.py)
    cllr: float | None = (
        None  # Cllr in bits of `llr`, cross-fitted (fit on 4 people sets, scored on the 5th)
    )
    source: str = SHIPPED_SOURCE  # "shipped:lfw" or "gallery:<id>": named by every decision
    default_fmr: float | None = None  # operating point when none is asked (None: DEFAULT_FMR)

    @property
    def min_fmr(self) -> float:
        """The smallest false-match rate the measurement supports."""
        return 1.0 / self.impostor_pairs

    def threshold_for(self, fmr: float) -> float:
        """The score threshold at which a fraction ``fmr`` of impostor comparisons match."""
        if not 0 < fmr < 1:
            raise CalibrationError(f"a false-match rate must be between 0 and 1, not {fmr}")
        if fmr < self.min_fmr or fmr < self.fmr[-1]:
            raise CalibrationError(
                f"a false-match rate of {fmr:g} is below what {self.model_id}'s calibration "
                f"({self.source}) "
                f"can support ({max(self.min_fmr, self.fmr[-1]):g}, from "
                f"{self.impostor_pairs:,} impostor pairs); choose a larger rate or a threshold"
            )
        if fmr >= self.fmr[0]:
            return self.thresholds[0]
        log_fmr = [-math.log10(f) for f in self.fmr]
        return float(np.interp(-math.log10(fmr), log_fmr, self.thresholds))

    def fmr_at(self, threshold: float) -> float:
        """The false-match rate of one comparison at ``threshold`` (clamped to the grid)."""
        if threshold <= self.thresholds[0]:
            return self.fmr[0]
        if threshold >= self.thresholds[-1]:
            return self.fmr[-1]
        log_fmr = [-math.log10(f) for f in self.fmr]
        return float(10 ** -np.interp(threshold, self.thresholds, log_fmr))

    def score_fmr(self, score: float) -> float:
        """The fraction of impostor comparisons that reach ``score`` (same as ``fmr_at``)."""
        return self.fmr_at(score)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            model_id=data["model_id"],
            dataset=data["dataset"],
            command=data["command"],
            impostor_pairs=int(data["impostor_pairs"]),
            genuine_pairs=int(data["genuine_pairs"]),
            fmr=tuple(float(v) for v in data["fmr"]),
            thresholds=tuple(float(v) for v in data["thresholds"]),
            tar=tuple(float(v) for v in data["tar"]),
            llr=LogisticLLR(**data["llr"]) if data.get("llr") else None,
            cllr=data.get("cllr"),
            source=str(data.get("source", SHIPPED_SOURCE)),
            default_fmr=data.get("default_fmr"),
        )


def fit_calibration(
    model_id: str,
    genuine: np.ndarray,
    impostor: np.ndarray,
    *,
    dataset: str,
    command: str,
    fmr_grid: tuple[float, ...] = FMR_GRID,
    llr: LogisticLLR | None = None,
    cllr: float | None = None,
) -> Calibration:
    """Measure thresholds for ``fmr_grid`` from genuine and impostor cosine scores."""
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    genuine = np.asarray(genuine, dtype=np.float64)
    supported = [f for f in fmr_grid if f * len(impostor) >= 1]
    thresholds, tars = [], []
    for fmr in supported:
        # The smallest threshold with at most fmr * n impostor scores at or above it.
        allowed = math.floor(fmr * len(impostor))
        # Just above the (allowed + 1)-th highest impostor score (supported rates keep allowed < n).
        threshold = float(np.nextafter(impostor[min(allowed, len(impostor) - 1)], np.inf))
        thresholds.append(threshold)
        tars.append(float((genuine >= threshold).mean()) if len(genuine) else float("nan"))
    return Calibration(
        model_id=model_id,
        dataset=dataset,
        command=command,
        impostor_pairs=len(impostor),
        genuine_pairs=len(genuine),
        fmr=tuple(supported),
        thresholds=tuple(thresholds),
        tar=tuple(tars),
        llr=llr,
        cllr=cllr,
    )


@cache
def calibration_for(model_id: str) -> Calibration:
    """The stored calibration of a registered embedder."""
    from facelens.models.registry import get_spec

    spec = get_spec(model_id)
    if spec.calibration_file is None:
        raise NotCalibratedError(
            f"{model_id} has no calibration, so its scores mean no false-match rate yet; fit one "
            f"on your own people: `facelens --embedder {model_id} --gallery GALLERY calibrate "
            "TREE` (a folder per person), then decide with that gallery"
        )
    resource = importlib.resources.files("facelens.models").joinpath(
        "calibration", spec.calibration_file
    )
    return Calibration.from_json(json.loads(resource.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold and the false-match rate it gives."""

    threshold: float
    fmr: float
    calibration: str = SHIPPED_SOURCE  # the calibration's ``source``, named by each decision


def check_embedder(calibration: Calibration, embedder_id: str) -> Calibration:
    """``calibration`` if it was fitted for ``embedder_id``; refused otherwise."""
    if calibration.model_id != embedder_id:
        raise CalibrationMismatchError(
            f"the calibration {calibration.source} was fitted for {calibration.model_id} and "
            f"cannot be applied to {embedder_id}'s scores; calibrate {embedder_id} on its own "
            "(`facelens calibrate`), or use the embedder it was fitted for"
        )
    return calibration


def operating_point(
    calibration: Calibration, *, fmr: float | None = None, threshold: float | None = None
) -> OperatingPoint:
    """Resolve what the user asked for (a rate, a threshold, or neither) into both numbers."""
    if fmr is not None and threshold is not None:
        raise CalibrationError("give a false-match rate or a threshold, not both")
    if threshold is not None:
        if not -1.0 <= threshold <= 1.0:  # NaN fails too
            raise CalibrationError(f"a threshold is a cosine between -1 and 1, not {threshold}")
        return OperatingPoint(threshold, calibration.fmr_at(threshold), calibration.source)
    target = (calibration.default_fmr or DEFAULT_FMR) if fmr is None else fmr
    return OperatingPoint(calibration.threshold_for(target), target, calibration.source)
