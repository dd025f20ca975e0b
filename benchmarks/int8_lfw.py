"""LFW pairs accuracy of the default fusion with dlib's ResNet in float32 and in int8 variants.

Every image of the 5 folds of ``pairs.txt`` is decoded, detected and aligned
once by the pipeline (central face, centred-crop fallback, as ``facelens eval
lfw`` does); the SFace and dlib crops are kept. SFace's templates are made
once; dlib's (with the mirror image, as the fusion does) once per dlib model:
the float32 graph and each int8 file given. Each fusion (SFace 0.15 + dlib
0.85) is then scored by the LFW protocol (threshold from the other 4 folds),
and each int8 model's templates are compared with float32's (cosine).

    .venv/bin/python benchmarks/int8_lfw.py [--data ../shared/data/lfw] INT8.onnx ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.evaluation.lfw import (  # noqa: E402
    _central,
    centred_detection,
    evaluate_pairs,
    find_images_folder,
    read_pairs,
)
from facelens.models import registry  # noqa: E402
from facelens.models.dlib_resnet import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from facelens.models.runtime import create_session  # noqa: E402
from facelens.pipeline.embed import embed_crops  # noqa: E402
from facelens.pipeline.faces import FacePipeline  # noqa: E402
from facelens.vectors import unit_rows  # noqa: E402


class _OnnxDlib:
    """dlib's ResNet from an ONNX file, as an embedder (for ``embed_crops``)."""

    dimension = 128

    def __init__(self, path: Path) -> None:
        self._session = create_session(path.read_bytes())

    def embed(self, crops: np.ndarray) -> np.ndarray:
        out = self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(crops)})[0]
        return unit_rows(np.asarray(out, dtype=np.float32))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="int8 dlib ONNX files")
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/lfw")
    parser.add_argument("--sface-weight", type=float, default=0.15)
    parser.add_argument("--crops", type=Path, default=Path("/tmp/int8_lfw_crops.npz"))
    args = parser.parse_args()
    root = args.data.resolve()
    folds = read_pairs(root / "pairs.txt")
    images = find_images_folder(root, None, folds)
    unique = sorted({p for fold in folds for pair in fold for p in (pair.first, pair.second)})
    if args.crops.is_file():
        stored = np.load(args.crops)
        sface_crops, dlib_crops = stored["sface"], stored["dlib"]
    else:
        pipeline = FacePipeline()
        sface_list, dlib_list = [], []
        for result in pipeline.detect_many(
            [images / p for p in unique], embed=False, fallback=centred_detection, select=_central
        ):
            sface_list.append(result.faces[0].part_crops[0])
            dlib_list.append(result.faces[0].part_crops[1])
        sface_crops, dlib_crops = np.stack(sface_list), np.stack(dlib_list)
        np.savez(args.crops, sface=sface_crops, dlib=dlib_crops)
    sface = embed_crops(registry.load_embedder(registry.SFACE_EMBEDDER), list(sface_crops), 2)
    dlib_models: dict[str, object] = {"float32": registry.load_embedder("dlib-resnet-v1")}
    for path in args.models:
        dlib_models[path.name] = _OnnxDlib(path)
    w = args.sface_weight
    reference = None
    report = {}
    for name, model in dlib_models.items():
        start = time.process_time()
        dlib = embed_crops(model, list(dlib_crops), 2, flip=True)  # type: ignore[arg-type]
        seconds = time.process_time() - start
        fused = np.concatenate([sface * np.sqrt(w), dlib * np.sqrt(1 - w)], axis=1)
        templates = {str(images / p): fused[i] for i, p in enumerate(unique)}
        accuracies, _ = evaluate_pairs(folds, images, templates)
        row = {
            "accuracy_mean": float(np.mean(accuracies)),
            "accuracy_std": float(np.std(accuracies)),
            "fold_accuracies": accuracies,
            "cpu_ms_per_face_with_mirror": 1000 * seconds / len(dlib_crops),
        }
        if reference is None:
            reference = dlib
        else:
            cosines = (dlib * reference).sum(1)
            row["cosine_min"] = float(cosines.min())
            row["cosine_mean"] = float(cosines.mean())
        report[name] = row
        print(name, json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
