"""Measure an embedder's calibration on the LFW development people and store it.

Every image of the people of ``people.txt`` (all 5 sets) is embedded with the
facelens pipeline (centred-crop fallback when no face is found). Genuine
scores are all same-person pairs; impostor scores are all cross-person pairs
(about 19 million). The thresholds at false-match rates from 1e-1 to 1e-6 are
written to ``src/facelens/models/calibration/<model id>.json``, which the
registry ships and every identify/verify decision reads.

    .venv/bin/python benchmarks/calibrate.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from facelens.evaluation.lfw import embed_lfw_images, people_images, read_people
from facelens.match.calibration import fit_calibration
from facelens.pipeline.analyzer import FaceAnalyzer

REPO = Path(__file__).resolve().parent.parent


def pair_scores(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All genuine and all impostor cosine scores among ``vectors`` (upper triangle)."""
    genuine, impostor = [], []
    for start in range(0, len(vectors), 512):
        block = vectors[start : start + 512] @ vectors.T
        for offset, row in enumerate(block):
            i = start + offset
            same = labels[i + 1 :] == labels[i]
            tail = row[i + 1 :]
            genuine.append(tail[same])
            impostor.append(tail[~same])
    return np.concatenate(genuine), np.concatenate(impostor)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data")),
    )
    parser.add_argument("--embedder", default="sface-2021dec-int8bq")
    args = parser.parse_args()
    root = args.data / "lfw"
    images = root / "images_deepfunneled"
    people = [p for group in read_people(root / "people.txt") for p in group]
    items = people_images(images, people)
    analyzer = FaceAnalyzer(embedder=args.embedder)
    started = time.time()
    templates, fallbacks = embed_lfw_images(analyzer, [path for _, path in items])
    print(
        f"embedded {len(items)} images in {time.time() - started:.0f} s, {len(fallbacks)} fallbacks",
        file=sys.stderr,
    )
    names = sorted({name for name, _ in items})
    labels = np.array([names.index(name) for name, _ in items])
    vectors = np.stack([templates[str(path)] for _, path in items])
    genuine, impostor = pair_scores(vectors, labels)
    calibration = fit_calibration(
        args.embedder,
        genuine,
        impostor,
        dataset=(
            f"LFW development people (people.txt sets 1-5): {len(items)} images of {len(names)} "
            f"people, all same-person and all cross-person pairs; {len(fallbacks)} images used "
            "the centred-crop fallback"
        ),
        command="python benchmarks/calibrate.py",
    )
    out = REPO / "src/facelens/models/calibration" / f"{args.embedder}.json"
    out.write_text(json.dumps(calibration.to_json(), indent=2) + "\n")
    print(
        json.dumps(
            {
                "genuine": len(genuine),
                "impostor": len(impostor),
                "thresholds": dict(
                    zip([f"{f:g}" for f in calibration.fmr], calibration.thresholds, strict=True)
                ),
                "tar": dict(zip([f"{f:g}" for f in calibration.fmr], calibration.tar, strict=True)),
            },
            indent=2,
        )
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
