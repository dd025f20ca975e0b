"""1:1 verification metrics over a set of pairs: accuracy, ROC AUC, EER, TAR at FAR, DET.

Scores are cosine similarities of the templates of the two images of a pair
(one template per image, see :mod:`facelens.evaluation.dataset`); pairs with
an image that gave no template are left out and counted. TAR at a FAR is
measured on the impostor scores' upper quantile and reported as ``null`` with
a reason when there are fewer than ``1 / FAR`` impostor pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import CalibrationError, InputError
from facelens.evaluation.dataset import TemplateSet
from facelens.evaluation.groups import max_min_gap
from facelens.evaluation.lfw import Pair, evaluate_pairs
from facelens.evaluation.metrics import (
    Curve,
    RateAt,
    equal_error_rate,
    error_curve,
    rates_at,
    roc_auc,
)
from facelens.evaluation.pairs import PairSet
from facelens.match.calibration import Calibration, calibration_for
from facelens.match.evidence import LogisticLLR, cllr

__all__ = ["FAR_GRID", "VerificationResult", "evaluate_verification", "llr_bins"]

FAR_GRID = (1e-1, 1e-2, 1e-3, 1e-4)
"""False-accept rates at which the true-accept rate is reported."""

SHIPPED_FMRS = (1e-2, 1e-3, 1e-4)
"""Rates of the model's shipped calibration checked on the evaluated data."""


@dataclass(frozen=True)
class ScoreSummary:
    """The error rates of one set of genuine and impostor scores."""

    genuine: np.ndarray
    impostor: np.ndarray
    curve: Curve
    auc: float
    eer: float
    eer_threshold: float
    at_far: list[RateAt]

    def to_dict(self, *, with_curve: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "genuine_pairs": len(self.genuine),
            "impostor_pairs": len(self.impostor),
            "auc": self.auc,
            "eer": self.eer,
            "eer_threshold": round(self.eer_threshold, 5),
            "tar_at_far": [r.to_dict() for r in self.at_far],
        }
        if with_curve:
            data["det"] = self.curve.to_dict()
        return data


def summarize_scores(
    genuine: np.ndarray, impostor: np.ndarray, far_grid: tuple[float, ...] = FAR_GRID
) -> ScoreSummary:
    """AUC, EER and TAR at each FAR of genuine vs impostor scores (both non-empty)."""
    curve = error_curve(genuine, impostor)
    eer, eer_threshold = equal_error_rate(curve)
    return ScoreSummary(
        genuine,
        impostor,
        curve,
        roc_auc(genuine, impostor),
        eer,
        eer_threshold,
        rates_at(genuine, impostor, far_grid, "impostor pairs"),
    )


@dataclass
class VerificationResult:
    """Everything ``eval verify`` reports; ``data`` is the JSON, the rest feeds the plots."""

    summary: ScoreSummary
    data: dict[str, Any]
    groups: dict[str, ScoreSummary] = field(default_factory=dict)
    llr: LogisticLLR | None = None


def evaluate_verification(
    pairs: PairSet,
    templates: TemplateSet,
    model_id: str,
    groups: list[str | None] | None = None,
    calibration: Calibration | None = None,
) -> VerificationResult:
    """Score every pair whose two images have a template and compute all metrics.

    ``calibration`` is the one in force (e.g. the gallery's own): its thresholds and
    likelihood ratios are checked on these pairs under ``calibration``, as the model's
    shipped ones are under ``shipped_calibration``."""
    keys = [image.key for image in pairs.images]
    usable = np.array([templates.has(k) for k in keys], dtype=bool)
    kept = pairs.subset(usable[pairs.first] & usable[pairs.second])
    rows = np.array([templates.row.get(k, -1) for k in keys])
    a, b = templates.matrix[rows[kept.first]], templates.matrix[rows[kept.second]]
    scores = np.einsum("ij,ij->i", a, b).astype(np.float64)
    genuine, impostor = scores[kept.same], scores[~kept.same]
    if len(genuine) == 0 or len(impostor) == 0:
        raise InputError(
            f"{len(genuine)} genuine and {len(impostor)} impostor pairs have templates on both "
            "sides: both are needed"
        )
    summary = summarize_scores(genuine, impostor)
    accuracies, thresholds = _fold_accuracy(kept, templates)
    data: dict[str, Any] = {
        "model": model_id,
        "protocol": {**pairs.protocol, "pairs_sha256": pairs.sha256},
        "images": templates.summary(len(pairs.images)),
        "pairs_without_template": int(len(pairs.same) - len(kept.same)),
        **summary.to_dict(),
        "accuracy_mean": float(np.mean(accuracies)) if accuracies else None,
        "accuracy_std": float(np.std(accuracies)) if accuracies else None,
        "fold_accuracies": accuracies,
        "fold_thresholds": thresholds,
        "score_stats": {"genuine": _stats(genuine), "impostor": _stats(impostor)},
    }
    result = VerificationResult(summary, data)
    _shipped_calibration_check(result, model_id)
    result.data["calibration"] = (
        None if calibration is None else calibration_check(result, calibration)
    )
    if groups is not None:
        result.groups, data["groups"] = _per_group(kept, scores, groups, summary)
    return result


def _fold_accuracy(pairs: PairSet, templates: TemplateSet) -> tuple[list[float], list[float]]:
    """The LFW protocol's accuracy (threshold chosen on the other folds) over the folded pairs."""
    folds: list[list[Pair]] = []
    for fold in sorted(set(pairs.fold.tolist()) - {-1}):
        members = np.flatnonzero(pairs.fold == fold)
        folds.append(
            [
                Pair(
                    pairs.images[pairs.first[i]].key,
                    pairs.images[pairs.second[i]].key,
                    bool(pairs.same[i]),
                )
                for i in members
            ]
        )
    if len(folds) < 2:
        return [], []
    vectors = {key: templates.matrix[row] for key, row in templates.row.items()}
    return evaluate_pairs(folds, Path(), vectors)


def _stats(scores: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "min": float(scores.min()),
        "max": float(scores.max()),
    }


def _shipped_calibration_check(result: VerificationResult, model_id: str) -> None:
    """How the model's shipped thresholds and likelihood ratios hold on these scores."""
    try:
        calibration = calibration_for(model_id)
    except CalibrationError:
        result.data["shipped_calibration"] = None
        return
    result.data["shipped_calibration"] = calibration_check(result, calibration)


def calibration_check(result: VerificationResult, calibration: Calibration) -> dict[str, Any]:
    """How a calibration's thresholds and likelihood ratios hold on these scores."""
    genuine, impostor = result.summary.genuine, result.summary.impostor
    checks = []
    for fmr in SHIPPED_FMRS:
        try:
            threshold = calibration.threshold_for(fmr)
        except CalibrationError:
            continue
        checks.append(
            {
                "fmr": fmr,
                "threshold": round(threshold, 5),
                "far_observed": float((impostor >= threshold).mean()),
                "tar": float((genuine >= threshold).mean()),
            }
        )
    data: dict[str, Any] = {
        "source": calibration.source,
        "model": calibration.model_id,
        "dataset": calibration.dataset,
        "thresholds": checks,
    }
    if calibration.llr is not None:
        result.llr = calibration.llr
        data["cllr"] = cllr(calibration.llr.llr_many(genuine), calibration.llr.llr_many(impostor))
        data["llr_bins"] = llr_bins(genuine, impostor, calibration.llr)
    return data


def llr_bins(
    genuine: np.ndarray,
    impostor: np.ndarray,
    llr: LogisticLLR,
    bins: int = 10,
    min_count: int = 5,
) -> list[dict[str, float]]:
    """Predicted vs empirical log10 likelihood ratio in score bins.

    The empirical ratio of a bin is (fraction of genuine scores in it) /
    (fraction of impostor scores in it); bins split the range where the two
    classes overlap (lowest genuine to highest impostor score) evenly, and
    only bins holding at least ``min_count`` scores of each class are kept.
    """
    low, high = float(genuine.min()), float(impostor.max())
    if not low < high:
        return []
    edges = np.linspace(low, high, bins + 1)
    in_genuine = np.histogram(genuine, edges)[0]
    in_impostor = np.histogram(impostor, edges)[0]
    result = []
    for i in range(bins):
        if in_genuine[i] < min_count or in_impostor[i] < min_count:
            continue
        empirical = np.log10((in_genuine[i] / len(genuine)) / (in_impostor[i] / len(impostor)))
        centre = (edges[i] + edges[i + 1]) / 2
        result.append(
            {
                "score": float(centre),
                "predicted": float(llr.llr(centre)),
                "empirical": float(empirical),
                "genuine": int(in_genuine[i]),
                "impostor": int(in_impostor[i]),
            }
        )
    return result


def _per_group(
    pairs: PairSet, scores: np.ndarray, groups: list[str | None], overall: ScoreSummary
) -> tuple[dict[str, ScoreSummary], dict[str, Any]]:
    """Metrics over the pairs whose two images are both in a group, and the gaps."""
    first = [groups[i] for i in pairs.first]
    second = [groups[i] for i in pairs.second]
    names = sorted({g for g in groups if g is not None})
    summaries: dict[str, ScoreSummary] = {}
    table: dict[str, Any] = {}
    global_points = [r for r in overall.at_far if r.threshold is not None]
    for name in names:
        inside = np.array(
            [x == name and y == name for x, y in zip(first, second, strict=True)], bool
        )
        genuine = scores[inside & pairs.same]
        impostor = scores[inside & ~pairs.same]
        if len(genuine) == 0 or len(impostor) == 0:
            table[name] = {
                "genuine_pairs": len(genuine),
                "impostor_pairs": len(impostor),
                "reason": "needs genuine and impostor pairs inside the group",
            }
            continue
        summary = summarize_scores(genuine, impostor)
        summaries[name] = summary
        entry = summary.to_dict(with_curve=False)
        entry["at_global_threshold"] = [
            {
                "far_target": r.false_rate,
                "threshold": round(float(r.threshold), 5),
                "far": float((impostor >= float(r.threshold)).mean()),
                "frr": float((genuine < float(r.threshold)).mean()),
            }
            for r in global_points
            if r.threshold is not None
        ]
        table[name] = entry
    gaps: dict[str, Any] = {
        "auc": max_min_gap({g: s.auc for g, s in summaries.items()}),
        "eer": max_min_gap({g: s.eer for g, s in summaries.items()}),
    }
    for i, far in enumerate(FAR_GRID):
        gaps[f"tar_at_far_{far:g}"] = max_min_gap(
            {g: s.at_far[i].rate for g, s in summaries.items()}
        )
    for j, r in enumerate(global_points):
        for rate in ("far", "frr"):
            gaps[f"{rate}_at_global_far_{r.false_rate:g}"] = max_min_gap(
                {g: table[g]["at_global_threshold"][j][rate] for g in summaries}
            )
    ungrouped = sum(g is None for g in groups)
    return summaries, {"per_group": table, "gaps": gaps, "images_without_group": ungrouped}
