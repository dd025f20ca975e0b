"""Fusion weights chosen for LFW pairs accuracy, by nested cross-validation.

``benchmarks/fusion.py`` fits the fusion weights for calibration (log-loss).
This script asks a different question: if the SFace weight ``w`` (dlib gets
``1 - w``, on cosines) is chosen for *accuracy*, what accuracy does the LFW
pairs protocol measure when the choice never sees the test fold? For each of
the 5 folds, ``w`` (a grid of 41 values) and the threshold are both chosen
on the other 4 folds, then applied to the held-out fold. Without and with
flip test-time augmentation on both parts, and on one part only
(flipping dlib alone costs far less than flipping SFace). Writes ``benchmarks/results/fusion_accuracy.json``
and prints Markdown.

    .venv/bin/python benchmarks/fusion_accuracy.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facelens.evaluation.lfw import Pair, embed_lfw_images, find_images_folder, read_pairs
from facelens.evaluation.metrics import accuracy_at, best_accuracy_threshold
from facelens.pipeline.faces import FacePipeline

REPO = Path(__file__).resolve().parent.parent
PARTS = ("sface-2021dec-int8bq", "dlib-resnet-v1")
GRID = np.linspace(0.0, 1.0, 41)
SETTINGS = {  # name -> (flip SFace, flip dlib)
    "no flip": (False, False),
    "flip": (True, True),
    "flip dlib only": (False, True),
    "flip SFace only": (True, False),
}


def fold_scores(
    folds: list[list[Pair]], images: Path, templates: list[dict[str, np.ndarray]]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per fold: the SFace cosines, the dlib cosines and the same/different labels."""
    result = []
    for fold in folds:
        cosines = [
            np.array([t[str(images / p.first)] @ t[str(images / p.second)] for p in fold])
            for t in templates
        ]
        result.append((cosines[0], cosines[1], np.array([p.same for p in fold])))
    return result


def nested_cv(scores: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[dict[str, float]]:
    """For each held-out fold: the weight and threshold chosen on the others, and the accuracy."""
    folds = []
    for held_out in range(len(scores)):
        train = [s for i, s in enumerate(scores) if i != held_out]
        labels = np.concatenate([same for _, _, same in train])
        best: tuple[float, float, float] | None = None
        for weight in GRID:
            fused = np.concatenate([weight * a + (1 - weight) * b for a, b, _ in train])
            threshold = best_accuracy_threshold(fused, labels)
            accuracy = accuracy_at(fused, labels, threshold)
            if best is None or accuracy > best[0] + 1e-12:
                best = (accuracy, float(weight), threshold)
        assert best is not None
        sface, dlib, same = scores[held_out]
        test = accuracy_at(best[1] * sface + (1 - best[1]) * dlib, same, best[2])
        folds.append({"fold": held_out + 1, "sface_weight": best[1], "accuracy": test})
    return folds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    args = parser.parse_args()
    root = args.data / "lfw"
    folds = read_pairs(root / "pairs.txt")
    images = find_images_folder(root, None, folds)
    unique = sorted({p for fold in folds for pair in fold for p in (pair.first, pair.second)})
    templates = {
        (part, flip): embed_lfw_images(
            FacePipeline(embedder=part, flip=flip), [images / p for p in unique]
        )[0]
        for flip in (False, True)
        for part in PARTS
    }
    rows: dict[str, Any] = {}
    for name, (sface_flip, dlib_flip) in SETTINGS.items():
        chosen = [templates[(PARTS[0], sface_flip)], templates[(PARTS[1], dlib_flip)]]
        per_fold = nested_cv(fold_scores(folds, images, chosen))
        accuracies = [f["accuracy"] for f in per_fold]
        rows[name] = {
            "folds": per_fold,
            "accuracy_mean": float(np.mean(accuracies)),
            "accuracy_std": float(np.std(accuracies)),
        }
    (REPO / "benchmarks/results/fusion_accuracy.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| setting | SFace weight chosen per fold | mean accuracy (nested CV) | std |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        weights = ", ".join(f"{f['sface_weight']:.3f}" for f in row["folds"])
        print(
            f"| fusion, {name} | {weights} | {row['accuracy_mean'] * 100:.2f}% | {row['accuracy_std'] * 100:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
