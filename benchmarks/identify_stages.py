"""Where the CPU of one ``POST /api/identify`` goes, stage by stage, on the service benchmark's photos.

Enrolls the k-NN example people (``face_recognition_knn/.../train``) in a
temporary gallery, then runs the service's own path for each test photo
(``service.limits.decode_image`` -> ``FacePipeline`` detect, align + quality,
embed -> ``GallerySearch.match`` -> ``Match.to_dict``) ``--rounds`` times with one
inference thread, so onnxruntime computes in the calling thread and
``time.thread_time`` sees all of it. Reports the fewest CPU milliseconds of each
stage for each photo (the least disturbed round on a shared machine) and their
mean per request; the HTTP layer (uvicorn, multipart, JSON, audit) is not
included: ``benchmarks/service_load.py`` reports the whole server's CPU per request.

    .venv/bin/python benchmarks/identify_stages.py --rounds 5 --json benchmarks/results/identify_stages.json
    .venv/bin/python benchmarks/identify_stages.py --max-side 960 --embedder fusion-sface-dlib-int8-flip
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facelens.api import FaceLens
from facelens.pipeline.detect import detect_faces
from facelens.service.limits import decode_image

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))
KNN = DATA / "face_recognition_knn" / "examples" / "knn_examples"
STAGES = ("decode", "detect", "align_quality", "embed", "match", "to_dict")


class StageClock:
    """``with clock("name"):`` keeps the fewest thread-CPU milliseconds seen for that stage."""

    def __init__(self, best: dict[str, float]) -> None:
        self.best = best

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        start = time.thread_time()
        yield
        spent = 1000 * (time.thread_time() - start)
        self.best[key] = min(self.best.get(key, spent), spent)


def run(rounds: int, max_side: int | None = None, embedder: str | None = None) -> dict[str, Any]:
    if not KNN.is_dir():
        sys.exit(f"real photos not found at {KNN}; set FACELENS_DATA to the shared data folder")
    photos = [(p.name, p.read_bytes()) for p in sorted((KNN / "test").iterdir()) if p.is_file()]
    best: dict[str, dict[str, float]] = {name: {} for name, _ in photos}
    faces: dict[str, list[str | None]] = {}
    sizes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="facelens-stages-") as folder:
        lens = FaceLens(Path(folder) / "people.db", threads=1, max_side=max_side, embedder=embedder)
        for person in sorted(p for p in (KNN / "train").iterdir() if p.is_dir()):
            lens.enroll(person.name, sorted(person.iterdir()))
        pipe, point = lens.pipeline, lens.operating_point()
        for round_index in range(rounds + 1):  # round 0 warms the models up
            for name, data in photos:
                clock = StageClock(best[name] if round_index else {})
                with clock("decode"):
                    image = decode_image(data, name, 40_000_000)
                with clock("detect"):
                    found = detect_faces(
                        pipe.detector,
                        image.pixels,
                        pipe.max_side,
                        pipe.max_upscale,
                        large_face=pipe.large_face,
                        coarse_first=pipe.coarse_first,
                    )
                with clock("align_quality"):
                    aligned = pipe.faces_at(image, found, embed=False)
                with clock("embed"):
                    embedded = pipe.embed_faces(aligned)
                with clock("match"):
                    matches = lens.gallery_search.match(embedded, point, 5)
                with clock("to_dict"):
                    _ = [m.to_dict() for m in matches]
                faces[name] = [m.identity for m in matches]
                scale = min(pipe.max_upscale, pipe.max_side / max(image.width, image.height))
                sizes[name] = (
                    f"{image.width}x{image.height} searched at "
                    f"{round(image.width * scale)}x{round(image.height * scale)}"
                )
        lens.close()
    mean = {key: round(sum(best[n][key] for n in best) / len(best), 1) for key in STAGES}
    return {
        "rounds": rounds,
        "threads": 1,
        "max_side": max_side,
        "embedder": embedder,
        "cpu_ms_per_photo": {
            name: {
                "size": sizes[name],
                "identities": faces[name],
                **{key: round(value, 1) for key, value in best[name].items()},
            }
            for name in best
        },
        "cpu_ms_mean_per_request": {**mean, "total": round(sum(mean.values()), 1)},
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--max-side", type=int, default=None, help="searched size (default 1280)")
    parser.add_argument("--embedder", default=None, help="embedder id (default: the default)")
    args = parser.parse_args()
    text = json.dumps(run(args.rounds, args.max_side, args.embedder), indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
