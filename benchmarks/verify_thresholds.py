"""What verified hiding's thresholds and fill colours rest on (privacy/verify.py).

For ``--faces N`` LFW people after the first ``--skip`` of ``eval anonymization``'s
seeded order, at each face size: the size threshold of each recognizer (the
cosine at FMR 1e-2 among different people's originals, as the eval computes
it), and for each solid fill colour, every face's cosine between its region
filled with that colour and its original, with the number of faces at or
above the verifier's threshold (:func:`facelens.privacy.verify.verify_threshold`)
per recognizer and for any of them.

    .venv/bin/python benchmarks/verify_thresholds.py --skip 400 --faces 300 \\
        --fills 000000,808080,ffffff --out benchmarks/results/verify_thresholds_400.json
    .venv/bin/python benchmarks/verify_thresholds.py --skip 700 --faces 300 --sizes 16,32,64,256 \\
        --fills 000000,202020,404040,606060,000040,400000,004000,402010 \\
        --out benchmarks/results/verify_fills_700.json

``--summarize RAW`` rewrites a raw per-face file (``--raw``) as the summary.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from facelens.evaluation.anonymization import (
    RECOGNIZERS,
    _templates,
    at_size,
    lfw_samples,
    size_threshold,
)
from facelens.match.calibration import calibration_for, operating_point
from facelens.models import registry
from facelens.pipeline.faces import FacePipeline
from facelens.privacy.regions import grow_box
from facelens.privacy.verify import ATTACK_FMR, verify_threshold


def measure(skip: int, count: int, sizes: list[int], fills: list[str]) -> dict[str, Any]:
    """Per-face cosines of each fill with its original, and the size thresholds."""
    samples = lfw_samples(Path("../shared/data/lfw"), count, FacePipeline(), skip=skip)
    pipelines = {r: FacePipeline(registry.DEFAULT_DETECTOR, r) for r in RECOGNIZERS}
    calibrated = {
        r: operating_point(calibration_for(r), fmr=ATTACK_FMR).threshold for r in RECOGNIZERS
    }
    raw: dict[str, Any] = {"skip": skip, "faces": len(samples), "calibrated": calibrated}
    for size in sizes:
        originals: list[tuple[Any, Any]] = []
        filled: dict[str, list[tuple[Any, Any]]] = {f: [] for f in fills}
        for sample in samples:
            pixels, detection = at_size(sample, size)
            originals.append((pixels, detection))
            region = grow_box(detection.box, pixels.shape[1], pixels.shape[0])
            x0, y0 = max(0, int(np.floor(region.x))), max(0, int(np.floor(region.y)))
            x1 = int(np.ceil(region.x + region.width))
            y1 = int(np.ceil(region.y + region.height))
            for fill in fills:
                hidden = pixels.copy()
                hidden[y0:y1, x0:x1] = tuple(int(fill[i : i + 2], 16) for i in (0, 2, 4))
                filled[fill].append((hidden, detection))
        row: dict[str, Any] = {}
        for name in RECOGNIZERS:
            reference = _templates(pipelines[name], originals)
            people = [s.source for s in samples]
            row[name] = {"size_threshold": size_threshold(reference, people, calibrated[name])}
            for fill in fills:
                own = np.sum(_templates(pipelines[name], filled[fill]) * reference, axis=1)
                row[name][fill] = own.tolist()
        raw[str(size)] = row
        print(size, {r: round(row[r]["size_threshold"], 4) for r in RECOGNIZERS}, flush=True)
    return raw


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Size thresholds, and per fill: the highest cosine and the faces the verifier matches."""
    sizes = [k for k in raw if k.isdigit()]
    calibrated = {
        r: operating_point(calibration_for(r), fmr=ATTACK_FMR).threshold for r in RECOGNIZERS
    }
    out: dict[str, Any] = {"faces": raw.get("faces"), "calibrated": calibrated, "sizes": {}}
    for size in sizes:
        row = raw[size]
        fills = [k for k in row[RECOGNIZERS[0]] if k != "size_threshold"]
        cell: dict[str, Any] = {
            "size_threshold": {
                r: round(row[r]["size_threshold"], 4)
                for r in RECOGNIZERS
                if "size_threshold" in row[r]
            },
            "verify_threshold": {r: round(verify_threshold(r, int(size)), 4) for r in RECOGNIZERS},
            "fills": {},
        }
        for fill in fills:
            matched = {
                r: np.array(row[r][fill]) >= verify_threshold(r, int(size)) for r in RECOGNIZERS
            }
            cell["fills"][fill] = {
                "max": {r: round(max(row[r][fill]), 4) for r in RECOGNIZERS},
                "matched": {r: int(m.sum()) for r, m in matched.items()},
                "matched_any": int(np.logical_or.reduce(list(matched.values())).sum()),
            }
        out["sizes"][size] = cell
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", type=int, default=400)
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--sizes", default="16,32,48,64,128,256")
    parser.add_argument("--fills", default="000000,808080,ffffff")
    parser.add_argument("--out", type=Path, required=False)
    parser.add_argument("--raw", type=Path, help="also write the per-face cosines here")
    parser.add_argument("--summarize", type=Path, help="summarize this raw file instead")
    args = parser.parse_args()
    if args.summarize:
        raw = json.loads(args.summarize.read_text())
    else:
        started = time.perf_counter()
        raw = measure(
            args.skip,
            args.faces,
            [int(s) for s in args.sizes.split(",")],
            args.fills.split(","),
        )
        print(f"{time.perf_counter() - started:.0f} s")
        if args.raw:
            args.raw.write_text(json.dumps(raw))
    summary = summarize(raw)
    text = json.dumps(summary, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
