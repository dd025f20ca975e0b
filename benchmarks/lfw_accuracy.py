"""LFW development folds (5-fold pairs protocol) for the pipeline's settings, side by side.

Rows: the default pipeline; the same search without enlarging small images
(``max_upscale=1``); SFace on onnxruntime instead of OpenCV DNN (which must
give the same accuracy); flip test-time augmentation on; the dlib ResNet
alone; the SFace + dlib fusion, without and with flip. Writes
``benchmarks/results/lfw_accuracy.json`` and prints a Markdown table; the
seconds column is the whole protocol's wall time, for comparison between rows
only (benchmarks/speed_lfw.py measures speed properly).

    .venv/bin/python benchmarks/lfw_accuracy.py [--data ../shared/data] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from facelens.evaluation.lfw import run_lfw
from facelens.models import registry
from facelens.pipeline.faces import FacePipeline

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    name: str
    embedder: str = "sface-2021dec-int8bq"
    runtime: str | None = None
    max_upscale: float = 2.0
    flip: bool = False


SETTINGS = [
    Setting("SFace, search at up to 2x, on OpenCV DNN"),
    Setting("search at 1x (no enlargement)", max_upscale=1.0),
    Setting("SFace on onnxruntime (folded weights)", runtime="onnxruntime"),
    Setting("flip test-time augmentation", flip=True),
    Setting("dlib ResNet alone", embedder="dlib-resnet-v1"),
    Setting("dlib ResNet alone, dlib's own alignment", embedder="dlib-resnet-v1-native"),
    Setting("fusion: SFace + dlib ResNet", embedder="fusion-sface-dlib"),
    Setting("fusion with flip test-time augmentation", embedder="fusion-sface-dlib", flip=True),
    Setting(
        "fusion chosen for accuracy (SFace 0.15 + flipped dlib 0.85)",
        embedder="fusion-sface-dlib-flip",
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--only", default="", help="Run only settings whose name contains this.")
    args = parser.parse_args()
    out = REPO / "benchmarks/results/lfw_accuracy.json"
    rows = json.loads(out.read_text()) if out.exists() and args.only else {}
    for setting in SETTINGS:
        if args.only not in setting.name:
            continue
        embedder = registry.load_embedder(setting.embedder, runtime=setting.runtime)
        pipeline = FacePipeline(
            embedder=embedder, max_upscale=setting.max_upscale, flip=setting.flip
        )
        started = time.time()
        result = run_lfw(pipeline, args.data / "lfw").to_dict()
        result["seconds"] = round(time.time() - started, 1)
        rows[setting.name] = {k: v for k, v in result.items() if k != "fallback_sources"}
        print(f"{setting.name}: {result['accuracy_mean']:.4f}", file=sys.stderr)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print("| setting | mean accuracy | std | folds | images | fallbacks | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['accuracy_mean']:.4f} | {r['accuracy_std']:.4f} | {r['folds']} | "
            f"{r['images']} | {r['fallbacks']} | {r.get('seconds', '')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
