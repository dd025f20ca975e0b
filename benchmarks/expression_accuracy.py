"""Expression accuracy, calibration and speed of every expression model, side by side.

Every score is through the whole pipeline as ``facelens analyze`` runs it:
decode, YuNet on the image enlarged up to 2x, the largest face, the model's
template crop; where no face is found in a small image (<= 128 px) the
whole image is taken as the face (:mod:`facelens.analysis.tight`). A photo
with no face at all counts as wrong.

* **FER2013 validation split**: the seeded 10 % of ``fer2013_train`` that
  ``scripts/expression_data.py`` holds back (2,872 images, 48x48 grey, all 7
  classes); facelens's own model never trained on it. mini-Xception's
  authors trained on FER2013's training split, so it has seen these images:
  its score here is optimistic.
* **CK+48** (``ckplus48/CK+48``, 981 grey 48x48 crops of posed expressions,
  118 subjects): the folders map to the classes one to one (anger -> angry,
  sadness -> sad, ...), except ``contempt``, which has no class: left out of
  the scores and shown apart (927 images in 6 classes scored). A second row
  gives the crop resized to the model's input without detection.
* **Yale** (``yalefaces``, 15 people, 320x243 grey): ``happy`` -> happy,
  ``sad`` -> sad, ``surprised`` -> surprise, ``normal`` -> neutral; ``sleepy``
  and ``wink`` have no class and are shown apart.

Scores: accuracy and macro-F1 over the classes present in the labels (a
prediction of any other class counts as wrong), per-class recall and F1, the
confusions among happy, neutral and surprise, and the expected calibration
error (top label, 15 bins) on the FER2013 split. Speed: milliseconds per
face of each expression model on 2 threads of each CPU engine that runs it
(``--engines``), batches of 64 and of 1. Age and gender are not scored: no
development data carries such labels.

    .venv/bin/python benchmarks/expression_accuracy.py [--data ../shared/data] [--json]
    .venv/bin/python benchmarks/expression_accuracy.py --measure-template   # crops.EXPRESSION_TEMPLATE
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelens import settings
from facelens.analysis.analyzer import EXPRESSION_MODELS, AttributeAnalyzer
from facelens.analysis.tight import attribute_faces
from facelens.models import registry
from facelens.models.attributes import EXPRESSIONS
from facelens.models.runtime import using_engine
from facelens.pipeline.faces import FacePipeline
from facelens.types import Face, ImageArray

REPO = Path(__file__).resolve().parent.parent
CK_CLASSES = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}
CK_UNMAPPED = ("contempt",)
YALE_CLASSES = {"happy": "happy", "sad": "sad", "surprised": "surprise", "normal": "neutral"}
YALE_UNMAPPED = ("sleepy", "wink")
UPSCALE = 192  # CK+48 crops are upscaled to this side (and padded) before detection
PAD = 96


def scores(truth: list[str], predicted: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the classes in ``truth``, per-class F1 and the confusion counts."""
    classes = sorted(set(truth), key=EXPRESSIONS.index)
    per_class = {}
    for label in classes:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"f1": f1, "recall": recall, "support": tp + fn}
    confusion = {
        label: dict(
            Counter(p for t, p in zip(truth, predicted, strict=True) if t == label).most_common()
        )
        for label in classes
    }
    return {
        "images": len(truth),
        "accuracy": float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])),
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "confusion": confusion,
    }


def ck_images(root: Path) -> list[tuple[str, Path]]:
    return [
        (folder.name, path)
        for folder in sorted(root.iterdir())
        for path in sorted(folder.glob("*.png"))
    ]


def upscaled_rgb(grey: np.ndarray) -> np.ndarray:
    """A CK+48 crop upscaled to 192 px and padded by 96 px of black, as RGB (for YuNet)."""
    big = cv2.resize(grey, (UPSCALE, UPSCALE), interpolation=cv2.INTER_CUBIC)
    padded = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=0)
    return np.ascontiguousarray(np.repeat(padded[:, :, None], 3, axis=2))


PipelineFace = tuple[ImageArray, list[Face]]
"""An image's pixels and the one face ``facelens analyze`` reads first (none: no face)."""


def pipeline_faces(paths: list[Path], faces: FacePipeline) -> list[PipelineFace]:
    """Each image as ``facelens analyze`` sees it: the largest face, or the whole image."""
    found: list[PipelineFace] = []
    for result in faces.detect_many(paths, embed=False, keep_images=True):
        if result.image is None:
            raise SystemExit(f"{result.source}: {result.error}")
        chosen, _ = attribute_faces(faces, result.image, result.faces)
        found.append((result.image.pixels, chosen[:1]))
    return found


def predict(attributes: AttributeAnalyzer, items: list[PipelineFace]) -> np.ndarray:
    """``(N, 7)`` probabilities per image (a row of NaN where no face was found)."""
    rows = []
    for pixels, chosen in items:
        rows.append(
            attributes.expression_scores(pixels, chosen)[0]
            if chosen
            else np.full(len(EXPRESSIONS), np.nan, dtype=np.float32)
        )
    return np.array(rows)


def labels_of(probabilities: np.ndarray) -> list[str]:
    return [
        "no face" if np.isnan(row).any() else EXPRESSIONS[int(row.argmax())]
        for row in probabilities
    ]


def calibration_error(probabilities: np.ndarray, truth: list[str], bins: int = 15) -> float:
    """Top-label expected calibration error (15 equal-width bins) over rows with a face."""
    keep = ~np.isnan(probabilities).any(axis=1)
    probs = probabilities[keep]
    labels = np.array([EXPRESSIONS.index(t) for t, k in zip(truth, keep, strict=True) if k])
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    total = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def run_fer(
    data: Path, faces: FacePipeline, models: dict[str, AttributeAnalyzer]
) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "scripts"))
    from expression_data import fer_items, fer_split

    items = fer_items(data)
    mask = fer_split([label for label, _ in items])
    held = [item for item, keep in zip(items, mask, strict=True) if keep]
    truth = [label for label, _ in held]
    prepared = pipeline_faces([p for _, p in held], faces)
    results: dict[str, Any] = {"images": len(held), "whole_image": 0}
    results["whole_image"] = sum(bool(chosen) and chosen[0].score == 0.0 for _, chosen in prepared)
    for model_id, attributes in models.items():
        probabilities = predict(attributes, prepared)
        result = scores(truth, labels_of(probabilities))
        result["ece"] = calibration_error(probabilities, truth)
        results[model_id] = result
    return results


def run_ckplus(
    root: Path, faces: FacePipeline, models: dict[str, AttributeAnalyzer]
) -> dict[str, Any]:
    items = [(f, p) for f, p in ck_images(root)]
    prepared = pipeline_faces([p for _, p in items], faces)
    greys = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for _, p in items]
    results: dict[str, Any] = {
        "subjects": len({p.name.split("_")[0] for _, p in items}),
        "whole_image": sum(bool(c) and c[0].score == 0.0 for _, c in prepared),
    }
    for model_id, attributes in models.items():
        direct = [EXPRESSIONS[i] for i in attributes.expression_scores_of_crops(greys).argmax(1)]
        per_path = {}
        for name, predicted in (
            ("pipeline", labels_of(predict(attributes, prepared))),
            ("direct", direct),
        ):
            kept = [
                (CK_CLASSES[f], p)
                for (f, _), p in zip(items, predicted, strict=True)
                if f in CK_CLASSES
            ]
            result = scores([t for t, _ in kept], [p for _, p in kept])
            result["unmapped"] = {
                folder: dict(
                    Counter(
                        p for (f, _), p in zip(items, predicted, strict=True) if f == folder
                    ).most_common()
                )
                for folder in CK_UNMAPPED
            }
            per_path[name] = result
        results[model_id] = per_path
    return results


def run_yale(
    root: Path, faces: FacePipeline, models: dict[str, AttributeAnalyzer]
) -> dict[str, Any]:
    paths = [
        p
        for p in sorted(root.glob("subject*.*"))
        if p.suffix.lstrip(".") in YALE_CLASSES or p.suffix.lstrip(".") in YALE_UNMAPPED
    ]
    prepared = pipeline_faces(paths, faces)
    results: dict[str, Any] = {"no_face": sum(not c for _, c in prepared)}
    for model_id, attributes in models.items():
        predicted = labels_of(predict(attributes, prepared))
        truth, kept, unmapped = [], [], {c: Counter[str]() for c in YALE_UNMAPPED}
        for path, label in zip(paths, predicted, strict=True):
            condition = path.suffix.lstrip(".")
            if condition in YALE_CLASSES:
                truth.append(YALE_CLASSES[condition])
                kept.append(label)
            else:
                unmapped[condition][label] += 1
        result = scores(truth, kept)
        result["unmapped"] = {k: dict(v.most_common()) for k, v in unmapped.items()}
        results[model_id] = result
    return results


def measure_template(root: Path, faces: FacePipeline) -> None:
    """Mean YuNet landmarks over every 5th CK+48 crop, as fractions of the crop side."""
    points = []
    for _, path in ck_images(root)[::5]:
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        found = faces.detector.detect(upscaled_rgb(grey))
        if found:
            best = max(found, key=lambda d: d.score)
            points.append((best.landmarks - PAD) / UPSCALE)
    mean = np.mean(points, axis=0)
    mirror = mean[[1, 0, 2, 4, 3]].copy()  # the mirror image: left and right swap
    mirror[:, 0] = 1 - mirror[:, 0]
    mirrored = (mean + mirror) / 2
    print(f"{len(points)} crops; mean landmarks (x, y):\n{np.round(mean, 4)}")
    print(f"mirrored to symmetry:\n{np.round(mirrored, 4)}")


class OnEngine(AttributeAnalyzer):
    """An analyzer whose expression model is the one loaded on CPU ``engine`` (the registry
    looks models up on every call, by the engine in force)."""

    def __init__(self, engine: str, **options: Any) -> None:
        super().__init__(**options)
        self.engine = engine

    @property
    def expression_model(self) -> Any:
        with using_engine(self.engine):
            return AttributeAnalyzer.expression_model.fget(self)  # type: ignore[attr-defined]


def load_models(
    model_ids: list[str], engines: list[str]
) -> tuple[dict[str, AttributeAnalyzer], dict[str, Any]]:
    """Each expression model loaded on each engine that takes it, by label (the model's id,
    then ``"ID on ENGINE"`` for the engines after the first), and each label's spec."""
    models: dict[str, AttributeAnalyzer] = {}
    specs: dict[str, Any] = {}
    for model_id in model_ids:
        seen: set[str] = set()
        for engine in engines:
            attributes = OnEngine(engine, age_gender=False, threads=2, expression_model=model_id)
            running = attributes.expression_model.engine  # loads it, on this engine
            if running in seen:
                continue
            seen.add(running)
            label = model_id if len(seen) == 1 else f"{model_id} on {running}"
            models[label] = attributes
            specs[label] = registry.get_spec(model_id).describe() | {"engine": running}
    return models, specs


def speed(attributes: AttributeAnalyzer, repeats: int = 7) -> dict[str, Any]:
    """Milliseconds per face of the expression model, batches of 64 and of 1 (median of runs)."""
    rng = np.random.default_rng(0)
    model = attributes.expression_model
    side = model.input_size[0]
    timings: dict[str, Any] = {"engine": model.engine}
    for name, count in (("ms_per_face_batch64", 64), ("ms_per_face_batch1", 1)):
        crops = rng.integers(0, 256, (count, side, side), dtype=np.uint8)

        def run(batch: np.ndarray = crops) -> Any:
            return model.predict(batch)

        run()  # warm up
        runs = []
        for _ in range(repeats * (8 if count == 1 else 1)):
            started = time.perf_counter()
            run()
            runs.append((time.perf_counter() - started) * 1000 / count)
        timings[name] = float(np.median(runs))
    timings["load_average_1min"] = os.getloadavg()[0]
    return timings


TRIO = ("happy", "neutral", "surprise")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| data | model | images | accuracy | macro-F1 | per-class recall |",
        "|---|---|---|---|---|---|",
    ]
    sets = []
    if report["fer_validation"]:
        fer = report["fer_validation"]
        sets.append(("FER2013 validation (7 classes)", {m: fer[m] for m in report["models"]}))
    if report["ckplus48"]:
        ck = report["ckplus48"]
        sets.append(
            ("CK+48 (6 classes), pipeline", {m: ck[m]["pipeline"] for m in report["models"]})
        )
        sets.append(
            ("CK+48 (6 classes), crop resized", {m: ck[m]["direct"] for m in report["models"]})
        )
    if report["yale"]:
        sets.append(("Yale (4 classes)", {m: report["yale"][m] for m in report["models"]}))
    for data, by_model in sets:
        for model_id, r in by_model.items():
            per = ", ".join(f"{k} {v['recall']:.2f}" for k, v in r["per_class"].items())
            lines.append(
                f"| {data} | `{model_id}` | {r['images']} | {r['accuracy']:.3f} | "
                f"{r['macro_f1']:.3f} | {per} |"
            )
    lines.append("")
    for data, by_model in sets:
        for model_id, r in by_model.items():
            trio = "; ".join(
                f"{t} -> " + ", ".join(f"{p} {r['confusion'][t].get(p, 0)}" for p in TRIO)
                for t in TRIO
                if t in r["confusion"]
            )
            if trio:
                lines.append(f"- {data}, `{model_id}`, happy/neutral/surprise: {trio}")
    lines.append("")
    for data, by_model in sets:
        for model_id, r in by_model.items():
            lines.append(
                f"- {data}, `{model_id}`, what each class was called: "
                + "; ".join(f"{t} -> {c}" for t, c in r["confusion"].items())
            )
    if report["fer_validation"]:
        fer = report["fer_validation"]
        lines.append("")
        for model_id in report["models"]:
            lines.append(
                f"- ECE (FER2013 validation, top label, 15 bins) `{model_id}`: {fer[model_id]['ece']:.3f}"
            )
    lines.append("")
    for model_id, t in report["speed"].items():
        lines.append(
            f"- speed `{model_id}`: {t['ms_per_face_batch64']:.2f} ms/face (batch 64), "
            f"{t['ms_per_face_batch1']:.2f} ms/face (batch 1), 2 threads on {t['engine']}, "
            f"load average {t['load_average_1min']:.1f} on {os.cpu_count()} cores"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--measure-template", action="store_true")
    parser.add_argument(
        "--models", default=",".join(EXPRESSION_MODELS), help="comma-separated expression model ids"
    )
    parser.add_argument(
        "--engines",
        default=",".join(settings.CPU_ENGINES),
        help="comma-separated CPU engines to run each model on (a model an engine does not "
        "take, e.g. mini-Xception on OpenVINO, is run once)",
    )
    args = parser.parse_args()
    faces = FacePipeline()
    ck_root = args.data / "ckplus48/CK+48"
    yale_root = args.data / "yalefaces/yalefaces"
    fer_root = args.data / "fer2013_train"
    if args.measure_template:
        measure_template(ck_root, faces)
        return 0
    models, specs = load_models(args.models.split(","), args.engines.split(","))
    report: dict[str, Any] = {
        "models": list(models),
        "specs": specs,
        "fer_validation": run_fer(fer_root, faces, models) if fer_root.is_dir() else None,
        "ckplus48": run_ckplus(ck_root, faces, models) if ck_root.is_dir() else None,
        "yale": run_yale(yale_root, faces, models) if yale_root.is_dir() else None,
        "speed": {m: speed(a) for m, a in models.items()},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    out = REPO / "benchmarks/results/expression_accuracy.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
