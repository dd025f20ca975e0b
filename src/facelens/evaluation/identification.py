"""1:N identification on a labelled tree: closed-set CMC and open-set DIR at FPIR.

Protocol: a seeded choice of identities (``unknown`` of them, or
``unknown_fraction`` of all) is never enrolled; all their images are
*unknown probes*. Every other person enrols the first ``enroll`` of their
images that gave a template (sorted by path) and the rest are *known probes*.
A probe's score against a person is its best score over that person's
gallery templates.

* CMC rank-k: fraction of known probes whose person is among the k best-scoring.
* DIR at FPIR: the threshold is the one that at most a fraction FPIR of the
  unknown probes' top scores reach; DIR is the fraction of known probes whose
  person ranks first with a score at or above it. ``null`` with a reason when
  there are fewer than ``1 / FPIR`` unknown probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelens.errors import InputError
from facelens.evaluation.dataset import LabelledSet, TemplateSet
from facelens.evaluation.groups import max_min_gap
from facelens.evaluation.metrics import Curve, RateAt, error_curve, rates_at
from facelens.match.scoring import Aggregation, person_scores

__all__ = ["IdentificationResult", "evaluate_identification", "split_identities"]

FPIR_GRID = (1e-2, 1e-1)
"""False-positive identification rates at which DIR is reported."""

CMC_RANKS = 20
"""Ranks listed in the CMC curve (fewer when the gallery holds fewer people)."""


@dataclass(frozen=True)
class IdentificationSplit:
    """Which images enrol, which probe; indices into the dataset's images."""

    gallery: np.ndarray
    known_probes: np.ndarray
    unknown_probes: np.ndarray
    unknown_identities: tuple[str, ...]
    enroll: int
    seed: int


def split_identities(
    dataset: LabelledSet,
    templates: TemplateSet,
    *,
    enroll: int = 1,
    unknown: int | None = None,
    unknown_fraction: float = 0.25,
    seed: int = 0,
) -> IdentificationSplit:
    """The gallery / known-probe / unknown-probe split (see the module docstring)."""
    identities = dataset.identities
    count = unknown if unknown is not None else round(unknown_fraction * len(identities))
    if not 0 <= count < len(identities):
        raise InputError(
            f"cannot hold out {count} of {len(identities)} identities: at least one must be enrolled"
        )
    rng = np.random.default_rng(seed)
    held_out = {identities[i] for i in rng.choice(len(identities), count, replace=False)}
    gallery, known, unknown_probes = [], [], []
    enrolled: dict[str, int] = {}
    for index, image in enumerate(dataset.images):
        if not templates.has(image.key):
            continue
        if image.identity in held_out:
            unknown_probes.append(index)
        elif enrolled.get(image.identity, 0) < enroll:
            enrolled[image.identity] = enrolled.get(image.identity, 0) + 1
            gallery.append(index)
        else:
            known.append(index)
    if not known:
        raise InputError(
            f"no known probes: every enrolled person has at most {enroll} usable images"
        )
    return IdentificationSplit(
        np.array(gallery, int),
        np.array(known, int),
        np.array(unknown_probes, int),
        tuple(sorted(held_out)),
        enroll,
        seed,
    )


@dataclass
class IdentificationResult:
    """Everything ``eval identify`` reports; ``data`` is the JSON, the rest feeds the plots."""

    cmc: np.ndarray  # cmc[k-1] = rank-k identification rate
    mated: np.ndarray  # per known probe: its person's score if ranked first, else -inf
    unknown_top: np.ndarray  # per unknown probe: top score over the gallery
    curve: Curve | None  # DIR (as 1 - frr) against FPIR (as far)
    at_fpir: list[RateAt]
    data: dict[str, Any]
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


def evaluate_identification(
    dataset: LabelledSet,
    templates: TemplateSet,
    split: IdentificationSplit,
    model_id: str,
    groups: list[str | None] | None = None,
    aggregation: Aggregation = "max",
) -> IdentificationResult:
    """Score every probe against the gallery and compute CMC and DIR at FPIR.

    ``aggregation`` makes one score per enrolled person from their templates
    (best template, or quality-weighted centroid: see facelens.match.scoring).
    """
    labels = {name: i for i, name in enumerate(dataset.identities)}
    label_of = np.array([labels[image.identity] for image in dataset.images])
    row_of = np.array([templates.row.get(image.key, -1) for image in dataset.images])
    matrix = templates.matrix
    gallery_rows = row_of[split.gallery]
    qualities = templates.qualities[gallery_rows] if len(templates.qualities) else None

    def scores_against_gallery(probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return person_scores(
            matrix[row_of[probes]],
            matrix[gallery_rows],
            label_of[split.gallery],
            qualities,
            aggregation,
        )

    person_ids, known_best = scores_against_gallery(split.known_probes)
    column = np.searchsorted(person_ids, label_of[split.known_probes])
    true_score = known_best[np.arange(len(column)), column]
    rank = 1 + (known_best > true_score[:, None]).sum(axis=1)
    cmc = np.array([(rank <= k).mean() for k in range(1, min(CMC_RANKS, len(person_ids)) + 1)])
    mated = np.where(rank == 1, true_score, -np.inf).astype(np.float64)
    unknown_top = np.zeros(0)
    if len(split.unknown_probes):
        _, unknown_best = scores_against_gallery(split.unknown_probes)
        unknown_top = unknown_best.max(axis=1).astype(np.float64)
    at_fpir, curve = _open_set(mated, unknown_top)
    data: dict[str, Any] = {
        "model": model_id,
        "protocol": {
            "root": str(dataset.root),
            "identity_rule": dataset.identity_rule,
            "seed": split.seed,
            "enroll": split.enroll,
            "aggregation": aggregation,
            "identities": len(labels),
            "enrolled_identities": len(person_ids),
            "unknown_identities": list(split.unknown_identities),
            "gallery_templates": len(split.gallery),
            "known_probes": len(split.known_probes),
            "unknown_probes": len(split.unknown_probes),
        },
        "images": templates.summary(len(dataset.images)),
        "rank1": float(cmc[0]),
        "rank5": float(cmc[4]) if len(cmc) >= 5 else None,
        "cmc": [float(v) for v in cmc],
        "dir_at_fpir": [r.to_dict("dir", "fpir") for r in at_fpir],
        "open_set_curve": curve.to_dict() if curve is not None else None,
    }
    result = IdentificationResult(cmc, mated, unknown_top, curve, at_fpir, data)
    if groups is not None:
        result.groups = _per_group(split, rank, mated, unknown_top, at_fpir, groups)
        data["groups"] = {
            "per_group": result.groups,
            "gaps": _gaps(result.groups),
            "images_without_group": sum(g is None for g in groups),
        }
    return result


def _open_set(mated: np.ndarray, unknown_top: np.ndarray) -> tuple[list[RateAt], Curve | None]:
    if len(unknown_top) == 0:
        reason = "no unknown probes (hold out identities with --unknown)"
        return [RateAt(f, None, None, None, 0, reason) for f in FPIR_GRID], None
    at_fpir = rates_at(mated, unknown_top, FPIR_GRID, "unknown probes")
    correct = mated[np.isfinite(mated)]
    if len(correct) == 0:
        return at_fpir, None
    curve = error_curve(correct, unknown_top)
    # error_curve's rates are over the correctly ranked probes; DIR is over all known probes.
    dir_rate = (1 - curve.frr) * len(correct) / len(mated)
    return at_fpir, Curve(curve.threshold, curve.far, 1 - dir_rate)


def _per_group(
    split: IdentificationSplit,
    rank: np.ndarray,
    mated: np.ndarray,
    unknown_top: np.ndarray,
    at_fpir: list[RateAt],
    groups: list[str | None],
) -> dict[str, dict[str, Any]]:
    """Rank-1/5 and DIR of the group's known probes, FPIR of its unknown probes, at the global thresholds."""
    known_group = np.array([groups[i] for i in split.known_probes], dtype=object)
    unknown_group = np.array([groups[i] for i in split.unknown_probes], dtype=object)
    table: dict[str, dict[str, Any]] = {}
    for name in sorted({g for g in groups if g is not None}):
        known = known_group == name
        unknown = unknown_group == name
        entry: dict[str, Any] = {
            "known_probes": int(known.sum()),
            "unknown_probes": int(unknown.sum()),
            "rank1": float((rank[known] <= 1).mean()) if known.any() else None,
            "rank5": float((rank[known] <= 5).mean()) if known.any() else None,
            "at_global_threshold": [],
        }
        for point in at_fpir:
            if point.threshold is None:
                continue
            entry["at_global_threshold"].append(
                {
                    "fpir_target": point.false_rate,
                    "threshold": round(point.threshold, 5),
                    "dir": float((mated[known] >= point.threshold).mean()) if known.any() else None,
                    "fpir": float((unknown_top[unknown] >= point.threshold).mean())
                    if unknown.any()
                    else None,
                }
            )
        table[name] = entry
    return table


def _gaps(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    gaps = {
        metric: max_min_gap({g: e[metric] for g, e in table.items()})
        for metric in ("rank1", "rank5")
    }
    first = next(iter(table.values()), None)
    for j, point in enumerate(first["at_global_threshold"] if first else []):
        for metric in ("dir", "fpir"):
            gaps[f"{metric}_at_global_fpir_{point['fpir_target']:g}"] = max_min_gap(
                {g: e["at_global_threshold"][j][metric] for g, e in table.items()}
            )
    return gaps
