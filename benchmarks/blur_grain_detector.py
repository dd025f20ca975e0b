"""Does the grain after blur make a face for CenterFace, the privacy check's detector?

    .venv/bin/python benchmarks/blur_grain_detector.py [--fields 30] [--only TEXT] [--out results.json]

A synthetic clip like the tests', without encoding: the scikit-image
astronaut's face (256 px) moving over a plain 384x288 canvas, 30 positions.
For each variant (blur sigma, grain level and cells; pixelate) and each of
``--fields`` seeded grain fields (drawn as the process's own are: unit
gaussian, 256x256x3, float32), every frame's face region (YuNet's box grown
by the anonymization margins) is hidden and CenterFace (score >= 0.5) is
asked for faces; a face whose centre lies in the hidden region counts.
Prints, per variant, the fields with at least one such face and the faces
in all (docs/benchmarks.md#anonymization-blur-grain).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from facelens.pipeline.detect import detect_faces
from facelens.pipeline.faces import FacePipeline
from facelens.privacy import methods
from facelens.privacy.centerface import load_centerface
from facelens.privacy.regions import grow_box

VARIANTS = {
    "blur 1/6, grain 120": ("blur", {"blur_noise": 120.0}),
    "blur 1/5, grain 120": ("blur", {"blur": 0.2, "blur_noise": 120.0}),
    "blur 1/4, grain 120": ("blur", {"blur": 0.25, "blur_noise": 120.0}),
    "blur 1/6, grain 120, 96 cells": ("blur", {"blur_noise": 120.0, "noise_cells": 96}),
    "blur 1/6, grain 120, 24 cells": ("blur", {"blur_noise": 120.0, "noise_cells": 24}),
    "blur 1/6, grain 160": ("blur", {"blur_noise": 160.0}),
    "blur 1/6, grain 90": ("blur", {"blur_noise": 90.0}),
    "blur 1/6, grain 60 (shipped)": ("blur", {}),
    "blur 1/6, no grain": ("blur", {"blur_noise": 0.0}),
    "pixelate, grain 120 (shipped)": ("pixelate", {}),
    "pixelate, grain 60": ("pixelate", {"noise": 60.0}),
}


def frames() -> list[np.ndarray]:
    """The moving face: 30 RGB frames of 384x288."""
    face = cv2.resize(np.ascontiguousarray(data.astronaut()), (256, 256))
    out = []
    for i in range(30):
        canvas = np.full((288, 384, 3), 40, np.uint8)
        x, y = 8 + (i * 4) % 120, 16 + (i * 2) % 16
        canvas[y : y + 256, x : x + 256] = face[: 288 - y, : 384 - x][:256, :256]
        out.append(canvas)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fields", type=int, default=30, help="seeded grain fields per variant")
    parser.add_argument("--out", type=Path, default=None, help="write the counts as JSON")
    parser.add_argument(
        "--only", default="", help="run only the variants whose name contains this text"
    )
    args = parser.parse_args()
    pictures = frames()
    finder = FacePipeline()
    boxes = [detect_faces(finder.detector, p, 960, 1.0) for p in pictures]
    regions = [grow_box(b[0].box, 384, 288) for b in boxes if b]
    shown = [p for p, b in zip(pictures, boxes, strict=True) if b]
    detector = load_centerface()
    results = {}
    for name, (method, change) in VARIANTS.items():
        if args.only not in name:
            continue
        strength = replace(methods.SHIPPED, **change)  # type: ignore[arg-type]
        fields_with_faces, faces = 0, 0
        for seed in range(args.fields):
            field = np.random.default_rng(seed).standard_normal((256, 256, 3)).astype(np.float32)
            found = 0
            with methods.given_grain(field):
                for picture, region in zip(shown, regions, strict=True):
                    hidden = picture.copy()
                    methods.anonymize_regions(hidden, [region], method, strength)  # type: ignore[arg-type]
                    found += sum(
                        region.x <= d.box.center[0] <= region.x + region.width
                        and region.y <= d.box.center[1] <= region.y + region.height
                        for d in detector.detect(hidden)
                    )
            fields_with_faces += found > 0
            faces += found
        results[name] = {
            "fields": args.fields,
            "fields_with_faces": fields_with_faces,
            "faces": faces,
        }
        print(f"{name}: {fields_with_faces} of {args.fields} fields, {faces} faces", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"frames": len(shown), "variants": results}, indent=2))


if __name__ == "__main__":
    main()
