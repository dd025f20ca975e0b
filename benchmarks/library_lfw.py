"""The LFW development photos as one library: scan speed, group purity, naming, page latency.

Every photo of the 5 people sets of ``people.txt`` (6,165 photos; ``--limit``
takes the first N of them, in file order) is scanned into a fresh library
beside a fresh gallery (``Library.scan``: detection, quality, templates and
crops of every face, then grouping), and then:

* **scan**: photos per second (wall time, this machine) and the process's
  peak resident memory (``ru_maxrss``, models included);
* **group purity**: pairwise precision/recall and BCubed over each photo's
  labelled face (the face nearest the photo's centre; LFW's other faces are
  unlabelled and not scored), ungrouped faces counting as singletons;
* **naming**: the 20 largest groups are named after the person most of
  their labelled faces are (a second group of one person joins the first),
  then, over those people, the recall and precision of their appearances
  (``Library.appearances`` at the default operating point: linked and
  identified faces) against their labelled faces;
* **page latency**: ``GET /api/library/groups?limit=50`` through the real
  service app (in process), median and worst of 20 requests.

    .venv/bin/python benchmarks/library_lfw.py [--data ../shared/data] [--limit N]

Writes ``benchmarks/results/library_lfw.json`` and ``.md`` (``library_lfw_<N>`` with
``--limit``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from facelens import FaceLens
from facelens.cluster.metrics import score_clustering
from facelens.ingest.sources import WorkItem

RESULTS = Path(__file__).resolve().parent / "results"
NAMED = 20


def lfw_photos(data: Path, limit: int | None) -> list[tuple[Path, str]]:
    """``(photo, person)`` for every photo of people.txt's sets, in file order."""
    lfw = data / "lfw"
    photos: list[tuple[Path, str]] = []
    lines = (lfw / "people.txt").read_text().split("\n")
    for line in lines[1:]:
        parts = line.split()
        if len(parts) != 2:
            continue
        person, count = parts[0], int(parts[1])
        for number in range(1, count + 1):
            path = lfw / "images_deepfunneled" / person / f"{person}_{number:04d}.jpg"
            photos.append((path, person))
    return photos[:limit] if limit else photos


def labelled_faces(lens: FaceLens) -> dict[int, str]:
    """Per photo, the id of its face nearest the centre, with the photo's person."""
    library = lens.library()
    try:
        nearest: dict[str, tuple[float, int]] = {}
        for face in library.store.faces():
            box = face.box
            distance = float(np.hypot(box.x + box.width / 2 - 125, box.y + box.height / 2 - 125))
            if face.source not in nearest or distance < nearest[face.source][0]:
                nearest[face.source] = (distance, face.id)
    finally:
        library.close()
    return {face_id: Path(source).parent.name for source, (_, face_id) in nearest.items()}


def page_latency(gallery: Path, repeats: int = 20) -> dict[str, float]:
    """``GET /api/library/groups?limit=50`` through the service app: milliseconds."""
    from fastapi.testclient import TestClient

    from facelens.service.app import create_app
    from facelens.service.keys import KeyStore
    from facelens.service.settings import ServiceSettings
    from facelens.service.state import StateDB

    settings = ServiceSettings(gallery=str(gallery))
    state = StateDB(settings.state_db)
    key = KeyStore(state).create("bench", "query")[1]
    state.close()
    times = []
    with TestClient(create_app(settings, start_jobs=False)) as client:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            answer = client.get("/api/library/groups?limit=50", headers={"X-API-Key": key})
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
    times = times[1:]  # the first request opens the models and the library
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def run(data: Path, limit: int | None, keep: Path | None = None) -> dict[str, Any]:
    photos = lfw_photos(data, limit)
    with tempfile.TemporaryDirectory() as scratch:
        folder = keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        gallery = folder / "people.db"
        with FaceLens(gallery=gallery) as lens:
            library = lens.library()
            started = time.perf_counter()
            summary = library.scan([WorkItem(str(p), "image") for p, _ in photos])
            seconds = time.perf_counter() - started
            library.close()
            peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            labels = labelled_faces(lens)
            library = lens.library()
            try:
                group_of = {f.id: f.group_id for f in library.store.faces()}
                ids = sorted(labels)
                predicted = [int(group_of[i] or -i) for i in ids]
                purity = score_clustering(predicted, [labels[i] for i in ids])
                total_groups, largest = library.groups_page(0, NAMED)
                named: set[str] = set()
                for group in largest:
                    members = [
                        labels[f.id]
                        for f in library.store.faces(group_id=group.id)
                        if f.id in labels
                    ]
                    if not members:
                        continue
                    person = Counter(members).most_common(1)[0][0]
                    library.name(group.id, person)
                    named.add(person)
                point = lens.operating_point()
                hits = found_labelled = truth_total = 0
                wrong: list[dict[str, Any]] = []
                for person in sorted(named):
                    truth = {i for i, p in labels.items() if p == person}
                    found = library.appearances(person, point, lens.calibration)
                    shown = {a.face for a in found} & set(labels)
                    hits += len(shown & truth)
                    for appearance in found:
                        if appearance.face in labels and labels[appearance.face] != person:
                            wrong.append(
                                {
                                    "person": person,
                                    "labelled": labels[appearance.face],
                                    "source": Path(appearance.source).name,
                                    "kind": appearance.kind,
                                    "score": appearance.score,
                                }
                            )
                    found_labelled += len(shown)
                    truth_total += len(truth)
                stats = library.store.stats()
            finally:
                library.close()
        latency = page_latency(gallery)
    return {
        "photos": len(photos),
        "limit": limit,
        "scan": {
            "seconds": round(seconds, 1),
            "photos_per_second": round(len(photos) / seconds, 2),
            "peak_rss_mib": round(peak_mib),
            "faces": summary.faces,
            "low_quality_faces": summary.low_quality,
            "failed": summary.failed,
        },
        "groups": {"total": stats["groups"], "unnamed_before_naming": total_groups},
        "purity_labelled_faces": purity.to_dict(),
        "named_people": len(named),
        "appearances": {
            "recall": round(hits / truth_total, 4) if truth_total else None,
            "precision": round(hits / found_labelled, 4) if found_labelled else None,
            "true_faces": truth_total,
            "found_labelled_faces": found_labelled,
            "wrong": wrong,
        },
        "groups_page_latency": latency,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=None, help="Only the first N photos.")
    parser.add_argument(
        "--keep", type=Path, default=None, help="Keep the gallery and library here."
    )
    args = parser.parse_args()
    result = run(args.data, args.limit, args.keep)
    name = "library_lfw" + (f"_{args.limit}" if args.limit else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    scan, purity, found = result["scan"], result["purity_labelled_faces"], result["appearances"]
    lines = [
        f"# The library on LFW ({result['photos']} photos)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| scan | {scan['photos_per_second']} photos/s, {scan['seconds']} s, "
        f"peak RSS {scan['peak_rss_mib']} MiB |",
        f"| faces kept / below quality | {scan['faces']} / {scan['low_quality_faces']} |",
        f"| groups | {result['groups']['total']} |",
        f"| pairwise precision / recall | {purity['pairwise_precision']} / "
        f"{purity['pairwise_recall']} |",
        f"| BCubed precision / recall | {purity['bcubed_precision']} / {purity['bcubed_recall']} |",
        f"| appearances of the {result['named_people']} people named from the {NAMED} largest "
        f"groups: recall / precision | {found['recall']} / {found['precision']} |",
        f"| GET /api/library/groups?limit=50 | median {result['groups_page_latency']['median_ms']}"
        f" ms, max {result['groups_page_latency']['max_ms']} ms |",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
