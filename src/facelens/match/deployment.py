"""A calibration fitted on a deployment's own people (``facelens calibrate``).

Given one template per image and who is on it, every two images make a pair:
genuine (same person) or impostor. From them come, as for the shipped
calibration (``benchmarks/calibrate.py``):

* the FMR-threshold table: for each rate ``f`` of :data:`FMR_GRID` the score
  that at most a fraction ``f`` of impostor pairs reach;
* the likelihood-ratio model: a class-balanced logistic regression of the
  score (:mod:`facelens.match.evidence`).

Thresholds blend the data's tail with a smooth model of it
(:func:`tail_thresholds`). The data's threshold of a rate ``f`` is the lowest at
which the observed rate plus one standard error is at most ``f``, the error
counting pairs of *people* as the independent units (the image pairs of two
look-alikes cross a threshold together). The model is a skew-normal fitted to
every impostor score by its mean, spread and skewness; its threshold is where
its upper tail holds ``f``. The two are averaged with weight
``k / (k + MODEL_WEIGHT)`` on the data, ``k = f * impostor_pairs`` the impostor
pairs expected above the threshold: with millions of pairs of thousands of
people it is the data's quantile; with a deployment's few dozen people, whose
few top pairs are a handful of look-alikes that the next people will not share,
it is mostly the model, which reads the tail from the spread of all pairs. On
several random halves of ORL, Yale and LFW people this keeps the rate measured
on the other half within 0.5x-2x of ``f`` where the data's quantile alone let
through up to 2.8x (docs/benchmarks.md, "Deployment calibration").

Uncertainty. A rate ``f`` is kept only when at least :data:`MIN_TAIL`
impostor pairs lie above its threshold (``f * impostor_pairs >= MIN_TAIL``);
with fewer the rate is a guess, and a target below that is refused, saying
how many more people of the same kind it would take. Each kept rate carries
its 95% Clopper-Pearson interval from the number of impostor pairs (the pairs
share people, so the true uncertainty is somewhat wider).

Cross-fitting by person: the people are dealt into folds; each fold's pairs
are scored by thresholds and an LLR line fitted on the other folds' people
only. The pooled held-out FMR at each rate and the held-out Cllr (bits) say
how the calibration will hold on people it has never seen.

The LLR line is fitted with smoothed targets (Platt's: ``(n+1)/(n+2)`` for a
same-person pair, ``1/(n+2)`` for a different-person pair): a deployment's few
hundred photos are often perfectly separated, and a plain logistic fit would then
claim unbounded evidence that the next person's photos contradict.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.stats import beta, skewnorm

from facelens.errors import CalibrationDataError
from facelens.match.calibration import DEFAULT_FMR, FMR_GRID, Calibration
from facelens.match.evidence import LN10, LogisticLLR, cllr

__all__ = [
    "MIN_PEOPLE",
    "MIN_TAIL",
    "Pairs",
    "all_pairs",
    "clopper_pearson",
    "conservative_thresholds",
    "fit_deployment",
    "listed_pairs",
    "people_needed",
    "person_pair_ids",
    "skew_normal_moments",
    "tail_thresholds",
]

MIN_PEOPLE = 10
"""Fewer people than this cannot say how different people's faces score."""
MIN_GENUINE = 20
"""Fewer same-person pairs than this cannot fit the likelihood-ratio model."""
MIN_TAIL = 10
"""Impostor pairs that must lie above a threshold for its rate to be kept."""
FOLDS = 5
"""Person folds of the cross-fit (fewer when there are few people)."""
MODEL_WEIGHT = 100.0
"""Expected impostor pairs above a threshold at which the data and the tail model weigh
equally (:func:`tail_thresholds`); chosen by measurement on ORL, Yale and LFW halves."""


@dataclass(frozen=True)
class Pairs:
    """Scores of every usable pair, and the person of each side (for folds)."""

    scores: np.ndarray  # (P,) cosine
    same: np.ndarray  # (P,) bool
    person_a: np.ndarray  # (P,) int
    person_b: np.ndarray  # (P,) int


def all_pairs(vectors: np.ndarray, people: np.ndarray) -> Pairs:
    """Every two images ``i < j`` of ``(N, D)`` unit templates with person labels ``(N,)``."""
    first, second = np.triu_indices(len(vectors), k=1)
    scores = np.einsum("ij,ij->i", vectors[first], vectors[second]).astype(np.float64)
    return Pairs(scores, people[first] == people[second], people[first], people[second])


def listed_pairs(
    vectors: np.ndarray, people: np.ndarray, first: np.ndarray, second: np.ndarray
) -> Pairs:
    """The pairs of a pairs file (rows ``first[k]``, ``second[k]`` of ``vectors``)."""
    scores = np.einsum("ij,ij->i", vectors[first], vectors[second]).astype(np.float64)
    return Pairs(scores, people[first] == people[second], people[first], people[second])


def person_pair_ids(person_a: np.ndarray, person_b: np.ndarray) -> np.ndarray:
    """One id per unordered pair of people (the cluster an image pair belongs to)."""
    low, high = np.minimum(person_a, person_b), np.maximum(person_a, person_b)
    return np.asarray(
        np.unique(low * (int(high.max(initial=0)) + 1) + high, return_inverse=True)[1]
    )


def conservative_thresholds(
    impostor: np.ndarray, grid: tuple[float, ...], clusters: np.ndarray | None = None
) -> list[float]:
    """The threshold of each rate of ``grid``, increasing (see the module docstring).

    The threshold of ``f`` is the lowest at which the observed rate plus one standard
    error is at most ``f``. The standard error counts the pairs of people
    (``clusters``, one id per impostor pair) as the independent units: the image
    pairs of two look-alike people are above a threshold together or not at all.
    Without ``clusters`` (or when larger), the binomial error of the image pairs.
    """
    order = np.argsort(-np.asarray(impostor, dtype=np.float64), kind="stable")
    ordered = np.asarray(impostor, dtype=np.float64)[order]
    n = len(ordered)
    cluster = np.zeros(n, dtype=np.int64) if clusters is None else np.asarray(clusters)[order]
    sizes = np.bincount(cluster).astype(np.float64)
    count = int((sizes > 0).sum())

    def bound(k: int) -> float:
        rate = k / n
        binomial = rate * (1 - rate) / n
        if clusters is None or count < 2:
            return rate + math.sqrt(binomial)
        above = np.bincount(cluster[:k], minlength=len(sizes)).astype(np.float64)
        spread = float(((above - rate * sizes) ** 2).sum()) * count / (count - 1) / n**2
        return rate + math.sqrt(max(spread, binomial))

    thresholds = []
    for fmr in grid:
        low, high = 0, min(math.floor(fmr * n), n - 1)
        while low < high:  # the largest k with bound(k) <= fmr (bound grows with k)
            middle = (low + high + 1) // 2
            if bound(middle) <= fmr:
                low = middle
            else:
                high = middle - 1
        thresholds.append(float(np.nextafter(ordered[low], np.inf)))
    return thresholds


def skew_normal_moments(scores: np.ndarray) -> tuple[float, float, float]:
    """Shape, location and scale of the skew-normal with the scores' mean, spread and skewness.

    The method of moments (sample skewness clipped to the family's range, +-0.99):
    cheap on millions of pairs and, unlike a likelihood fit, never stuck.
    """
    values = np.asarray(scores, dtype=np.float64)
    mean, spread = float(values.mean()), float(values.std(ddof=1))
    centred = values - mean
    second = float(np.mean(centred**2))
    lean = float(np.mean(centred**3)) / second**1.5 if second > 0 else 0.0
    lean = float(np.clip(lean, -0.99, 0.99))
    part = abs(lean) ** (2 / 3)
    delta = math.copysign(
        math.sqrt(math.pi / 2 * part / (part + ((4 - math.pi) / 2) ** (2 / 3))), lean
    )
    scale = spread / math.sqrt(1 - 2 * delta**2 / math.pi)
    location = mean - scale * delta * math.sqrt(2 / math.pi)
    return delta / math.sqrt(1 - delta**2), location, scale


def tail_thresholds(
    impostor: np.ndarray, grid: tuple[float, ...], clusters: np.ndarray | None = None
) -> list[float]:
    """The threshold of each rate of ``grid`` (decreasing rates): data and model blended.

    The data's one-standard-error threshold (:func:`conservative_thresholds`) and the
    skew-normal's (:func:`skew_normal_moments`), weighted ``k / (k + MODEL_WEIGHT)`` on
    the data, ``k`` the impostor pairs expected above it (module docstring).
    """
    empirical = conservative_thresholds(impostor, grid, clusters)
    shape, location, scale = skew_normal_moments(impostor)
    blended = []
    for fmr, data in zip(grid, empirical, strict=True):
        weight = fmr * len(impostor) / (fmr * len(impostor) + MODEL_WEIGHT)
        model = float(skewnorm.isf(fmr, shape, location, scale)) if scale > 0 else math.nan
        # scores all alike (no spread) have no tail to model: the data's threshold stands
        blended.append(data if not math.isfinite(model) else weight * data + (1 - weight) * model)
    return [float(t) for t in np.maximum.accumulate(blended)] if grid else []


def clopper_pearson(count: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact binomial interval of a rate observed as ``count`` of ``total``."""
    alpha = 1 - confidence
    low = 0.0 if count == 0 else float(beta.ppf(alpha / 2, count, total - count + 1))
    high = 1.0 if count == total else float(beta.ppf(1 - alpha / 2, count + 1, total - count))
    return low, high


def people_needed(target: float, people: int, impostor_pairs: int) -> int:
    """People (of the same kind) for ``MIN_TAIL`` impostor pairs above ``target``'s threshold.

    Impostor pairs grow as the square of the people: ``pairs ~ people**2``.
    """
    wanted = MIN_TAIL / target
    per_person_pair = impostor_pairs / max(people * (people - 1) / 2, 1)
    return math.ceil((1 + math.sqrt(1 + 8 * wanted / per_person_pair)) / 2)


@dataclass(frozen=True)
class DeploymentFit:
    """The fitted calibration and everything said about its uncertainty."""

    calibration: Calibration
    record: dict[str, Any]  # stored in the gallery and shown (JSON)


def fit_deployment(
    model_id: str,
    pairs: Pairs,
    *,
    sources: list[str],
    images: int,
    targets: tuple[float, ...] = (),
    shipped: Calibration | None = None,
    command: str = "facelens calibrate",
    seed: int = 0,
) -> DeploymentFit:
    """Fit a deployment calibration on ``pairs`` (see the module docstring).

    Raises :class:`CalibrationDataError` with the numbers when there are too few
    people or pairs, or when a ``targets`` rate is below what they support.
    """
    people = len(np.union1d(pairs.person_a, pairs.person_b))
    genuine, impostor = pairs.scores[pairs.same], pairs.scores[~pairs.same]
    if people < MIN_PEOPLE or len(genuine) < MIN_GENUINE:
        raise CalibrationDataError(
            f"a calibration needs at least {MIN_PEOPLE} people and {MIN_GENUINE} same-person "
            f"pairs (two photos of one person); this set has {people} people, "
            f"{len(genuine)} same-person and {len(impostor)} different-person pairs"
        )
    grid = tuple(f for f in FMR_GRID if f * len(impostor) >= MIN_TAIL)
    for target in sorted(targets):
        if target * len(impostor) < MIN_TAIL:
            more = people_needed(target, people, len(impostor)) - people
            raise CalibrationDataError(
                f"a false-match rate of {target:g} needs at least {MIN_TAIL} different-person "
                f"pairs above its threshold, so {MIN_TAIL / target:,.0f} pairs; {people} people "
                f"give {len(impostor):,}. About {more} more people (with as many photos each) "
                f"would support it; the smallest rate this set supports is "
                f"{grid[-1] if grid else MIN_TAIL / len(impostor):g}"
            )
    if not grid:
        raise CalibrationDataError(
            f"{len(impostor)} different-person pairs support no rate of {FMR_GRID[0]:g} or "
            f"below (needs {MIN_TAIL / FMR_GRID[0]:.0f}); add people"
        )
    grid = tuple(sorted(set(grid) | set(targets), reverse=True))
    default_fmr = min(targets) if targets else next((f for f in grid if f <= DEFAULT_FMR), grid[-1])
    llr = fit_smoothed_llr(genuine, impostor)
    held_out = _cross_fit(pairs, grid, seed)
    calibration_id = datetime.now(UTC).strftime("%Y%m%d") + "-" + uuid.uuid4().hex[:8]
    impostor_clusters = person_pair_ids(pairs.person_a, pairs.person_b)[~pairs.same]
    thresholds = tail_thresholds(impostor, grid, impostor_clusters)
    calibration = Calibration(
        model_id=model_id,
        dataset=f"{people} people of this deployment ({', '.join(sources)}): {images} images, "
        "all same-person and all different-person pairs",
        command=command,
        impostor_pairs=len(impostor),
        genuine_pairs=len(genuine),
        fmr=grid,
        thresholds=tuple(thresholds),
        tar=tuple(float((genuine >= t).mean()) for t in thresholds),
        llr=llr,
        cllr=held_out["cllr"],
        source=f"gallery:{calibration_id}",
        default_fmr=default_fmr,
    )
    table = []
    for fmr, threshold, tar in zip(
        calibration.fmr, calibration.thresholds, calibration.tar, strict=True
    ):
        above = int((impostor >= threshold).sum())
        low, high = clopper_pearson(above, len(impostor))
        table.append(
            {
                "fmr": fmr,
                "threshold": round(threshold, 6),
                "tar": tar,
                "impostors_above": above,
                "far_observed": above / len(impostor),
                "ci95": [low, high],
                "held_out_fmr": held_out["fmr"].get(fmr),
            }
        )
    record: dict[str, Any] = {
        "id": calibration_id,
        "source": calibration.source,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_id": model_id,
        "people": people,
        "images": images,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "sources": sources,
        "default_fmr": default_fmr,
        "smallest_fmr": grid[-1],
        "folds": held_out["folds"],
        "thresholds": table,
        "cllr": {
            "held_out": held_out["cllr"],
            "shipped": _shipped_cllr(shipped, genuine, impostor),
        },
        "calibration": calibration.to_json(),
    }
    return DeploymentFit(calibration, record)


def _cross_fit(pairs: Pairs, grid: tuple[float, ...], seed: int) -> dict[str, Any]:
    """Held-out FMR per rate and Cllr: folds of people, fitted on the others (see above)."""
    people = np.union1d(pairs.person_a, pairs.person_b)
    folds = min(FOLDS, len(people) // 2)
    fold_of = dict(
        zip(
            people.tolist(),
            np.random.default_rng(seed).permutation(len(people)) % folds,
            strict=True,
        )
    )
    fold_a = np.array([fold_of[p] for p in pairs.person_a.tolist()])
    fold_b = np.array([fold_of[p] for p in pairs.person_b.tolist()])
    above = dict.fromkeys(grid, 0)
    clusters = person_pair_ids(pairs.person_a, pairs.person_b)
    tested = 0
    genuine_llr, impostor_llr = [], []
    for fold in range(folds):
        train = (fold_a != fold) & (fold_b != fold)
        test = (fold_a == fold) & (fold_b == fold)
        train_gen = pairs.scores[train & pairs.same]
        train_imp = pairs.scores[train & ~pairs.same]
        test_gen = pairs.scores[test & pairs.same]
        test_imp = pairs.scores[test & ~pairs.same]
        if len(train_gen) < 2 or len(train_imp) < 2 or len(test_imp) == 0:
            continue
        train_clusters = clusters[train & ~pairs.same]
        fold_thresholds = tail_thresholds(train_imp, grid, train_clusters)
        for fmr, threshold in zip(grid, fold_thresholds, strict=True):
            above[fmr] += int((test_imp >= threshold).sum())
        tested += len(test_imp)
        line = fit_smoothed_llr(train_gen, train_imp)
        genuine_llr.append(line.llr_many(test_gen))
        impostor_llr.append(line.llr_many(test_imp))
    held_cllr = (
        cllr(np.concatenate(genuine_llr), np.concatenate(impostor_llr))
        if genuine_llr and sum(len(g) for g in genuine_llr)
        else None
    )
    return {
        "folds": folds,
        "fmr": {f: (above[f] / tested if tested else None) for f in grid},
        "cllr": held_cllr,
    }


def _shipped_cllr(
    shipped: Calibration | None, genuine: np.ndarray, impostor: np.ndarray
) -> float | None:
    """Cllr (bits) of the shipped LLR line on these pairs: what the calibration improves on."""
    if shipped is None or shipped.llr is None:
        return None
    return cllr(shipped.llr.llr_many(genuine), shipped.llr.llr_many(impostor))


def fit_smoothed_llr(
    genuine: np.ndarray, impostor: np.ndarray, iterations: int = 100
) -> LogisticLLR:
    """The class-balanced logistic LLR line of a score, with Platt's smoothed targets."""
    scores = np.concatenate([genuine, impostor]).astype(np.float64)
    design = np.stack([scores, np.ones_like(scores)], axis=1)
    targets = np.concatenate(
        [
            np.full(len(genuine), (len(genuine) + 1) / (len(genuine) + 2)),
            np.full(len(impostor), 1 / (len(impostor) + 2)),
        ]
    )
    weights = np.concatenate(
        [np.full(len(genuine), 0.5 / len(genuine)), np.full(len(impostor), 0.5 / len(impostor))]
    )
    params = np.zeros(2)
    for _ in range(iterations):
        probability = 1.0 / (1.0 + np.exp(-np.clip(design @ params, -50, 50)))
        gradient = design.T @ (weights * (probability - targets))
        curvature = design.T @ (design * (weights * probability * (1 - probability))[:, None])
        step = np.linalg.solve(curvature + 1e-12 * np.eye(2), gradient)
        params -= step
        if np.abs(step).max() < 1e-10:
            break
    return LogisticLLR(slope=float(params[0] / LN10), intercept=float(params[1] / LN10))
