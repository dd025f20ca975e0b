"""Expression accuracy and macro-F1 of the mini-Xception model on CK+48 and on Yale's expressions.

* **CK+48** (``ckplus48/CK+48``, 981 grey 48x48 crops of posed expressions,
  118 subjects): the crops are already cut and registered, so they go to the
  model directly, resized 48 -> 64 (no detection). The folders map to the
  model's classes one to one (anger -> angry, sadness -> sad, ...), except
  ``contempt``, which the model has no class for: it is left out of the scores
  and what the model calls it is shown apart. CK+48 has no neutral images.
  A second row runs the full photo path on the same crops (upscaled to 192 px,
  YuNet, the expression template crop) to show what detection and cropping cost.
* **Yale** (``yalefaces``, 15 people, 320x243 grey): ``happy`` -> happy,
  ``sad`` -> sad, ``surprised`` -> surprise, ``normal`` -> neutral; ``sleepy``
  and ``wink`` have no class and are shown apart. Faces are found with YuNet
  and cut with the expression template; a photo where no face is found counts
  as wrong.

Scores: accuracy and macro-F1 over the classes present in the labels (a
prediction of any other class, e.g. neutral on CK+48, counts as wrong).
Age and gender: none of the development data carries age or gender labels
(``../shared/data/README.md``), so they are not scored here.

    .venv/bin/python benchmarks/expression_accuracy.py [--data ../shared/data] [--json]
    .venv/bin/python benchmarks/expression_accuracy.py --measure-template   # crops.EXPRESSION_TEMPLATE
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelens.analysis.analyzer import AttributeAnalyzer
from facelens.analysis.crops import expression_crop
from facelens.io.image import load_image
from facelens.models import registry
from facelens.models.attributes import EXPRESSIONS
from facelens.pipeline.analyzer import FaceAnalyzer

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


def run_ckplus(root: Path, attributes: AttributeAnalyzer, faces: FaceAnalyzer) -> dict[str, Any]:
    items = ck_images(root)
    greys = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for _, p in items]
    direct = attributes.expression_scores_of_crops(greys).argmax(axis=1)
    detected: list[str] = []
    for grey in greys:
        image = upscaled_rgb(grey)
        found = faces.detector.detect(image)
        if not found:
            detected.append("no face")
            continue
        best = max(found, key=lambda d: d.score)
        crop = expression_crop(image, best.landmarks)[None]
        detected.append(EXPRESSIONS[int(attributes.expression_model.predict(crop).argmax())])
    results: dict[str, Any] = {}
    for name, predicted in (
        ("direct", [EXPRESSIONS[i] for i in direct]),
        ("detected", detected),
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
        result["no_face"] = sum(p == "no face" for p in predicted)
        results[name] = result
    results["subjects"] = len({p.name.split("_")[0] for _, p in items})
    return results


def run_yale(root: Path, attributes: AttributeAnalyzer, faces: FaceAnalyzer) -> dict[str, Any]:
    truth, predicted, unmapped = [], [], {c: Counter[str]() for c in YALE_UNMAPPED}
    no_face = 0
    for path in sorted(root.glob("subject*.*")):
        condition = path.suffix.lstrip(".")
        if condition not in YALE_CLASSES and condition not in YALE_UNMAPPED:
            continue
        image = load_image(path).pixels
        found = faces.analyze(image, embed=False)
        label = "no face"
        if found:
            label = EXPRESSIONS[int(attributes.expression_scores(image, found[:1])[0].argmax())]
        else:
            no_face += 1
        if condition in YALE_CLASSES:
            truth.append(YALE_CLASSES[condition])
            predicted.append(label)
        else:
            unmapped[condition][label] += 1
    result = scores(truth, predicted)
    result["unmapped"] = {k: dict(v.most_common()) for k, v in unmapped.items()}
    result["no_face"] = no_face
    return result


def measure_template(root: Path, faces: FaceAnalyzer) -> None:
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


def speed(attributes: AttributeAnalyzer, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per face of each model on batches of real-looking crops (median of runs)."""
    import time

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (64, 64, 64), dtype=np.uint8)
    rgb = rng.integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
    timings: dict[str, float] = {}
    for name, run, count in (
        ("expression_ms_per_face", lambda: attributes.expression_model.predict(grey), 64),
        ("age_gender_ms_per_face", lambda: attributes.age_gender_model.predict(rgb), 16),
    ):
        run()  # warm up
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            runs.append((time.perf_counter() - started) * 1000 / count)
        timings[name] = float(np.median(runs))
    timings["load_average_1min"] = os.getloadavg()[0]
    return timings


def markdown(ck: dict[str, Any] | None, yale: dict[str, Any] | None) -> str:
    lines = [
        "| data | path | images | accuracy | macro-F1 | per-class F1 |",
        "|---|---|---|---|---|---|",
    ]

    def row(data: str, path: str, r: dict[str, Any]) -> None:
        per = ", ".join(f"{k} {v['f1']:.2f}" for k, v in r["per_class"].items())
        lines.append(
            f"| {data} | {path} | {r['images']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {per} |"
        )

    if ck:
        row("CK+48 (6 classes)", "crop resized 48->64, no detection", ck["direct"])
        row("CK+48 (6 classes)", "upscaled, YuNet, template crop", ck["detected"])
    if yale:
        row("Yale (4 classes)", "YuNet, template crop", yale)
    for name, r in (("CK+48 direct", ck and ck["direct"]), ("Yale", yale)):
        if r:
            lines.append("")
            lines.append(
                f"{name}, what each true class was called: "
                + "; ".join(f"{t} -> {c}" for t, c in r["confusion"].items())
            )
            lines.append(
                f"{name}, classes the model lacks: "
                + "; ".join(f"{t} -> {c}" for t, c in r["unmapped"].items())
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--measure-template", action="store_true")
    args = parser.parse_args()
    faces = FaceAnalyzer()
    ck_root = args.data / "ckplus48/CK+48"
    yale_root = args.data / "yalefaces/yalefaces"
    if args.measure_template:
        measure_template(ck_root, faces)
        return 0
    attributes = AttributeAnalyzer(age_gender=False)
    ck = run_ckplus(ck_root, attributes, faces) if ck_root.is_dir() else None
    yale = run_yale(yale_root, attributes, faces) if yale_root.is_dir() else None
    timings = speed(attributes)
    report = {
        "speed": timings,
        "model": registry.get_spec("mini-xception-fer2013").describe(),
        "ckplus48": ck,
        "yale": yale,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    out = REPO / "benchmarks/results/expression_accuracy.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2) if args.json else markdown(ck, yale))
    if not args.json:
        print(
            f"\nspeed: expression {timings['expression_ms_per_face']:.2f} ms/face (batch 64), "
            f"age/gender {timings['age_gender_ms_per_face']:.1f} ms/face (batch 16); "
            f"load average {timings['load_average_1min']:.1f} on {os.cpu_count()} cores"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
