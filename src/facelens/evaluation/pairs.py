"""Verification pairs: from an LFW-format pairs file, or generated from a labelled tree.

From a tree, the genuine pairs are every two images of one person (a seeded
sample when there are more than ``max_genuine``) and the impostor pairs a
seeded uniform sample of ``impostors`` pairs of images of two different people
(all of them when there are fewer). The same images, seed and limits give the
same pairs, in the same order (``sha256`` identifies them).

Folds for the k-fold accuracy: a pairs file brings its own; from a tree, the
genuine pairs are dealt into ``folds`` folds at random (seeded) and each fold
gets as many impostor pairs, so that accuracy is measured on balanced folds as
in LFW. The other impostor pairs (fold ``-1``) serve the ROC and error rates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import InputError
from facelens.evaluation.dataset import LabelledImage, LabelledSet
from facelens.evaluation.lfw import find_images_folder, read_pairs

__all__ = ["PairSet", "file_pairs", "tree_pairs"]


@dataclass(frozen=True)
class PairSet:
    """Pairs of images (indices into ``images``), their label and fold (``-1``: no fold)."""

    images: tuple[LabelledImage, ...]
    first: np.ndarray  # (P,) int
    second: np.ndarray  # (P,) int
    same: np.ndarray  # (P,) bool
    fold: np.ndarray  # (P,) int
    protocol: dict[str, Any]  # how the pairs were made, for the JSON

    @property
    def sha256(self) -> str:
        """A digest of the pairs (keys and labels, in order)."""
        digest = hashlib.sha256()
        for a, b, same in zip(self.first, self.second, self.same, strict=True):
            line = f"{self.images[a].key}\t{self.images[b].key}\t{int(same)}\n"
            digest.update(line.encode())
        return digest.hexdigest()

    def subset(self, keep: np.ndarray) -> PairSet:
        return PairSet(
            self.images,
            self.first[keep],
            self.second[keep],
            self.same[keep],
            self.fold[keep],
            self.protocol,
        )


def tree_pairs(
    dataset: LabelledSet,
    *,
    seed: int = 0,
    max_genuine: int = 100_000,
    impostors: int = 100_000,
    folds: int = 10,
) -> PairSet:
    """Genuine and impostor pairs of a labelled tree (see the module docstring)."""
    images = dataset.images
    labels = np.unique([im.identity for im in images], return_inverse=True)[1]
    if labels.max(initial=0) < 1:
        only = images[0].identity
        raise InputError(
            f"{dataset.root}: only one identity ({only!r}); point at the folder that holds "
            "one folder per person, or give --identity-regex"
        )
    rng = np.random.default_rng(seed)
    genuine = _genuine_pairs(labels)
    genuine_total = len(genuine)
    if genuine_total == 0:
        raise InputError(f"{dataset.root}: no person has two images, so no genuine pairs")
    if genuine_total > max_genuine:
        genuine = genuine[np.sort(rng.choice(genuine_total, max_genuine, replace=False))]
    impostor, impostor_total = _impostor_pairs(labels, impostors, rng)
    first = np.concatenate([genuine[:, 0], impostor[:, 0]])
    second = np.concatenate([genuine[:, 1], impostor[:, 1]])
    same = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])
    fold = np.full(len(same), -1)
    fold[rng.permutation(len(genuine))] = np.arange(len(genuine)) % folds
    balanced = rng.permutation(len(impostor))[: len(genuine)]
    fold[len(genuine) + balanced] = np.arange(len(balanced)) % folds
    protocol = {
        "source": "tree",
        "root": str(dataset.root),
        "identity_rule": dataset.identity_rule,
        "identities": int(labels.max() + 1),
        "seed": seed,
        "genuine_available": genuine_total,
        "impostor_available": impostor_total,
        "max_genuine": max_genuine,
        "impostors_requested": impostors,
        "folds": folds,
        "fold_rule": "genuine pairs dealt into folds at random, each with as many impostor pairs",
    }
    return PairSet(images, first, second, same, fold, protocol)


def _genuine_pairs(labels: np.ndarray) -> np.ndarray:
    """``(G, 2)`` every two images ``i < j`` of the same person, in order."""
    parts = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        a, b = np.triu_indices(len(members), k=1)
        parts.append(np.stack([members[a], members[b]], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, 2), int)


def _impostor_pairs(
    labels: np.ndarray, wanted: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """``(wanted, 2)`` distinct pairs ``i < j`` of different people, and how many exist."""
    n = len(labels)
    counts = np.bincount(labels)
    total = n * (n - 1) // 2 - int((counts * (counts - 1) // 2).sum())
    if total <= wanted:
        a, b = np.triu_indices(n, k=1)
        different = labels[a] != labels[b]
        return np.stack([a[different], b[different]], axis=1), total
    chosen: dict[int, None] = {}  # insertion-ordered set of codes i * n + j
    while len(chosen) < wanted:
        a, b = rng.integers(0, n, size=(2, 2 * (wanted - len(chosen)) + 16))
        low, high = np.minimum(a, b), np.maximum(a, b)
        valid = labels[low] != labels[high]
        for code in (low[valid] * n + high[valid]).tolist():
            chosen.setdefault(code)
            if len(chosen) == wanted:
                break
    codes = np.fromiter(chosen, dtype=np.int64, count=wanted)
    return np.stack([codes // n, codes % n], axis=1), total


def file_pairs(pairs_file: Path, images_dir: str | None = None) -> PairSet:
    """The pairs and folds of an LFW-format pairs file.

    Images are ``<images>/<name>/<name>_<nnnn>.jpg``; ``images_dir`` (absolute,
    or relative to the pairs file's folder) names the images folder, otherwise
    it is looked for beside the file.
    """
    folds = read_pairs(pairs_file)
    folder = find_images_folder(pairs_file.parent, images_dir, folds)
    keys = sorted({k for fold in folds for pair in fold for k in (pair.first, pair.second)})
    images = tuple(LabelledImage(k.split("/")[0], folder / k, k) for k in keys)
    index = {k: i for i, k in enumerate(keys)}
    rows = [
        (index[pair.first], index[pair.second], pair.same, f)
        for f, fold in enumerate(folds)
        for pair in fold
    ]
    first, second, same, fold_of = (np.array(column) for column in zip(*rows, strict=True))
    protocol = {
        "source": "pairs_file",
        "pairs_file": str(pairs_file),
        "images_folder": str(folder),
        "identities": len({im.identity for im in images}),
        "folds": len(folds),
        "fold_rule": "folds as listed in the pairs file",
    }
    return PairSet(images, first, second, same.astype(bool), fold_of, protocol)
