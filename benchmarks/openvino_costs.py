"""What OpenVINO costs and saves in a whole process: memory per model, blob loading, faces a call.

Three measurements, each in fresh processes (so that one's libraries, caches
and heap do not colour the next):

* **Resident memory per model and engine**: a process imports facelens's
  registry, then the engine (``openvino`` or ``onnxruntime``), then loads one
  face embedder on it through the registry and embeds one call of faces as
  the pipeline sends them (2 on onnxruntime, 4 on OpenVINO; the astronaut's
  face, shipped by scikit-image, resized to the model's input); VmRSS after
  each step.
* **Loading with and without the compiled-model cache**: the CPU seconds of
  loading the default embedder's parts on OpenVINO in a process whose graph
  cache (``$FACELENS_GRAPH_CACHE``) is empty, then in one that finds the
  graphs and the compiled blobs the first left.
* **Faces a call on ``facelens eval lfw``**: wall seconds, CPU seconds and
  peak RSS of ``facelens eval lfw FOLD --json`` with
  ``OpenVinoSession.faces_per_call`` set to 2, 4 and 8 (4 ships), ``--rounds``
  alternating rounds.

    .venv/bin/python benchmarks/openvino_costs.py FOLD_DIR [--rounds 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

MEMORY_PROBE = """
import json, sys
from pathlib import Path
import cv2
import numpy as np

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

from facelens.models import registry
from facelens.models.runtime import return_free_memory, using_engine
from facelens.pipeline.embed import EMBED_BATCH_SIZE, call_size
from skimage import data

engine, model_id = sys.argv[1], sys.argv[2]
face = np.ascontiguousarray(data.astronaut()[20:220, 150:330])  # her face, RGB
report = {"facelens_imported_mb": rss()}
__import__(engine)
report["engine_imported_mb"] = rss()
with using_engine(engine):
    embedder = registry.load_embedder(model_id)
    faces = call_size(embedder, EMBED_BATCH_SIZE)
    embedder.embed(np.stack([cv2.resize(face, embedder.input_size)] * faces))
report["faces_a_call"] = faces
return_free_memory()
report["loaded_and_run_mb"] = rss()
print(json.dumps(report))
"""

LOAD_PROBE = """
import json, time
from facelens.models import registry
from facelens.models.runtime import using_engine
from facelens.models.fusion import FusionEmbedder
start = time.process_time()
with using_engine("openvino"):
    embedder = registry.load_embedder()
parts = embedder.parts if isinstance(embedder, FusionEmbedder) else [embedder]
print(json.dumps({"load_cpu_s": time.process_time() - start,
                  "engines": sorted({getattr(p, "engine", "?") for p in parts})}))
"""

EVAL_WITH_FACES_PER_CALL = """
import sys
from facelens.models.openvino_engine import OpenVinoSession
OpenVinoSession.faces_per_call = int(sys.argv.pop(1))
from facelens.cli.main import main
main()
"""


def probe(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its last line of stdout, parsed as JSON."""
    out = subprocess.run(
        [PYTHON, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        env=env or dict(os.environ),
        cwd=REPO,
    )
    parsed: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return parsed


def resident_memory() -> dict[str, Any]:
    report: dict[str, Any] = {}
    for model_id in ("sface-2021dec-int8bq", "dlib-resnet-v1-int8"):
        for engine in ("onnxruntime", "openvino"):
            row = probe(MEMORY_PROBE, engine, model_id)
            row["engine_import_mb"] = row["engine_imported_mb"] - row["facelens_imported_mb"]
            row["model_mb"] = row["loaded_and_run_mb"] - row["engine_imported_mb"]
            report[f"{model_id} on {engine}"] = row
            print("memory", model_id, engine, json.dumps(row), flush=True)
    return report


def loading() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="facelens-ov-cache-") as folder:
        env = dict(os.environ, FACELENS_GRAPH_CACHE=folder)
        report = {
            "nothing_cached_graphs_built_and_compiled": probe(LOAD_PROBE, env=env),
            "graphs_and_compiled_models_cached": probe(LOAD_PROBE, env=env),
        }
    print("loading", json.dumps(report), flush=True)
    return report


def faces_per_call(fold: Path, rounds: int) -> dict[str, Any]:
    report: dict[str, list[dict[str, float]]] = {}
    for _ in range(rounds):
        for size in (2, 4, 8):
            with tempfile.NamedTemporaryFile(suffix=".time") as timing:
                started = time.perf_counter()
                subprocess.run(
                    [
                        "/usr/bin/time",
                        "-f",
                        "%U %S %M",
                        "-o",
                        timing.name,
                        PYTHON,
                        "-c",
                        EVAL_WITH_FACES_PER_CALL,
                        str(size),
                        "eval",
                        "lfw",
                        str(fold),
                        "--json",
                    ],
                    capture_output=True,
                    check=True,
                    cwd=REPO,
                )
                wall = time.perf_counter() - started
                user, system, peak_kb = Path(timing.name).read_text().split()[-3:]
            row = {
                "wall_s": round(wall, 2),
                "cpu_s": round(float(user) + float(system), 2),
                "peak_mb": round(int(peak_kb) / 1024, 1),
            }
            report.setdefault(str(size), []).append(row)
            print("eval lfw, faces a call", size, json.dumps(row), flush=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fold", type=Path, help="an LFW fold folder (pairs.txt and images)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = {
        "load_average_at_start": os.getloadavg(),
        "resident_memory": resident_memory(),
        "loading": loading(),
        "eval_lfw_faces_per_call": faces_per_call(args.fold.resolve(), args.rounds),
        "load_average_at_end": os.getloadavg(),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
