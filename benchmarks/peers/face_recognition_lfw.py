"""Embed images with the `face_recognition` library (dlib HOG detector + dlib ResNet).

Runs inside the peer virtualenv (benchmarks/setup_peers.sh), never in facelens's.
For each image of the list: decode (``load_image_file``), detect with HOG
(``face_locations``, upsample 1), keep the face nearest the image centre and
embed it with ``face_encodings`` (5-point landmarks + ResNet, one jitter).
When HOG finds no face, the box of the central half of the image is embedded
instead and counted as a fallback.

Writes an .npz (``paths``, ``vectors`` float32, ``fallback`` bool) and prints one
JSON line of timings on stdout. Model loading (the import, which loads the dlib
models) is timed separately from the images.

    python face_recognition_lfw.py --list files.txt --out face_recognition.npz
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner_io import package_versions, read_arguments, write_result

Location = tuple[int, int, int, int]  # (top, right, bottom, left), face_recognition's order


def central_location(locations: list[Location], width: int, height: int) -> Location:
    """The detection whose box centre is nearest the image centre."""

    def distance(location: Location) -> float:
        top, right, bottom, left = location
        return float(np.hypot((left + right) / 2 - width / 2, (top + bottom) / 2 - height / 2))

    return min(locations, key=distance)


def fallback_location(width: int, height: int) -> Location:
    """The central half of the image: (62, 187, 187, 62) for LFW's 250x250."""
    return (int(height * 0.25), int(width * 0.75), int(height * 0.75), int(width * 0.25))


def versions() -> dict[str, str]:
    """Versions of the packages this runner measures."""
    return package_versions(
        ("face_recognition", "face_recognition_models", "dlib", "numpy", "pillow")
    )


def main() -> int:
    paths, out = read_arguments(__doc__.splitlines()[0])

    start = time.perf_counter()
    import face_recognition  # the import loads dlib's detector, landmark and ResNet models

    load_seconds = time.perf_counter() - start

    vectors = np.zeros((len(paths), 128), dtype=np.float32)
    fallback = np.zeros(len(paths), dtype=bool)
    stage = {"decode": 0.0, "detect": 0.0, "embed": 0.0}
    loop_start = time.perf_counter()
    for index, path in enumerate(paths):
        t0 = time.perf_counter()
        image = face_recognition.load_image_file(path)
        t1 = time.perf_counter()
        height, width = image.shape[:2]
        locations = face_recognition.face_locations(
            image, number_of_times_to_upsample=1, model="hog"
        )
        t2 = time.perf_counter()
        if locations:
            location = central_location(locations, width, height)
        else:
            location = fallback_location(width, height)
            fallback[index] = True
        encodings = face_recognition.face_encodings(
            image, known_face_locations=[location], num_jitters=1, model="small"
        )
        t3 = time.perf_counter()
        vectors[index] = encodings[0]
        stage["decode"] += t1 - t0
        stage["detect"] += t2 - t1
        stage["embed"] += t3 - t2
        if (index + 1) % 500 == 0:
            print(f"face_recognition: {index + 1}/{len(paths)}", file=sys.stderr, flush=True)
    total_seconds = time.perf_counter() - loop_start

    report = {
        "system": "face_recognition",
        "total_seconds": total_seconds,
        "load_seconds": load_seconds,
        "stage_seconds": stage,
        "versions": versions(),
    }
    write_result(out, paths, vectors, fallback, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
