"""Clustering accuracy on the LFW development people: facelens cluster against DBSCAN.

Every image of the 5 people sets of ``people.txt`` (6,165 photos, 2,835
people, 2,034 of them with a single photo) gives one face, the labelled one
(nearest the centre; ``benchmarks/lfw_templates.py``, cached). In one run:

* **baseline**: scikit-learn's DBSCAN with a photo library's common defaults,
  cosine distance ``eps = 0.5`` and ``min_samples = 3``; its noise points
  are faces in no group and count as singletons;
* **facelens**: the real clustering path (``facelens.cluster.engine.regroup``
  on a cluster index holding the templates) at the shipped default
  false-match rate, and a sweep of rates around it (average linkage), with
  single and complete linkage at the same thresholds for comparison
  (scipy's hierarchy; average linkage there gives the same partition);
* **incremental**: 80% of the photos (seeded shuffle) clustered first, the
  other 20% added by an ordinary run, against clustering all at once;
* **held-out choice**: for each people set, the rate is chosen on the other
  four (best BCubed F with pairwise precision >= 0.99) and measured on it.

Scores: pairwise precision/recall/F and BCubed precision/recall/F over all
photos, every face that a method leaves ungrouped counting as a singleton
cluster (so a person with one photo, left alone, is a perfect BCubed item
and makes no pair). BCubed is also given over the photos of people with two
or more photos only (clusters still hold everyone).

    .venv/bin/python benchmarks/cluster_lfw.py [--data ../shared/data] [--embedder ID]

Writes ``benchmarks/results/cluster_lfw.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.cluster import DBSCAN

from facelens.cluster.clusterer import DEFAULT_CLUSTER_FMR
from facelens.cluster.engine import regroup
from facelens.cluster.linkage import LinkageProblem, average_linkage
from facelens.cluster.metrics import ClusterScores, score_clustering
from facelens.cluster.store import ClusterStore, NewFace
from facelens.match.calibration import calibration_for
from facelens.models.registry import DEFAULT_EMBEDDER
from facelens.types import Box

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lfw_templates import lfw_templates

REPO = Path(__file__).resolve().parent.parent
SWEEP = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 5e-6, 3e-6)
DBSCAN_EPS = 0.5
DBSCAN_MIN_SAMPLES = 3
TARGET_PRECISION = 0.99


def dbscan_labels(vectors: np.ndarray) -> np.ndarray:
    """DBSCAN cluster per face; each noise point becomes its own cluster."""
    labels = DBSCAN(eps=DBSCAN_EPS, min_samples=DBSCAN_MIN_SAMPLES, metric="cosine").fit_predict(
        vectors
    )
    noise = labels < 0
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    return labels


def linkage_labels(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """facelens's average linkage on singletons (no constraints: one face per photo)."""
    units = [[i] for i in range(len(vectors))]
    clusters = average_linkage(LinkageProblem(vectors, units, [False] * len(units)), threshold)
    return labels_of(clusters, len(vectors))


def labels_of(clusters: list[list[int]], count: int) -> np.ndarray:
    labels = np.full(count, -1, dtype=np.int64)
    for index, members in enumerate(clusters):
        labels[members] = index
    return labels


def index_run(vectors: np.ndarray, threshold: float, first: np.ndarray) -> tuple[np.ndarray, float]:
    """The real path: a cluster index, one run on ``first`` faces, then one on the rest.

    Returns the group of every face and the seconds the second run took
    (or the first, when every face is in ``first``).
    """
    with tempfile.TemporaryDirectory() as folder:
        store = ClusterStore(Path(folder) / "lfw.clusters.db", "benchmark")
        face_row: dict[int, int] = {}
        seconds = 0.0
        for part in (np.flatnonzero(first), np.flatnonzero(~first)):
            if len(part) == 0:
                continue
            for row in part:
                (face_id,) = store.add_photo(
                    f"lfw-{row}",
                    f"lfw-{row}",
                    250,
                    250,
                    [NewFace(Box(62.5, 62.5, 125, 125), 1.0, vectors[row], None)],
                )
                face_row[face_id] = int(row)
            started = time.perf_counter()
            regroup(store, threshold)
            seconds = time.perf_counter() - started
        matrix = store.face_matrix()
        store.close()
    labels = np.full(len(vectors), -1, dtype=np.int64)
    for face_id, group_id in zip(matrix.face_ids.tolist(), matrix.group_ids.tolist(), strict=True):
        labels[face_row[face_id]] = group_id
    return labels, seconds


def scores(labels: np.ndarray, person: np.ndarray, multi: np.ndarray) -> dict[str, Any]:
    everyone = score_clustering(labels, person).to_dict()
    everyone["bcubed_f_people_with_2plus"] = round(
        score_clustering(labels, person, multi).bcubed_f, 5
    )
    return everyone


def choose_rate(results: list[tuple[float, ClusterScores]]) -> float:
    """The rate with the best BCubed F among those with pairwise precision >= the target."""
    eligible = [(s.bcubed_f, fmr) for fmr, s in results if s.pairwise_precision >= TARGET_PRECISION]
    if not eligible:
        return min(fmr for fmr, _ in results)
    return max(eligible)[1]


def held_out_choice(
    vectors: np.ndarray, person: np.ndarray, people_set: np.ndarray, calibration: Any
) -> list[dict[str, Any]]:
    rows = []
    for held_out in range(int(people_set.max()) + 1):
        train = people_set != held_out
        sweep = [
            (
                fmr,
                score_clustering(
                    linkage_labels(vectors[train], calibration.threshold_for(fmr)), person[train]
                ),
            )
            for fmr in SWEEP
        ]
        chosen = choose_rate(sweep)
        test = ~train
        ours = score_clustering(
            linkage_labels(vectors[test], calibration.threshold_for(chosen)), person[test]
        )
        base = score_clustering(dbscan_labels(vectors[test]), person[test])
        rows.append(
            {
                "people_set": held_out + 1,
                "photos": int(test.sum()),
                "chosen_fmr": chosen,
                "facelens": ours.to_dict(),
                "dbscan": base.to_dict(),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/cluster_lfw")
    args = parser.parse_args()
    load_before = os.getloadavg()
    lfw = lfw_templates(args.data, args.embedder)
    vectors = lfw.vectors.astype(np.float32)
    person = lfw.person
    multi = np.bincount(person)[person] >= 2
    calibration = calibration_for(args.embedder)
    default_threshold = calibration.threshold_for(DEFAULT_CLUSTER_FMR)

    started = time.perf_counter()
    baseline = dbscan_labels(vectors)
    baseline_seconds = time.perf_counter() - started
    all_first = np.ones(len(vectors), dtype=bool)
    ours, ours_seconds = index_run(vectors, default_threshold, all_first)

    distances = pdist(vectors.astype(np.float64), "cosine")
    trees = {method: linkage(distances, method) for method in ("single", "complete")}
    sweep = []
    for fmr in SWEEP:
        threshold = calibration.threshold_for(fmr)
        row: dict[str, Any] = {"fmr": fmr, "threshold": round(threshold, 4)}
        row["average"] = scores(linkage_labels(vectors, threshold), person, multi)
        for method, tree in trees.items():
            row[method] = scores(fcluster(tree, 1 - threshold, criterion="distance"), person, multi)
        sweep.append(row)

    shuffled = np.random.default_rng(0).permutation(len(vectors))
    first = np.zeros(len(vectors), dtype=bool)
    first[shuffled[: int(0.8 * len(vectors))]] = True
    incremental, incremental_seconds = index_run(vectors, default_threshold, first)

    report = {
        "command": f"python benchmarks/cluster_lfw.py --embedder {args.embedder}",
        "embedder": args.embedder,
        "photos": len(vectors),
        "people": len(np.unique(person)),
        "people_with_one_photo": int((np.bincount(person) == 1).sum()),
        "detector_fallbacks": lfw.fallbacks,
        "baseline": {
            "method": f"sklearn DBSCAN eps={DBSCAN_EPS} (cosine) min_samples={DBSCAN_MIN_SAMPLES}",
            "scores": scores(baseline, person, multi),
            "seconds": round(baseline_seconds, 2),
        },
        "facelens": {
            "method": "constrained average linkage (facelens.cluster), one run on all photos",
            "fmr": DEFAULT_CLUSTER_FMR,
            "threshold": round(default_threshold, 4),
            "scores": scores(ours, person, multi),
            "seconds": round(ours_seconds, 2),
        },
        "incremental": {
            "method": "80% of photos (seed 0) in a first run, the other 20% in a second run",
            "scores": scores(incremental, person, multi),
            "second_run_seconds": round(incremental_seconds, 2),
        },
        "sweep": sweep,
        "held_out_choice": held_out_choice(vectors, person, lfw.people_set, calibration),
        "machine": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    def line(name: str, s: dict[str, Any], extra: str = "") -> str:
        return (
            f"| {name} | {s['pairwise_precision']:.4f} | {s['pairwise_recall']:.4f} | "
            f"{s['pairwise_f']:.4f} | {s['bcubed_precision']:.4f} | {s['bcubed_recall']:.4f} | "
            f"{s['bcubed_f']:.4f} | {s['bcubed_f_people_with_2plus']:.4f} | {s['clusters']} | {extra} |"
        )

    head = (
        "| method | pair P | pair R | pair F | BCubed P | BCubed R | BCubed F | "
        "BCubed F (2+ photos) | clusters | note |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [
        f"Clustering {report['photos']:,} LFW photos of {report['people']:,} people "
        f"({report['people_with_one_photo']:,} with one photo), embedder `{report['embedder']}`.",
        "",
        head,
        line("DBSCAN baseline", report["baseline"]["scores"], report["baseline"]["method"]),
        line(
            "facelens cluster",
            report["facelens"]["scores"],
            f"FMR {report['facelens']['fmr']:g}, mean score >= {report['facelens']['threshold']}",
        ),
        line(
            "facelens, incremental",
            report["incremental"]["scores"],
            f"{report['incremental']['method']}",
        ),
        "",
        "Sweep of the merge rate (average linkage = facelens; single and complete for comparison):",
        "",
        head,
    ]
    for row in report["sweep"]:
        for method in ("average", "single", "complete"):
            lines.append(
                line(f"{method} @ FMR {row['fmr']:g}", row[method], f"cos {row['threshold']}")
            )
    lines += [
        "",
        "Rate chosen on four people sets, measured on the fifth:",
        "",
        "| held-out set | photos | chosen FMR | facelens pair P | facelens BCubed F | DBSCAN pair P | DBSCAN BCubed F |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["held_out_choice"]:
        lines.append(
            f"| {row['people_set']} | {row['photos']} | {row['chosen_fmr']:g} | "
            f"{row['facelens']['pairwise_precision']:.4f} | {row['facelens']['bcubed_f']:.4f} | "
            f"{row['dbscan']['pairwise_precision']:.4f} | {row['dbscan']['bcubed_f']:.4f} |"
        )
    machine = report["machine"]
    lines += [
        "",
        f"Run times: DBSCAN {report['baseline']['seconds']} s, facelens (through the index) "
        f"{report['facelens']['seconds']} s, incremental second run "
        f"{report['incremental']['second_run_seconds']} s; load average {machine['load_before']} "
        f"before, {machine['load_after']} after, {machine['cpus']} CPUs.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
