"""The age and gender model on each CPU engine: agreement on real faces, and speed.

    .venv/bin/python benchmarks/age_gender_engines.py [--lfw ../shared/data/lfw] [--people 300]
        [--json benchmarks/results/age_gender_engines.json]

HSE FaceRes (``hse-faceres-age-gender``) run on onnxruntime in float32 (as
facelens runs it) and on OpenVINO in bfloat16 (where the CPU has it; not
shipped) on the same crops: the first
photo of each of ``--people`` LFW people (evenly spread over the sorted
names), every face YuNet finds, cut by ``analysis.crops.age_gender_crop`` as
``facelens analyze`` cuts it. Reported: the apparent age's difference
between the engines (years: mean, 95th percentile, max), how often the
gender call (male score >= 0.6) differs, the male score's largest
difference, and the milliseconds per face of each engine on 2 threads
(batches of 16 and of 1, fewest of 5 runs; random pixels: the speed of the
network does not depend on them). No development data carries age or gender
labels, so this measures agreement between the engines, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from facelens.analysis.crops import age_gender_crop
from facelens.io.image import load_image
from facelens.models import registry
from facelens.models.attributes import MALE_THRESHOLD, AgeGenderNet
from facelens.models.runtime import using_engine
from facelens.models.spec import verified_model_bytes
from facelens.pipeline.faces import FacePipeline

REPO = Path(__file__).resolve().parent.parent


def lfw_crops(lfw: Path, people: int) -> np.ndarray:
    """Age-and-gender crops of every face found in the first photo of ``people`` LFW people."""
    folders = sorted(p for p in (lfw / "images_deepfunneled").iterdir() if p.is_dir())
    step = max(1, len(folders) // people)
    finder = FacePipeline()
    crops = []
    for folder in folders[::step][:people]:
        image = load_image(next(iter(sorted(folder.iterdir())))).pixels
        crops += [age_gender_crop(image, f.landmarks) for f in finder.detect(image, embed=False)]
    return np.stack(crops)


def ms_per_face(model: AgeGenderNet, count: int, runs: int = 5) -> float:
    """Fewest milliseconds per face over ``runs`` calls of ``count`` random crops."""
    crops = np.random.default_rng(0).integers(0, 256, (count, 224, 224, 3), dtype=np.uint8)
    model.predict(crops)  # warm up
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        model.predict(crops)
        best = min(best, (time.perf_counter() - started) * 1000 / count)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--lfw", type=Path, default=data / "lfw")
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    crops = lfw_crops(args.lfw, args.people)
    spec = registry.get_spec("hse-faceres-age-gender")
    model_bytes = verified_model_bytes(spec)
    models: dict[str, AgeGenderNet] = {}
    for engine in ("onnxruntime", "openvino"):
        with using_engine(engine):
            models[engine] = AgeGenderNet(spec, model_bytes, 2, openvino_precision="bf16")
    (age_exact, male_exact), (age_fast, male_fast) = (m.predict(crops) for m in models.values())
    age_gap = np.abs(age_fast - age_exact)
    report: dict[str, Any] = {
        "faces": len(crops),
        "engines": {name: model.engine for name, model in models.items()},
        "age_difference_years": {
            "mean": float(age_gap.mean()),
            "p95": float(np.quantile(age_gap, 0.95)),
            "max": float(age_gap.max()),
        },
        "gender_calls_differing": int(
            ((male_fast >= MALE_THRESHOLD) != (male_exact >= MALE_THRESHOLD)).sum()
        ),
        "male_score_difference_max": float(np.abs(male_fast - male_exact).max()),
        "ms_per_face": {
            name: {"batch16": ms_per_face(model, 16), "batch1": ms_per_face(model, 1)}
            for name, model in models.items()
        },
        "load_average_1min": os.getloadavg()[0],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
