"""Group labels (e.g. demographic groups) for a per-group breakdown of the metrics.

The CSV has two columns, ``identity_or_image,group`` (a header row with
``group`` as its second field is skipped). A row names either a person (their
folder name, or the identity read from file names) or one image (its path
relative to the dataset root, or its absolute path); an image's own row wins
over its person's. Rows that match nothing are reported, so typos show.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from facelens.errors import InputError
from facelens.evaluation.dataset import LabelledImage

__all__ = ["max_min_gap", "read_groups"]


@dataclass(frozen=True)
class GroupLabels:
    """Which group each labelled image belongs to (``None``: none given)."""

    by_key: dict[str, str]  # identity name, relative image path or absolute path -> group

    def group_of(self, image: LabelledImage) -> str | None:
        for key in (image.key, str(image.path.resolve()), str(image.path), image.identity):
            if key in self.by_key:
                return self.by_key[key]
        return None

    def assign(self, images: tuple[LabelledImage, ...]) -> tuple[list[str | None], list[str]]:
        """The group of every image, and the CSV keys that matched no image."""
        groups = [self.group_of(image) for image in images]
        used: set[str] = set()
        for image in images:
            used.update({image.key, str(image.path.resolve()), str(image.path), image.identity})
        unmatched = sorted(k for k in self.by_key if k not in used)
        return groups, unmatched


def read_groups(csv_file: Path) -> GroupLabels:
    """Read a two-column group CSV (see the module docstring)."""
    with csv_file.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if rows and len(rows[0]) >= 2 and rows[0][1].strip().lower() == "group":
        rows = rows[1:]
    by_key: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise InputError(
                f"{csv_file}: row {number} should be 'identity_or_image,group', got {row!r}"
            )
        by_key[row[0].strip()] = row[1].strip()
    if not by_key:
        raise InputError(f"{csv_file}: no group labels")
    return GroupLabels(by_key)


def max_min_gap(values: dict[str, float | None]) -> dict[str, float | str | None]:
    """The largest minus the smallest value over groups, and which groups they are."""
    known = {group: v for group, v in values.items() if v is not None}
    if len(known) < 2:
        return {"gap": None, "max_group": None, "min_group": None}
    ordered = sorted(known, key=lambda g: known[g])  # stable: ties keep name order
    low, high = ordered[0], ordered[-1]
    return {"gap": known[high] - known[low], "max_group": high, "min_group": low}
