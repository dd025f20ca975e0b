"""Choose an int8 variant of dlib's ResNet without looking at the LFW evaluation pairs.

Every image named in LFW's ``pairs.txt`` (the accuracy evaluation) is left
out. Of the other 2,354 LFW development images (people of the sets whose
photos no pair uses):

* **calibration**: the first ``--calibration`` images (sorted by path) of
  people with one such image (each person once), dlib chips of the central face;
* **selection**: up to 4 images of each person with 2+ such images, up to
  ``--selection`` images; pairs: every same-person pair and 20,000 seeded
  different-person pairs;

and ORL (all 400 faces, every pair). Each variant is written by onnxruntime's
``quantize_static`` (ranges computed once per calibration method and cached)
and compared with float32 on the selection faces: dlib's template with its
mirror image (as the fusion uses it), cosine to float32 (mean, min), and the
fused score (SFace 0.15 + dlib 0.85, as ``fusion-sface-dlib-flip``) on the
pairs: mean and max absolute change, and how many pairs change side at
float32's best threshold on the same pairs. CPU ms per face with its mirror
image, one thread, float32 measured in the same run.

    .venv/bin/python benchmarks/int8_dlib_variants.py [--data ../shared/data] --out DIR
    .venv/bin/python benchmarks/int8_dlib_variants.py --sensitivity   # one block int8 at a time
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.evaluation.lfw import (  # noqa: E402
    _central,
    centred_detection,
    find_images_folder,
    read_pairs,
)
from facelens.models import registry  # noqa: E402
from facelens.models.dlib_format import read_network  # noqa: E402
from facelens.models.dlib_resnet import INPUT_NAME, OUTPUT_NAME, build_onnx  # noqa: E402
from facelens.models.runtime import create_session  # noqa: E402
from facelens.models.spec import verified_model_bytes  # noqa: E402
from facelens.pipeline.embed import embed_crops  # noqa: E402
from facelens.pipeline.faces import FacePipeline  # noqa: E402
from facelens.vectors import unit_rows  # noqa: E402

SFACE_WEIGHT = 0.15
METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


class _Batches(CalibrationDataReader):
    def __init__(self, data: np.ndarray, size: int = 10) -> None:  # equal batches (histograms)
        self._feeds = iter([{INPUT_NAME: data[i : i + size]} for i in range(0, len(data), size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


class _OnnxDlib:
    """dlib's ResNet from an ONNX file, as an embedder (for ``embed_crops``)."""

    dimension = 128

    def __init__(self, path: Path, threads: int = 1) -> None:
        self._session = create_session(path.read_bytes(), threads=threads)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        out = self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(crops)})[0]
        return unit_rows(np.asarray(out, dtype=np.float32))


def lfw_split(root: Path, calibration: int, selection: int) -> tuple[list[Path], list[Path]]:
    """Calibration and selection images of LFW, none of them in ``pairs.txt``."""
    folds = read_pairs(root / "pairs.txt")
    images = find_images_folder(root, None, folds)
    used = {images / p for fold in folds for pair in fold for p in (pair.first, pair.second)}
    people: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(images.glob("*/*.jpg")):
        if path not in used:
            people[path.parent.name].append(path)
    singles = [paths[0] for paths in people.values() if len(paths) == 1]
    several = [p for paths in people.values() if len(paths) >= 2 for p in paths[:4]]
    return singles[:calibration], several[:selection]


def crops_of(paths: list[Path], lfw: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """SFace and dlib crops of each image's face (LFW: the central one), and which images had one."""
    pipeline = FacePipeline()
    sface, dlib, kept = [], [], []
    for index, result in enumerate(
        pipeline.detect_many(
            paths,
            embed=False,
            fallback=centred_detection if lfw else None,
            select=_central if lfw else None,
        )
    ):
        if result.faces:
            sface.append(result.faces[0].part_crops[0])
            dlib.append(result.faces[0].part_crops[1])
            kept.append(index)
    return np.stack(sface), np.stack(dlib), kept


def pairs_of(labels: list[str], impostors: int, seed: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(P, 2)`` and same-person flags: every genuine pair, seeded impostors."""
    n = len(labels)
    genuine = [(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]]
    rng = np.random.default_rng(seed)
    different: set[tuple[int, int]] = set()
    while len(different) < impostors:
        i, j = sorted(int(x) for x in rng.integers(0, n, 2))
        if labels[i] != labels[j]:
            different.add((i, j))
    pairs = np.array(genuine + sorted(different))
    return pairs, np.arange(len(pairs)) < len(genuine)


def all_pairs(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    n = len(labels)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    same = np.array([labels[i] == labels[j] for i, j in pairs])
    return pairs, same


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs."""
    order = np.sort(scores)
    candidates = (order[:-1] + order[1:]) / 2
    accuracy = [
        ((scores > t) == same).mean() for t in candidates[:: max(1, len(candidates) // 4000)]
    ]
    return float(candidates[:: max(1, len(candidates) // 4000)][int(np.argmax(accuracy))])


def fused_scores(sface: np.ndarray, dlib: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    s = (sface[pairs[:, 0]] * sface[pairs[:, 1]]).sum(1)
    d = (dlib[pairs[:, 0]] * dlib[pairs[:, 1]]).sum(1)
    return SFACE_WEIGHT * s + (1 - SFACE_WEIGHT) * d


def weighted_units(model: onnx.ModelProto) -> list[list[str]]:
    """Node names of the first Conv, each residual block's two Convs, and the final MatMul."""
    names = [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul")]
    return [[names[0]]] + [names[i : i + 2] for i in range(1, len(names) - 1, 2)] + [[names[-1]]]


def quantize(
    fp32: Path,
    out: Path,
    calib: np.ndarray,
    cache: Path,
    method: str,
    exclude: list[str],
    include: list[str] | None = None,
    reduce_range: bool = False,
    symmetric: bool = False,
    fmt: str = "qdq",
) -> None:
    quantize_static(
        str(fp32),
        str(out),
        _Batches(calib),
        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
        per_channel=True,
        reduce_range=reduce_range,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=METHODS[method],
        op_types_to_quantize=["Conv", "Gemm", "MatMul"],
        nodes_to_exclude=exclude,
        nodes_to_quantize=include,
        calibration_cache_path=str(cache),
        extra_options={"ActivationSymmetric": symmetric},
    )


def cpu_ms(model: Any, crops: np.ndarray) -> float:
    start = time.process_time()
    embed_crops(model, list(crops), 2, flip=True)
    return 1000 * (time.process_time() - start) / len(crops)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data")
    parser.add_argument("--out", type=Path, default=Path("/tmp/int8_dlib_variants"))
    parser.add_argument("--calibration", type=int, default=300)
    parser.add_argument("--selection", type=int, default=600)
    parser.add_argument("--sensitivity", action="store_true", help="one unit int8 at a time")
    parser.add_argument(
        "--variants", default="", help="comma-separated names to run (all if empty)"
    )
    parser.add_argument("--measure", type=Path, nargs="*", default=[], help="int8 ONNX files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data.resolve()
    crops_file = args.out / "crops.npz"
    if crops_file.is_file():
        stored = np.load(crops_file)
        arrays = {k: stored[k] for k in stored.files}
    else:
        calib_paths, select_paths = lfw_split(data / "lfw", args.calibration, args.selection)
        _, calib, _ = crops_of(calib_paths, lfw=True)
        s_sface, s_dlib, s_kept = crops_of(select_paths, lfw=True)
        orl_paths = sorted((data / "orl_att_faces" / "att_faces").glob("s*/*.pgm"))
        o_sface, o_dlib, o_kept = crops_of(orl_paths, lfw=False)
        arrays = {
            "calib": calib,
            "lfw_sface": s_sface,
            "lfw_dlib": s_dlib,
            "lfw_labels": np.array([select_paths[i].parent.name for i in s_kept]),
            "orl_sface": o_sface,
            "orl_dlib": o_dlib,
            "orl_labels": np.array([orl_paths[i].parent.name for i in o_kept]),
        }
        np.savez(crops_file, **arrays)  # type: ignore[arg-type]
    calib = arrays["calib"]
    print(
        f"calibration {len(calib)} LFW chips; selection {len(arrays['lfw_dlib'])} LFW faces, "
        f"{len(arrays['orl_dlib'])} ORL faces",
        flush=True,
    )
    model = build_onnx(read_network(verified_model_bytes(registry.get_spec("dlib-resnet-v1"))))
    for index, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{index}"
    fp32 = args.out / "dlib-fp32.onnx"
    onnx.save(model, fp32)
    units = weighted_units(model)

    sface_model = registry.load_embedder(registry.SFACE_EMBEDDER)
    sets = {}
    for name in ("lfw", "orl"):
        labels = [str(x) for x in arrays[f"{name}_labels"]]
        pairs, same = pairs_of(labels, 20000) if name == "lfw" else all_pairs(labels)
        sface = embed_crops(sface_model, list(arrays[f"{name}_sface"]), 2)
        sets[name] = {"dlib": arrays[f"{name}_dlib"], "sface": sface, "pairs": pairs, "same": same}
    reference = _OnnxDlib(fp32)
    for s in sets.values():
        s["ref"] = embed_crops(reference, list(s["dlib"]), 2, flip=True)  # type: ignore[arg-type]
        s["ref_scores"] = fused_scores(s["sface"], s["ref"], s["pairs"])
        s["threshold"] = best_threshold(s["ref_scores"], s["same"])

    def measure(path: Path, timing: bool = True) -> dict[str, float]:
        candidate = _OnnxDlib(path)
        row: dict[str, float] = {}
        for name, s in sets.items():
            dlib = embed_crops(candidate, list(s["dlib"]), 2, flip=True)  # type: ignore[arg-type]
            cos = (dlib * s["ref"]).sum(1)
            scores = fused_scores(s["sface"], dlib, s["pairs"])
            delta = np.abs(scores - s["ref_scores"])
            flips = ((scores > s["threshold"]) != (s["ref_scores"] > s["threshold"])).sum()
            row |= {
                f"{name}_cos_mean": float(cos.mean()),
                f"{name}_cos_min": float(cos.min()),
                f"{name}_dscore_mean": float(delta.mean()),
                f"{name}_dscore_max": float(delta.max()),
                f"{name}_side_changes": int(flips),
                f"{name}_errors_vs_float": int(((scores > s["threshold"]) != s["same"]).sum())
                - int(((s["ref_scores"] > s["threshold"]) != s["same"]).sum()),
            }
        if timing:
            probe = sets["lfw"]["dlib"][:200]
            row["cpu_ms_fp32"] = min(cpu_ms(reference, probe) for _ in range(2))
            row["cpu_ms"] = min(cpu_ms(candidate, probe) for _ in range(2))
        return row

    report: dict[str, dict[str, float]] = {}
    results = args.out / ("sensitivity.json" if args.sensitivity else "variants.json")
    if results.is_file():
        report = json.loads(results.read_text())

    def run(name: str, timing: bool = True, **kw: Any) -> None:
        if (args.variants and name not in args.variants.split(",")) or name in report:
            return
        method = kw.pop("method", "minmax")
        path = args.out / f"{name}.onnx"
        cache = args.out / f"ranges-{method}.json"
        quantize(fp32, path, calib, cache, method, **kw)
        report[name] = {"bytes": path.stat().st_size} | measure(path, timing)
        print(name, json.dumps(report[name]), flush=True)
        results.write_text(json.dumps(report, indent=1))

    if args.sensitivity:
        for index, unit in enumerate(units):
            run(f"only_unit{index:02d}", timing=False, exclude=[], include=unit)
        return 0
    for shipped in args.measure:  # int8 files made elsewhere (e.g. an earlier shipped one)
        report[shipped.stem] = {"bytes": shipped.stat().st_size} | measure(shipped)
        print(shipped.stem, json.dumps(report[shipped.stem]), flush=True)
        results.write_text(json.dumps(report, indent=1))
    run("minmax", exclude=[])
    run("entropy", exclude=[], method="entropy")
    run("percentile", exclude=[], method="percentile")
    run("minmax_reduce_range", exclude=[], reduce_range=True)
    run("minmax_symmetric", exclude=[], symmetric=True)
    run("minmax_qoperator", exclude=[], fmt="qoperator")
    sensitivity_file = args.out / "sensitivity.json"
    if sensitivity_file.is_file():
        sens = json.loads(sensitivity_file.read_text())
        ranked = sorted(sens, key=lambda k: sens[k]["lfw_cos_mean"])
        for keep in (1, 2, 3, 4):
            exclude = [n for k in ranked[:keep] for n in units[int(k[-2:])]]
            run(f"minmax_float{keep}", exclude=exclude)
    return 0


if __name__ == "__main__":
    sys.exit(main())
