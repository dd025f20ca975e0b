"""Merge ``facelens eval anonymization`` JSON files run on parts (sizes, sets) into one JSON + HTML.

    .venv/bin/python benchmarks/merge_anonymization.py part1.json part2.json ... \\
        --out benchmarks/results/anonymization_verified.json \\
        --html benchmarks/results/anonymization_verified.html

Cells are taken as they are (a later file's cell replaces an earlier one's:
a rerun of some sizes goes last); the sizes are the union, the worst rates and
the verdict are recomputed from the merged cells.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from facelens.evaluation.anonymization_report import anonymization_html


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs of the same methods and recognizers."""
    merged: dict[str, Any] = json.loads(json.dumps(parts[0]))
    for part in parts[1:]:
        merged["sizes"] = sorted(set(merged["sizes"]) | set(part["sizes"]))
        merged["samples"].update(part["samples"])
        merged.setdefault("lfw_skip", part.get("lfw_skip"))
        for key, depth in DEPTHS.items():
            _update(merged.setdefault(key, {}), part.get(key, {}), depth)
    worst: dict[str, float] = {}
    for by_method in merged["reidentification"].values():
        for method, by_recognizer in by_method.items():
            rates = [c["rate"] for cells in by_recognizer.values() for c in cells.values()]
            worst[method] = max([worst.get(method, 0.0), *[r for r in rates if r is not None]])
    merged["worst_rate"] = {m: r for m, r in worst.items() if m != "none"}
    merged["passed"] = all(r == 0.0 for r in merged["worst_rate"].values())
    return merged


DEPTHS = {"reidentification": 4, "utility_share_altered": 3, "verification": 3}
"""How deep each block's cells sit (set, method, [recognizer,] size): a cell is replaced whole."""


def _update(into: dict[str, Any], other: dict[str, Any], depth: int) -> None:
    """``other``'s cells into ``into``; a later part's cell replaces an earlier one's."""
    for key, value in other.items():
        if depth > 1 and isinstance(value, dict):
            _update(into.setdefault(key, {}), value, depth - 1)
        else:
            into[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--html", type=Path, required=True)
    args = parser.parse_args()
    data = merge([json.loads(p.read_text()) for p in args.parts])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    args.html.write_text(anonymization_html(data), encoding="utf-8")
    print(json.dumps(data["worst_rate"]), "passed" if data["passed"] else "not passed")


if __name__ == "__main__":
    main()
