"""Fit the score-level fusion of two embedders on the LFW development people, cross-fitted.

Per pair of images, each embedder gives a cosine; its calibration maps the
cosine linearly to a log likelihood ratio, so a class-balanced logistic
regression on the two cosines is score-level fusion after per-model
calibration. The fitted coefficients, normalised to sum to 1, are the part
weights of :class:`facelens.models.fusion.FusionEmbedder` (the fused
template's cosine is then the weighted sum of the parts' cosines).

Cross-fitting: for each of the 5 LFW people sets, fit on the pairs of the
other 4 and measure the held-out set's Cllr and its equal-error rate, for each
embedder alone and for the fusion. The weights fitted on all 5 sets are the
ones to ship. Writes ``benchmarks/results/fusion.json`` and prints Markdown.

    .venv/bin/python benchmarks/fusion.py --parts sface-2021dec-int8bq dlib-resnet-v1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facelens.match.evidence import cllr, fit_balanced_logistic, fit_logistic_llr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate import all_pairs
from lfw_templates import lfw_templates

REPO = Path(__file__).resolve().parent.parent
MAX_IMPOSTORS = 2_000_000  # a seeded sample of the impostor pairs is enough to fit 2 weights


def fit_weights(scores: np.ndarray, genuine: np.ndarray) -> np.ndarray:
    """Class-balanced logistic regression on the parts' cosines; returns normalised weights."""
    coefficients = np.maximum(fit_balanced_logistic(scores[genuine], scores[~genuine])[:-1], 0.0)
    return coefficients / coefficients.sum()


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    thresholds = np.quantile(impostor, np.linspace(0.9, 1.0, 2001))
    far = np.array([(impostor >= t).mean() for t in thresholds])
    frr = np.array([(genuine < t).mean() for t in thresholds])
    best = int(np.argmin(np.abs(far - frr)))
    return float((far[best] + frr[best]) / 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--parts", nargs=2, required=True)
    args = parser.parse_args()
    templates = [lfw_templates(args.data, part) for part in args.parts]
    pairs = [all_pairs(t.vectors, t.person, t.people_set) for t in templates]
    genuine = pairs[0]["genuine"]
    set_a, set_b = pairs[0]["set_a"], pairs[0]["set_b"]
    scores = np.stack([p["score"] for p in pairs], axis=1).astype(np.float64)
    rng = np.random.default_rng(0)
    sample = np.flatnonzero(genuine)
    impostors = np.flatnonzero(~genuine)
    sample = np.concatenate(
        [sample, rng.choice(impostors, min(MAX_IMPOSTORS, len(impostors)), replace=False)]
    )
    folds: list[dict[str, Any]] = []
    for held_out in range(int(set_a.max()) + 1):
        train = sample[(set_a[sample] != held_out) & (set_b[sample] != held_out)]
        test = (set_a == held_out) & (set_b == held_out)
        weights = fit_weights(scores[train], genuine[train])
        fold: dict[str, Any] = {"held_out_set": held_out + 1, "weights": weights.tolist()}
        columns = {
            **{part: scores[:, i] for i, part in enumerate(args.parts)},
            "fusion": scores @ weights,
        }
        for name, column in columns.items():
            train_mask = np.zeros(len(column), bool)
            train_mask[train] = True
            line = fit_logistic_llr(column[train_mask & genuine], column[train_mask & ~genuine])
            held_gen, held_imp = column[test & genuine], column[test & ~genuine]
            fold[name] = {
                "cllr": cllr(line.llr_many(held_gen), line.llr_many(held_imp)),
                "eer": equal_error_rate(held_gen, held_imp),
            }
        folds.append(fold)
    final = fit_weights(scores[sample], genuine[sample])
    result = {"parts": args.parts, "weights": final.tolist(), "folds": folds}
    (REPO / "benchmarks/results/fusion.json").write_text(json.dumps(result, indent=2) + "\n")
    names = [*args.parts, "fusion"]
    print("| held-out set | weights | " + " | ".join(f"{n} Cllr / EER" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for fold in folds:
        cells = " | ".join(f"{fold[n]['cllr']:.3f} / {fold[n]['eer']:.4f}" for n in names)
        print(
            f"| {fold['held_out_set']} | {', '.join(f'{w:.2f}' for w in fold['weights'])} | {cells} |"
        )
    print(
        f"\nWeights fitted on all 5 sets: {', '.join(f'{p} {w:.3f}' for p, w in zip(args.parts, final, strict=True))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
