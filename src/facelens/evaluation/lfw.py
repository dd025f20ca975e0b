"""The LFW pairs protocol on any folder that holds a ``pairs.txt``.

``pairs.txt`` starts with ``<folds> <pairs per class>``; each fold then lists
that many same-person lines (``name n1 n2``) and that many different-person
lines (``name1 n1 name2 n2``). Images are ``<images>/<name>/<name>_<nnnn>.jpg``.
For each fold, the threshold that maximises accuracy on the *other* folds is
applied to it; the mean and standard deviation over folds are reported. A
file with a single fold has no other fold: its threshold is picked on the
fold itself (an optimistic figure), and the result says so.

No image is skipped: when the detector finds no face, a crop at the place
where deep-funneled LFW images hold the face is used instead, and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import InputError
from facelens.evaluation.metrics import accuracy_at, best_accuracy_threshold
from facelens.io.image import DecodedImage
from facelens.pipeline.faces import FacePipeline, ImageFaces
from facelens.types import Box, Detection, Face

__all__ = [
    "EVAL_WORKERS",
    "Pair",
    "central_face",
    "centred_detection",
    "embed_lfw_images",
    "evaluate_pairs",
    "find_images_folder",
    "people_images",
    "read_pairs",
    "read_people",
    "run_lfw",
]

IMAGE_FOLDERS = ("", "images_deepfunneled", "lfw-deepfunneled", "lfw_funneled", "lfw")

# Where the 5 landmarks of the face of interest sit in a deep-funneled 250x250
# LFW image, as fractions of width and height (the median of YuNet's landmarks
# on the LFW development images, measured by benchmarks/lfw_landmarks.py).
CENTRED_LANDMARKS = np.array(
    [[0.4149, 0.4532], [0.5883, 0.4533], [0.5025, 0.5505], [0.4300, 0.6387], [0.5750, 0.6387]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Pair:
    first: str  # path relative to the images folder
    second: str
    same: bool


@dataclass
class LfwResult:
    accuracies: list[float]
    thresholds: list[float]
    images: int
    fallbacks: int
    fallback_sources: list[str] = field(default_factory=list)
    threshold_on_same_fold: bool = False  # one fold only: its threshold was picked on itself

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy_mean": float(np.mean(self.accuracies)),
            "accuracy_std": float(np.std(self.accuracies)),
            "folds": len(self.accuracies),
            "fold_accuracies": self.accuracies,
            "thresholds": self.thresholds,
            "images": self.images,
            "fallbacks": self.fallbacks,
            "fallback_sources": self.fallback_sources,
            "threshold_on_same_fold": self.threshold_on_same_fold,
        }


def read_pairs(pairs_file: Path) -> list[list[Pair]]:
    """The folds of an LFW-format pairs file."""
    lines = [line.split() for line in pairs_file.read_text().splitlines() if line.strip()]
    if not lines or len(lines[0]) != 2:
        raise InputError(f"{pairs_file}: the first line must be '<folds> <pairs per class>'")
    folds, per_class = int(lines[0][0]), int(lines[0][1])
    if folds < 1 or per_class < 1:
        raise InputError(f"{pairs_file}: needs at least one fold of at least one pair per class")
    body = lines[1:]
    if len(body) != folds * 2 * per_class:
        raise InputError(
            f"{pairs_file}: expected {folds} folds x {2 * per_class} pairs = "
            f"{folds * 2 * per_class} lines, found {len(body)}"
        )
    result = []
    for fold in range(folds):
        chunk = body[fold * 2 * per_class : (fold + 1) * 2 * per_class]
        result.append([_pair(fields) for fields in chunk])
    return result


def _pair(fields: list[str]) -> Pair:
    if len(fields) == 3:
        name, first, second = fields
        return Pair(_image(name, first), _image(name, second), True)
    if len(fields) == 4:
        return Pair(_image(fields[0], fields[1]), _image(fields[2], fields[3]), False)
    raise InputError(f"a pairs line needs 3 or 4 fields, got {' '.join(fields)!r}")


def _image(name: str, number: str | int) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def find_images_folder(root: Path, subdir: str | None, pairs: list[list[Pair]]) -> Path:
    """The folder under ``root`` that holds the pairs' images."""
    candidates = [subdir] if subdir is not None else list(IMAGE_FOLDERS)
    probe = pairs[0][0].first
    for candidate in candidates:
        folder = root / candidate
        if (folder / probe).is_file():
            return folder
    raise InputError(
        f"{root}: cannot find {probe} under any of {', '.join(repr(c) for c in candidates)}; "
        "name the images folder with --images"
    )


def centred_detection(image: DecodedImage) -> list[Detection]:
    """The fallback: a face where deep-funneled LFW images put it."""
    size = np.array([image.width, image.height], dtype=np.float32)
    landmarks = CENTRED_LANDMARKS * size
    box = Box(0.25 * image.width, 0.25 * image.height, 0.5 * image.width, 0.5 * image.height)
    return [Detection(box, landmarks.astype(np.float32), 0.0)]


def central_face(faces: list[Face], width: int, height: int) -> Face:
    """The face nearest the image centre (LFW's convention for the labelled person)."""
    centre = np.array([width / 2, height / 2])
    return min(faces, key=lambda f: float(np.linalg.norm(np.array(f.box.center) - centre)))


def _central(result: ImageFaces) -> list[Face]:
    """Only the labelled face is embedded: the protocol scores no other."""
    return [central_face(result.faces, result.width, result.height)] if result.faces else []


EVAL_WORKERS = 2
"""Worker threads of :func:`run_lfw` (``facelens eval lfw``). They decode, detect and align
in parallel but embed one chunk at a time (the embedders use every core themselves): two
free workers peaked 25 MB higher (308 MB on one fold), one worker alone left a core idle
(wall time 1.2x); docs/benchmarks.md, "Session 7: a quiet machine"."""


def embed_lfw_images(
    pipeline: FacePipeline,
    paths: Iterable[Path],
    on_done: Callable[[], None] | None = None,
    workers: int | None = None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Template of the labelled face of each image, and the images that needed the fallback.

    ``workers``: threads for ``detect_many`` (default: one per core); they embed one chunk
    at a time.
    """
    templates: dict[str, np.ndarray] = {}
    fallbacks: list[str] = []
    for result in pipeline.detect_many(
        paths,
        fallback=centred_detection,
        select=_central,
        workers=workers,
        embed_one_chunk_at_a_time=True,
    ):
        if result.error is not None:
            raise result.error
        face = result.faces[0]
        if face.score == 0.0:
            fallbacks.append(result.source)
        assert face.template is not None
        templates[result.source] = face.template.vector
        if on_done:
            on_done()
    return templates, fallbacks


def evaluate_pairs(
    folds: list[list[Pair]], images: Path, templates: dict[str, np.ndarray]
) -> tuple[list[float], list[float]]:
    """Per-fold accuracy with the threshold chosen on the other folds (on itself if alone)."""
    scores = [
        np.array(
            [
                float(templates[str(images / p.first)] @ templates[str(images / p.second)])
                for p in fold
            ]
        )
        for fold in folds
    ]
    labels = [np.array([p.same for p in fold]) for fold in folds]
    accuracies, thresholds = [], []
    for held_out in range(len(folds)):
        train = [i for i in range(len(folds)) if i != held_out] or [held_out]
        train_scores = np.concatenate([scores[i] for i in train])
        train_labels = np.concatenate([labels[i] for i in train])
        threshold = best_accuracy_threshold(train_scores, train_labels)
        thresholds.append(threshold)
        accuracies.append(accuracy_at(scores[held_out], labels[held_out], threshold))
    return accuracies, thresholds


def run_lfw(
    pipeline: FacePipeline,
    root: Path,
    subdir: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[], None] | None = None,
) -> LfwResult:
    """The whole protocol: read pairs, embed every image once, score the folds."""
    pairs_file = root / "pairs.txt"
    if not pairs_file.is_file():
        raise InputError(f"{root}: no pairs.txt here")
    folds = read_pairs(pairs_file)
    images = find_images_folder(root, subdir, folds)
    unique = sorted({p for fold in folds for pair in fold for p in (pair.first, pair.second)})
    if on_start:
        on_start(len(unique))
    templates, fallbacks = embed_lfw_images(
        pipeline, [images / p for p in unique], on_done, workers=EVAL_WORKERS
    )
    accuracies, thresholds = evaluate_pairs(folds, images, templates)
    return LfwResult(
        accuracies, thresholds, len(unique), len(fallbacks), fallbacks, len(folds) == 1
    )


def read_people(people_file: Path) -> list[list[tuple[str, int]]]:
    """The people sets of an LFW ``people.txt``: per set, ``(name, number of images)``."""
    lines = [line.split() for line in people_file.read_text().splitlines() if line.strip()]
    sets, index = int(lines[0][0]), 1
    result = []
    for _ in range(sets):
        count = int(lines[index][0])
        result.append(
            [(fields[0], int(fields[1])) for fields in lines[index + 1 : index + 1 + count]]
        )
        index += 1 + count
    return result


def people_images(images: Path, people: list[tuple[str, int]]) -> list[tuple[str, Path]]:
    """``(name, path)`` of every image of the given people."""
    return [(name, images / _image(name, n)) for name, count in people for n in range(1, count + 1)]
