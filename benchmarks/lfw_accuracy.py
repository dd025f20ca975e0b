"""LFW development folds (5-fold pairs protocol) for the pipeline's settings, side by side.

Rows: the default pipeline, the same search without enlarging small images
(``max_upscale=1``), and the default with SFace on onnxruntime instead of
OpenCV DNN (which must give the same accuracy). Writes
``benchmarks/results/lfw_accuracy.json`` and prints a Markdown table.

    .venv/bin/python benchmarks/lfw_accuracy.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from facelens.evaluation.lfw import run_lfw
from facelens.models import registry
from facelens.pipeline.analyzer import FaceAnalyzer

REPO = Path(__file__).resolve().parent.parent

# name -> (max_upscale, SFace runtime)
SETTINGS = {
    "default (search at up to 2x, SFace on OpenCV DNN)": (2.0, "opencv"),
    "search at 1x (no enlargement)": (1.0, "opencv"),
    "SFace on onnxruntime (folded weights)": (2.0, "onnxruntime"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    args = parser.parse_args()
    rows = {}
    for name, (max_upscale, runtime) in SETTINGS.items():
        embedder = registry.load_embedder(runtime=runtime)
        analyzer = FaceAnalyzer(embedder=embedder, max_upscale=max_upscale)
        started = time.time()
        result = run_lfw(analyzer, args.data / "lfw").to_dict()
        result["seconds"] = round(time.time() - started, 1)
        rows[name] = {k: v for k, v in result.items() if k != "fallback_sources"}
        print(f"{name}: {result['accuracy_mean']:.4f}", file=sys.stderr)
    out = REPO / "benchmarks/results/lfw_accuracy.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print("| setting | mean accuracy | std | folds | images | fallbacks |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['accuracy_mean']:.4f} | {r['accuracy_std']:.4f} | {r['folds']} | {r['images']} | {r['fallbacks']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
