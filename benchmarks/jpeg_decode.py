"""JPEG decoding: OpenCV's path (``io.image``'s plain-JPEG route) against Pillow's, on real photos.

For every JPEG of the chosen folders of the shared data (the first ``--lfw``
of LFW's, sorted by path, and every one of the others), both decoders run on
the same bytes, with EXIF orientation applied: the report counts the photos
whose RGB pixels are identical, and the CPU milliseconds of each path (the
fewest of ``--rounds`` alternating runs) for the largest photos.

    .venv/bin/python benchmarks/jpeg_decode.py [--data ../shared/data] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.io.image import DEFAULT_MAX_PIXELS, _decode_plain_jpeg, _from_pil  # noqa: E402

FOLDERS = ("deepface_unit", "group_photos", "face_recognition_knn", "misc_labelled_singles")


def jpegs(data: Path, lfw: int) -> list[Path]:
    """The first ``lfw`` LFW JPEGs by path, then every JPEG of :data:`FOLDERS`."""
    found = sorted((data / "lfw").rglob("*.jpg"))[:lfw]
    for folder in FOLDERS:
        found += sorted(
            p for p in (data / folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")
        )
    return found


def cpu_ms(decode: Any, rounds: int) -> float:
    """The fewest CPU milliseconds of ``rounds`` calls of ``decode()``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        decode()
        best = min(best, time.thread_time() - started)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data")
    parser.add_argument("--lfw", type=int, default=400, help="LFW photos (first by path)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--timed", type=int, default=5, help="largest photos to time")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    def opencv(data: bytes) -> Any:
        with Image.open(io.BytesIO(data)) as image:
            return _decode_plain_jpeg(image, data, DEFAULT_MAX_PIXELS, "photo")

    def pillow(data: bytes) -> Any:
        with Image.open(io.BytesIO(data)) as image:
            return _from_pil(image, DEFAULT_MAX_PIXELS, "photo")

    photos = jpegs(args.data, args.lfw)
    identical, different, pillow_only = 0, [], 0
    for path in photos:
        data = path.read_bytes()
        ours = opencv(data)
        if ours is None:  # not a plain colour JPEG: Pillow decodes it in io.image too
            pillow_only += 1
            continue
        digests = {hashlib.sha256(a.tobytes()).hexdigest() for a in (ours, pillow(data))}
        if len(digests) == 1:
            identical += 1
        else:
            different.append(str(path.relative_to(args.data)))
    largest = sorted(photos, key=lambda p: p.stat().st_size)[-args.timed :]
    timings = []
    for path in largest:
        data = path.read_bytes()
        timings.append(
            {
                "photo": str(path.relative_to(args.data)),
                "opencv_ms": round(cpu_ms(lambda d=data: opencv(d), args.rounds), 2),
                "pillow_ms": round(cpu_ms(lambda d=data: pillow(d), args.rounds), 2),
            }
        )
    report = {
        "photos": len(photos),
        "identical": identical,
        "different": different,
        "decoded_by_pillow_only": pillow_only,
        "cpu_ms_fewest_of_rounds": timings,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
