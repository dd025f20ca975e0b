"""Does a deployment calibration hold on people it was not fitted on?

For each data set (ORL, Yale, LFW people with two or more images), the people are
split in two halves at random (seeded, ``--splits`` times; Yale's 15 people as 10
and 5, since a calibration needs 10 people): ``facelens calibrate``'s
fit (:func:`facelens.match.deployment.fit_deployment`) runs on one half, and the other
half's pairs (all of them) measure the false-match rate its thresholds give at the
targets 1e-2 and 1e-3, and the Cllr of its likelihood ratios, beside the shipped
(LFW-fitted) calibration's. Rates are pooled over the splits (impostor pairs above
the threshold / impostor pairs). A target the calibration half cannot support is
reported as refused, as ``facelens calibrate`` would.

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
from facelens.match.deployment import MIN_PEOPLE, all_pairs, fit_deployment
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
    """Fit on half the people, measure on the other half, ``splits`` times, pooled."""
    try:
        shipped = calibration_for(embedder)
    except CalibrationError:
        shipped = None
    names = np.unique(people)
    above = {t: {"fitted": 0, "shipped": 0} for t in TARGETS}
    refused: dict[float, int] = dict.fromkeys(TARGETS, 0)
    impostors = 0
    cllrs: dict[str, list[float]] = {"fitted": [], "shipped": []}
    fit_sizes = []
    for split in range(splits):
        order = np.random.default_rng(split).permutation(names)
        half = set(order[: max(len(order) // 2, MIN_PEOPLE)].tolist())
        fit_rows = np.array([p in half for p in people.tolist()])
        fit = fit_deployment(
            embedder,
            all_pairs(vectors[fit_rows], people[fit_rows]),
            sources=["half"],
            images=int(fit_rows.sum()),
            shipped=shipped,
        )
        fit_sizes.append(fit.record["impostor_pairs"])
        test = all_pairs(vectors[~fit_rows], people[~fit_rows])
        genuine, impostor = test.scores[test.same], test.scores[~test.same]
        impostors += len(impostor)
        calibration = fit.calibration
        for target in TARGETS:
            try:
                threshold = calibration.threshold_for(target)
                above[target]["fitted"] += int((impostor >= threshold).sum())
            except CalibrationError:
                refused[target] += 1
            if shipped is not None:
                above[target]["shipped"] += int((impostor >= shipped.threshold_for(target)).sum())
        assert calibration.llr is not None
        cllrs["fitted"].append(
            cllr(calibration.llr.llr_many(genuine), calibration.llr.llr_many(impostor))
        )
        if shipped is not None and shipped.llr is not None:
            cllrs["shipped"].append(
                cllr(shipped.llr.llr_many(genuine), shipped.llr.llr_many(impostor))
            )
    return {
        "people": len(names),
        "images": len(people),
        "splits": splits,
        "impostor_pairs_fit_mean": float(np.mean(fit_sizes)),
        "impostor_pairs_checked": impostors,
        "fmr": {
            f"{t:g}": {
                "fitted_measured": None
                if refused[t] == splits
                else above[t]["fitted"] / (impostors * (splits - refused[t]) / splits),
                "fitted_refused_splits": refused[t],
                "shipped_measured": above[t]["shipped"] / impostors if shipped else None,
            }
            for t in TARGETS
        },
        "cllr": {k: (float(np.mean(v)) if v else None) for k, v in cllrs.items()},
    }


def markdown(embedder: str, results: dict[str, Any]) -> str:
    lines = [
        f"Embedder `{embedder}`; measured FMR / target (pooled over splits), Cllr in bits.",
        "",
        "| set | people | images | target | shipped (LFW) | deployment (other half) | Cllr shipped | Cllr deployment |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        for target, f in r["fmr"].items():
            fitted = (
                "refused"
                if f["fitted_measured"] is None
                else f"{f['fitted_measured'] / float(target):.2f}x"
            )
            shipped = (
                "-"
                if f["shipped_measured"] is None
                else f"{f['shipped_measured'] / float(target):.2f}x"
            )
            lines.append(
                f"| {name} | {r['people']} | {r['images']} | {target} | {shipped} | {fitted} | "
                f"{r['cllr']['shipped'] or float('nan'):.3f} | {r['cllr']['fitted']:.3f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()
    results = {}
    for name in args.sets:
        vectors, people = templates(name, args.data / SETS[name], args.embedder)
        results[name] = check(vectors, people, args.embedder, args.splits)
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(markdown(args.embedder, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
