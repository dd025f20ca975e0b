"""Does a deployment calibration hold on people it was not fitted on?

For each data set (ORL, Yale, LFW people with two or more images), the people are
split in two halves at random (seeded, ``--splits`` times: by default 100 for ORL
and Yale, 20 for LFW; Yale's 15 people as 10 and 5, since a calibration needs 10
people): ``facelens calibrate``'s
fit (:func:`facelens.match.deployment.fit_deployment`) runs on one half, and the other
half's pairs (all of them) measure the false-match rate its thresholds give at the
targets 1e-2 and 1e-3, and the Cllr of its likelihood ratios, beside the shipped
(LFW-fitted) calibration's and the data quantile's alone (the rule before the tail
model). Rates are pooled over the splits (impostor pairs above the threshold /
impostor pairs), with the mean and the worst split, and the worst split of the
set's own quantile (how much a half varies by itself). A target the calibration
half cannot support is reported as refused, as ``facelens calibrate`` would, with
the rate the tail model would have given.

Templates are computed once per data set and embedder and cached in
``/tmp/facelens-calibrate-deployment/``.

    python benchmarks/calibrate_deployment.py --embedder sface-2021dec-int8bq
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import CalibrationError
from facelens.evaluation.dataset import embed_images, read_tree
from facelens.match.calibration import calibration_for
from facelens.match.deployment import (
    MIN_PEOPLE,
    all_pairs,
    conservative_thresholds,
    fit_deployment,
    person_pair_ids,
    tail_thresholds,
)
from facelens.match.evidence import cllr
from facelens.models.registry import DEFAULT_EMBEDDER
from facelens.pipeline.faces import FacePipeline

CACHE = Path("/tmp/facelens-calibrate-deployment")
TARGETS = (1e-2, 1e-3)
SETS = {
    "orl": "orl_att_faces/att_faces",
    "yale": "yalefaces/yalefaces",
    "lfw": "lfw/images_deepfunneled",
}


def templates(name: str, root: Path, embedder: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit templates ``(N, D)`` and person labels ``(N,)`` of a data set (cached)."""
    cached = CACHE / f"{name}-{embedder}.npz"
    if cached.is_file():
        data = np.load(cached)
        return data["vectors"], data["people"]
    tree = read_tree(root)
    images = list(tree.images)
    if name == "lfw":  # people with two or more images: the impostors of the others add little
        counts: dict[str, int] = {}
        for image in images:
            counts[image.identity] = counts.get(image.identity, 0) + 1
        images = [im for im in images if counts[im.identity] >= 2]
    found = embed_images(FacePipeline(embedder=embedder), [(im.key, im.path) for im in images])
    names = sorted({im.identity for im in images})
    index = {n: i for i, n in enumerate(names)}
    people = np.full(len(found.row), -1)
    for image in images:
        if image.key in found.row:
            people[found.row[image.key]] = index[image.identity]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, vectors=found.matrix, people=people)
    return found.matrix, people


def check(vectors: np.ndarray, people: np.ndarray, embedder: str, splits: int) -> dict[str, Any]:
    """Fit on half the people, measure on the other half, ``splits`` times.

    Per target: the rate pooled over the splits (impostor pairs above / impostor pairs
    checked) of the shipped calibration, of the data's quantile alone (the previous
    rule, :func:`conservative_thresholds`) and of ``calibrate``'s thresholds; the mean
    and worst split of the latter; and the worst split of the set's own quantile (fitted
    on all its people, the checked half included), which is how much one half's pairs
    vary by themselves.
    """
    try:
        shipped = calibration_for(embedder)
    except CalibrationError:
        shipped = None
    names = np.unique(people)
    whole = all_pairs(vectors, people)
    own = {t: float(np.quantile(whole.scores[~whole.same], 1 - t)) for t in TARGETS}
    rows: dict[float, dict[str, list[float]]] = {
        t: {k: [] for k in ("fitted", "previous", "shipped", "own", "extrapolated")}
        for t in TARGETS
    }
    refused: dict[float, int] = dict.fromkeys(TARGETS, 0)
    checked: list[int] = []
    fitted_checked: dict[float, list[int]] = {t: [] for t in TARGETS}
    refused_checked: dict[float, list[int]] = {t: [] for t in TARGETS}
    cllrs: dict[str, list[float]] = {"fitted": [], "shipped": []}
    fit_sizes = []
    for split in range(splits):
        order = np.random.default_rng(split).permutation(names)
        half = set(order[: max(len(order) // 2, MIN_PEOPLE)].tolist())
        fit_rows = np.array([p in half for p in people.tolist()])
        pairs = all_pairs(vectors[fit_rows], people[fit_rows])
        fit = fit_deployment(
            embedder, pairs, sources=["half"], images=int(fit_rows.sum()), shipped=shipped
        )
        fit_sizes.append(fit.record["impostor_pairs"])
        fit_impostor = pairs.scores[~pairs.same]
        clusters = person_pair_ids(pairs.person_a, pairs.person_b)[~pairs.same]
        previous = conservative_thresholds(fit_impostor, TARGETS, clusters)
        extrapolated = tail_thresholds(fit_impostor, TARGETS, clusters)
        test = all_pairs(vectors[~fit_rows], people[~fit_rows])
        genuine, impostor = test.scores[test.same], test.scores[~test.same]
        checked.append(len(impostor))
        calibration = fit.calibration
        for number, target in enumerate(TARGETS):
            row = rows[target]
            try:
                row["fitted"].append(float((impostor >= calibration.threshold_for(target)).sum()))
                fitted_checked[target].append(len(impostor))
            except CalibrationError:
                refused[target] += 1
                refused_checked[target].append(len(impostor))
                row["extrapolated"].append(float((impostor >= extrapolated[number]).sum()))
            row["previous"].append(float((impostor >= previous[number]).sum()))
            row["own"].append(float((impostor >= own[target]).sum()))
            if shipped is not None:
                row["shipped"].append(float((impostor >= shipped.threshold_for(target)).sum()))
        assert calibration.llr is not None
        cllrs["fitted"].append(
            cllr(calibration.llr.llr_many(genuine), calibration.llr.llr_many(impostor))
        )
        if shipped is not None and shipped.llr is not None:
            cllrs["shipped"].append(
                cllr(shipped.llr.llr_many(genuine), shipped.llr.llr_many(impostor))
            )
    sizes = np.array(checked, dtype=np.float64)

    def pooled(above: list[float], target: float, checked: np.ndarray = sizes) -> float | None:
        return float(np.sum(above) / checked.sum() / target) if above else None

    fmr: dict[str, Any] = {}
    for target in TARGETS:
        row = rows[target]
        fitted = np.array(fitted_checked[target], dtype=np.float64)
        per_split = np.array(row["fitted"]) / fitted / target
        fmr[f"{target:g}"] = {
            "shipped": pooled(row["shipped"], target),
            "previous": pooled(row["previous"], target),
            "fitted": pooled(row["fitted"], target, fitted),
            "fitted_mean_split": float(per_split.mean()) if len(per_split) else None,
            "fitted_worst_split": float(per_split.max()) if len(per_split) else None,
            "fitted_refused_splits": refused[target],
            "extrapolated_if_refused": pooled(
                row["extrapolated"], target, np.array(refused_checked[target], dtype=np.float64)
            )
            if refused[target]
            else None,
            "own_worst_split": float((np.array(row["own"]) / sizes / target).max()),
        }
    return {
        "people": len(names),
        "images": len(people),
        "splits": splits,
        "impostor_pairs_fit_mean": float(np.mean(fit_sizes)),
        "impostor_pairs_checked": int(sizes.sum()),
        "fmr": fmr,
        "cllr": {k: (float(np.mean(v)) if v else None) for k, v in cllrs.items()},
    }


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(embedder: str, results: dict[str, Any]) -> str:
    lines = [
        f"Embedder `{embedder}`: measured FMR / target on the held-out half; Cllr in bits.",
        "",
        "| set | people | images | splits | target | shipped (LFW) | data quantile (before) "
        "| calibrate (pooled) | mean split | worst split | worst split, own quantile "
        "| Cllr shipped | Cllr calibrate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        for target, f in r["fmr"].items():
            fitted = (
                f"refused (model: {_ratio(f['extrapolated_if_refused'])})"
                if f["fitted"] is None
                else _ratio(f["fitted"])
                + (f", refused {f['fitted_refused_splits']}" if f["fitted_refused_splits"] else "")
            )
            shipped_cllr = r["cllr"]["shipped"]
            lines.append(
                f"| {name} | {r['people']} | {r['images']} | {r['splits']} | {target} "
                f"| {_ratio(f['shipped'])} | {_ratio(f['previous'])} | {fitted} "
                f"| {_ratio(f['fitted_mean_split'])} | {_ratio(f['fitted_worst_split'])} "
                f"| {_ratio(f['own_worst_split'])} "
                f"| {'-' if shipped_cllr is None else f'{shipped_cllr:.3f}'} "
                f"| {r['cllr']['fitted']:.3f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument(
        "--splits",
        type=int,
        default=None,
        help="Random halves per set (default: 100 for ORL and Yale, 20 for LFW).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()
    results = {}
    for name in args.sets:
        vectors, people = templates(name, args.data / SETS[name], args.embedder)
        keep = people >= 0  # images without a face have no person row
        splits = args.splits or (20 if name == "lfw" else 100)
        results[name] = check(vectors[keep], people[keep], args.embedder, splits)
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(markdown(args.embedder, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
