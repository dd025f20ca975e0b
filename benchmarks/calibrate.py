"""Measure an embedder's calibration on the LFW development people and store it.

Every image of the people of ``people.txt`` (the 5 people sets) is embedded
with the facelens pipeline (centred-crop fallback when no face is found).
Genuine scores are all same-person pairs; impostor scores all cross-person
pairs (about 19 million). Written to ``src/facelens/models/calibration/<id>.json``:

* thresholds at false-match rates 1e-1 .. 1e-6, with the TAR at each;
* the score -> log10 likelihood ratio line (logistic regression) and its Cllr
  measured by cross-fitting: fit on the pairs of 4 people sets, score the
  pairs within the 5th, for each of the 5.

The same cross-fitting checks the operating points: thresholds for FMR 1e-3
and 1e-4 chosen on all cross-person pairs of 4 sets, the FMR and TAR then
measured on the 5th set's pairs. Those checks go to
``benchmarks/results/calibration_<id>.json`` and ``.md``.

    .venv/bin/python benchmarks/calibrate.py [--data ../shared/data] [--embedder ID]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facelens.match.calibration import fit_calibration
from facelens.match.evidence import cllr, fit_logistic_llr
from facelens.models.registry import DEFAULT_EMBEDDER

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lfw_templates import lfw_templates

REPO = Path(__file__).resolve().parent.parent
CHECKED_FMRS = (1e-3, 1e-4)


def all_pairs(
    vectors: np.ndarray, person: np.ndarray, people_set: np.ndarray
) -> dict[str, np.ndarray]:
    """Every pair i < j: its score, whether it is genuine, and the people sets of both sides."""
    scores, genuine, set_a, set_b = [], [], [], []
    for start in range(0, len(vectors), 512):
        block = vectors[start : start + 512] @ vectors.T
        for offset, row in enumerate(block):
            i = start + offset
            scores.append(row[i + 1 :].astype(np.float32))
            genuine.append(person[i + 1 :] == person[i])
            set_a.append(np.full(len(vectors) - i - 1, people_set[i], np.uint8))
            set_b.append(people_set[i + 1 :].astype(np.uint8))
    return {
        "score": np.concatenate(scores),
        "genuine": np.concatenate(genuine),
        "set_a": np.concatenate(set_a),
        "set_b": np.concatenate(set_b),
    }


def cross_fit(pairs: dict[str, np.ndarray], sets: int) -> dict[str, Any]:
    """For each people set: fit on the other sets, measure on this one."""
    folds = []
    for held_out in range(sets):
        train = (pairs["set_a"] != held_out) & (pairs["set_b"] != held_out)
        test = (pairs["set_a"] == held_out) & (pairs["set_b"] == held_out)
        fold: dict[str, Any] = {"held_out_set": held_out + 1}
        train_gen = pairs["score"][train & pairs["genuine"]]
        train_imp = pairs["score"][train & ~pairs["genuine"]]
        test_gen = pairs["score"][test & pairs["genuine"]]
        test_imp = pairs["score"][test & ~pairs["genuine"]]
        line = fit_logistic_llr(train_gen, train_imp)
        fold["cllr"] = cllr(line.llr_many(test_gen), line.llr_many(test_imp))
        fold["train_pairs"] = {"genuine": len(train_gen), "impostor": len(train_imp)}
        fold["test_pairs"] = {"genuine": len(test_gen), "impostor": len(test_imp)}
        fold["operating_points"] = []
        sorted_imp = np.sort(train_imp)[::-1]
        for target in CHECKED_FMRS:
            threshold = float(np.nextafter(sorted_imp[int(target * len(sorted_imp))], np.inf))
            fold["operating_points"].append(
                {
                    "target_fmr": target,
                    "threshold": threshold,
                    "train_fmr": float((train_imp >= threshold).mean()),
                    "test_fmr": float((test_imp >= threshold).mean()),
                    "train_tar": float((train_gen >= threshold).mean()),
                    "test_tar": float((test_gen >= threshold).mean()),
                }
            )
        folds.append(fold)
    return {"folds": folds, "mean_cllr": float(np.mean([f["cllr"] for f in folds]))}


def report_markdown(model_id: str, checks: dict[str, Any]) -> str:
    lines = [
        f"Cross-fitted checks of `{model_id}` (fit on 4 LFW people sets, measured on the 5th).",
        "",
        "| held-out set | test pairs (genuine / impostor) | Cllr (bits) | FMR target | threshold | FMR on the 4 sets | FMR on the held-out set | TAR on the 4 sets | TAR on the held-out set |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fold in checks["folds"]:
        pairs = f"{fold['test_pairs']['genuine']:,} / {fold['test_pairs']['impostor']:,}"
        for point in fold["operating_points"]:
            lines.append(
                f"| {fold['held_out_set']} | {pairs} | {fold['cllr']:.3f} | {point['target_fmr']:g} | "
                f"{point['threshold']:.3f} | {point['train_fmr']:.2e} | {point['test_fmr']:.2e} | "
                f"{point['train_tar']:.4f} | {point['test_tar']:.4f} |"
            )
    lines.append("")
    lines.append(f"Mean held-out Cllr: {checks['mean_cllr']:.3f} bits.")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    args = parser.parse_args()
    lfw = lfw_templates(args.data, args.embedder)
    pairs = all_pairs(lfw.vectors, lfw.person, lfw.people_set)
    genuine = pairs["score"][pairs["genuine"]]
    impostor = pairs["score"][~pairs["genuine"]]
    sets = int(lfw.people_set.max()) + 1
    checks = cross_fit(pairs, sets)
    calibration = fit_calibration(
        args.embedder,
        genuine,
        impostor,
        dataset=(
            f"LFW development people (people.txt sets 1-{sets}): {len(lfw.vectors)} images of "
            f"{len(lfw.names)} people, all same-person and all cross-person pairs; {lfw.fallbacks} "
            "images used the centred-crop fallback"
        ),
        command=f"python benchmarks/calibrate.py --embedder {args.embedder}",
        llr=fit_logistic_llr(genuine, impostor),
        cllr=checks["mean_cllr"],
    )
    out = REPO / "src/facelens/models/calibration" / f"{args.embedder}.json"
    out.write_text(json.dumps(calibration.to_json(), indent=2) + "\n")
    results = REPO / "benchmarks/results"
    (results / f"calibration_{args.embedder}.json").write_text(json.dumps(checks, indent=2) + "\n")
    markdown = report_markdown(args.embedder, checks)
    (results / f"calibration_{args.embedder}.md").write_text(markdown)
    print(markdown)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
