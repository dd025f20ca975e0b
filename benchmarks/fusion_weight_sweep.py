"""Accuracy against calibration robustness, over the SFace weight of the fusion.

For each SFace weight ``w`` (dlib gets ``1 - w``, on cosines; dlib's part
flipped, as in ``fusion-sface-dlib-flip``): the LFW pairs accuracy (5 folds,
threshold chosen on the other 4) and the cross-fitted false-match rates of
``calibrate.py`` (threshold for FMR 1e-3 and 1e-4 fitted on the impostor pairs
of 4 people sets, measured on the 5th), as the range over the 5 held-out sets
of measured / target. One embedding of the 6,165 development images serves
every weight: the cached ``fusion-sface-dlib-flip`` templates are split back
into their two parts. Prints Markdown; writes
``benchmarks/results/fusion_weight_sweep.json``.

    .venv/bin/python benchmarks/fusion_weight_sweep.py [--data ../shared/data] [--any-source]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from facelens.evaluation.lfw import find_images_folder, people_images, read_pairs, read_people
from facelens.evaluation.metrics import accuracy_at, best_accuracy_threshold
from facelens.models.registry import get_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate import all_pairs
from lfw_templates import lfw_templates

REPO = Path(__file__).resolve().parent.parent
EMBEDDER = "fusion-sface-dlib-flip"
WEIGHTS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.364, 0.5, 0.6, 0.7, 1.0)
CHECKED_FMRS = (1e-3, 1e-4)


def split_parts(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unit-norm SFace and dlib templates inside fused ones (each part scaled by sqrt(weight))."""
    (_, sface_weight), (_, dlib_weight) = get_spec(EMBEDDER).parts
    return vectors[:, :128] / np.sqrt(sface_weight), vectors[:, 128:] / np.sqrt(dlib_weight)


def fmr_ratios(score: np.ndarray, pairs: dict[str, np.ndarray], fmr: float) -> list[float]:
    """Per held-out people set: its FMR at the threshold fitted on the other sets, over ``fmr``."""
    ratios = []
    impostor = ~pairs["genuine"]
    for held_out in range(5):
        inside = (pairs["set_a"] == held_out) & (pairs["set_b"] == held_out)
        outside = (pairs["set_a"] != held_out) & (pairs["set_b"] != held_out)
        train = np.sort(score[outside & impostor])[::-1]
        threshold = train[round(fmr * len(train))]
        ratios.append(float((score[inside & impostor] > threshold).mean() / fmr))
    return ratios


def pairs_accuracy(
    fused: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> float:
    """Mean LFW accuracy over the 5 folds, each with the threshold of the other 4."""
    per_fold = [((fused[a] * fused[b]).sum(1), same) for a, b, same in folds]
    accuracies = []
    for held_out, (scores, same) in enumerate(per_fold):
        train = [f for i, f in enumerate(per_fold) if i != held_out]
        threshold = best_accuracy_threshold(
            np.concatenate([s for s, _ in train]), np.concatenate([y for _, y in train])
        )
        accuracies.append(accuracy_at(scores, same, threshold))
    return float(np.mean(accuracies))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--any-source", action="store_true", help="use an older template cache")
    args = parser.parse_args()
    root = args.data / "lfw"
    templates = lfw_templates(args.data, EMBEDDER, any_source=args.any_source)
    sface, dlib = split_parts(templates.vectors)

    images = root / "images_deepfunneled"
    paths = [
        str(path)
        for group in read_people(root / "people.txt")
        for _, path in people_images(images, group)
    ]
    row_of = {path: row for row, path in enumerate(paths)}
    pair_folds = read_pairs(root / "pairs.txt")
    folder = find_images_folder(root, None, pair_folds)
    folds = [
        (
            np.array([row_of[str(folder / p.first)] for p in fold]),
            np.array([row_of[str(folder / p.second)] for p in fold]),
            np.array([p.same for p in fold]),
        )
        for fold in pair_folds
    ]
    sface_pairs = all_pairs(sface, templates.person, templates.people_set)
    dlib_scores = all_pairs(dlib, templates.person, templates.people_set)["score"]

    rows = []
    for weight in WEIGHTS:
        fused = np.concatenate([np.sqrt(weight) * sface, np.sqrt(1 - weight) * dlib], axis=1)
        score = weight * sface_pairs["score"] + (1 - weight) * dlib_scores
        rows.append(
            {
                "sface_weight": weight,
                "lfw_accuracy": pairs_accuracy(fused, folds),
                **{
                    f"fmr_ratio_{fmr:g}": fmr_ratios(score, sface_pairs, fmr)
                    for fmr in CHECKED_FMRS
                },
            }
        )
        print(f"w={weight}: {rows[-1]['lfw_accuracy']:.4f}", file=sys.stderr, flush=True)
    out = REPO / "benchmarks/results/fusion_weight_sweep.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print("| SFace weight | LFW accuracy | held-out FMR / target at 1e-3 | at 1e-4 |")
    print("|---|---|---|---|")
    for row in rows:
        ranges = [
            f"{min(row[f'fmr_ratio_{fmr:g}']):.2f}x-{max(row[f'fmr_ratio_{fmr:g}']):.2f}x"
            for fmr in CHECKED_FMRS
        ]
        print(
            f"| {row['sface_weight']:g} | {100 * row['lfw_accuracy']:.2f}% | {ranges[0]} | {ranges[1]} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
