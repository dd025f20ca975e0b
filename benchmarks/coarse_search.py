"""Large photos searched at half scale first (``FacePipeline(coarse_first=True)``) against the full search.

Part 1, real photos: every photo of the chosen shared-data folders goes through
the detector both ways. For each: the copies searched, the detector's CPU
milliseconds (``time.thread_time``, the fewer of two runs, one inference
thread), and, where the half-scale search was the answer, the faces lost or
gained against the full search (boxes paired by IoU >= 0.5) and the cosine
between the two templates of each face (the default embedder).

Part 2, accuracy where faces are large (``--lfw-fold``): the images of one
LFW development fold enlarged ``--lfw-upscale`` times (bicubic, JPEG quality 95,
in a temporary folder; LFW's own 250 px photos are never searched shrunk), then
the LFW protocol on that fold with each search, timed in process.

    .venv/bin/python benchmarks/coarse_search.py --json benchmarks/results/coarse_search.json
    .venv/bin/python benchmarks/coarse_search.py --lfw-fold 1 --lfw-upscale 6 --json FILE
    .venv/bin/python benchmarks/coarse_search.py --as-is-every 2 --json FILE

Part 3 (``--as-is-every N``): the size of change session 9's rule (a small photo of large
faces searched as it is, not at 2x) made on the templates, on every N-th image of LFW fold 1,
for comparison with part 1's cosines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.errors import FaceLensError  # noqa: E402
from facelens.evaluation.lfw import read_pairs, run_lfw  # noqa: E402
from facelens.io.image import DecodedImage  # noqa: E402
from facelens.pipeline.detect import LARGE_FACE, detect_faces  # noqa: E402
from facelens.pipeline.faces import FacePipeline  # noqa: E402
from facelens.types import Detection, Face, ImageArray  # noqa: E402

DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))
FOLDERS = ("deepface_unit", "misc_labelled_singles", "group_photos", "face_recognition_knn")
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class CountingDetector:
    """A detector that records the size of every copy it searches (height, width)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.searched: list[tuple[int, int]] = []

    def detect(self, image: ImageArray) -> list[Detection]:
        self.searched.append((int(image.shape[0]), int(image.shape[1])))
        return list(self.inner.detect(image))


def _iou(a: Face, b: Face) -> float:
    ax, ay, aw, ah = a.box.as_list()
    bx, by, bw, bh = b.box.as_list()
    overlap = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(
        0.0, min(ay + ah, by + bh) - max(ay, by)
    )
    return overlap / (aw * ah + bw * bh - overlap)


def _timed_search(
    detector: CountingDetector, image: DecodedImage, coarse_first: bool
) -> tuple[list[Detection], float, list[tuple[int, int]]]:
    """The detections, the fewer detector CPU ms of two runs, and the copies searched."""
    best, found = float("inf"), []
    for _ in range(2):
        detector.searched.clear()
        start = time.thread_time()
        found = detect_faces(detector, image.pixels, coarse_first=coarse_first)
        best = min(best, 1000 * (time.thread_time() - start))
    return found, best, list(detector.searched)


def _compare(
    pipeline: FacePipeline, image: DecodedImage, full: list[Detection], coarse: list[Detection]
) -> dict[str, Any]:
    """Faces of the full search the coarse answer lost, faces it gained, template cosines."""
    full_faces = pipeline.faces_at(image, full)
    coarse_faces = pipeline.faces_at(image, coarse)
    cosines, lost = [], []
    for face in full_faces:
        twin = max(coarse_faces, key=lambda other: _iou(face, other), default=None)
        if twin is None or _iou(face, twin) < 0.5:
            lost.append(round(face.box.width))
            continue
        assert face.template is not None and twin.template is not None
        cosines.append(round(float(face.template.vector @ twin.template.vector), 4))
    gained = [
        round(face.box.width)
        for face in coarse_faces
        if max((_iou(face, other) for other in full_faces), default=0.0) < 0.5
    ]
    widths = [round(f.box.width) for f in full_faces]
    return {"cosines": cosines, "face_widths": widths, "lost": lost, "gained": gained}


def compare_photos(data: Path) -> dict[str, Any]:
    """Part 1: both searches on every photo of :data:`FOLDERS`."""
    pipeline = FacePipeline(threads=1)
    detector = CountingDetector(pipeline.detector)
    rows: list[dict[str, Any]] = []
    photos = sorted(
        p for folder in FOLDERS for p in (data / folder).rglob("*") if p.suffix.lower() in SUFFIXES
    )
    for number, path in enumerate(photos, 1):
        try:
            image = pipeline.load(path)
        except FaceLensError as error:
            rows.append({"photo": str(path.relative_to(data)), "error": str(error)})
            continue
        full, full_ms, _ = _timed_search(detector, image, coarse_first=False)
        coarse, coarse_ms, searched = _timed_search(detector, image, coarse_first=True)
        at_half_scale = (
            max(image.width, image.height) > pipeline.max_side
            and len(searched) == 1
            and max(searched[0]) <= pipeline.max_side // 2 + 1
        )
        row: dict[str, Any] = {
            "photo": str(path.relative_to(data)),
            "size": [image.width, image.height],
            "searched": searched,
            "answered_at_half_scale": at_half_scale,
            "faces_full": len(full),
            "faces_coarse_first": len(coarse),
            "detect_cpu_ms_full": round(full_ms, 1),
            "detect_cpu_ms_coarse_first": round(coarse_ms, 1),
        }
        if at_half_scale:
            row.update(_compare(pipeline, image, full, coarse))
        rows.append(row)
        print(f"[{number}/{len(photos)}] {row['photo']}: {searched}", file=sys.stderr)
    answered = [r for r in rows if r.get("answered_at_half_scale")]
    cosines = [c for r in answered for c in r["cosines"]]
    return {
        "photos": len(photos),
        "shrunk": sum(1 for r in rows if "size" in r and max(r["size"]) > pipeline.max_side),
        "answered_at_half_scale": len(answered),
        "detect_cpu_s_full": round(sum(r.get("detect_cpu_ms_full", 0) for r in rows) / 1000, 2),
        "detect_cpu_s_coarse_first": round(
            sum(r.get("detect_cpu_ms_coarse_first", 0) for r in rows) / 1000, 2
        ),
        "faces_lost": sum(len(r["lost"]) for r in answered),
        "faces_gained": sum(len(r["gained"]) for r in answered),
        "cosine_min": min(cosines, default=None),
        "cosine_median": float(np.median(cosines)) if cosines else None,
        "cosines_below_0_995": sum(c < 0.995 for c in cosines),
        "rows": rows,
    }


def compare_as_is_rule(lfw: Path, fold: int, every: int) -> dict[str, Any]:
    """Part 3, the size of change session 9's rule made: on every ``every``-th image of an LFW
    fold (250 px, searched as it is when its faces are large), the central face's template
    from the search as it is against the one from the 2x copy (``large_face=None``)."""
    pipeline = FacePipeline(threads=1)
    images = lfw / "images_deepfunneled"
    pairs = read_pairs(lfw / "pairs.txt")[fold - 1]
    names = sorted({name for pair in pairs for name in (pair.first, pair.second)})[::every]
    cosines = []
    for name in names:
        image = pipeline.load(images / name)
        both = [
            detect_faces(pipeline.detector, image.pixels, large_face=rule)
            for rule in (LARGE_FACE, None)
        ]
        if not all(both):
            continue
        centre = np.array([image.width / 2, image.height / 2])
        central = [
            min(found, key=lambda d: float(np.linalg.norm(np.array(d.box.center) - centre)))
            for found in both
        ]
        as_is, enlarged = pipeline.faces_at(image, central)
        assert as_is.template is not None and enlarged.template is not None
        cosine = float(as_is.template.vector @ enlarged.template.vector)
        if cosine < 0.99999:  # the same search both ways (a photo with a small face)
            cosines.append(cosine)
    return {
        "fold": fold,
        "images": len(names),
        "differing": len(cosines),
        "cosine_min": round(min(cosines), 4) if cosines else None,
        "cosine_median": round(float(np.median(cosines)), 4) if cosines else None,
        "cosines_below_0_995": sum(c < 0.995 for c in cosines),
    }


def upscaled_fold(lfw: Path, fold: int, factor: float, folder: Path) -> Path:
    """One fold's images enlarged ``factor`` times (bicubic, JPEG 95) and its pairs, in ``folder``."""
    pairs = read_pairs(lfw / "pairs.txt")[fold - 1]
    images = lfw / "images_deepfunneled"
    names = sorted({name for pair in pairs for name in (pair.first, pair.second)})
    for name in names:
        pixels = cv2.imread(str(images / name))
        big = cv2.resize(pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        target = folder / "images_deepfunneled" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    lines = (lfw / "pairs.txt").read_text().splitlines()
    per_fold = int(lines[0].split()[1])
    chosen = lines[1 + (fold - 1) * 2 * per_fold : 1 + fold * 2 * per_fold]
    (folder / "pairs.txt").write_text("\n".join([f"1\t{per_fold}", *chosen]) + "\n")
    return folder


def compare_lfw(lfw: Path, fold: int, factor: float) -> dict[str, Any]:
    """Part 2: the LFW protocol on one enlarged fold, full search against coarse first."""
    report: dict[str, Any] = {"fold": fold, "upscale": factor}
    with tempfile.TemporaryDirectory(prefix="facelens-coarse-") as scratch:
        root = upscaled_fold(lfw, fold, factor, Path(scratch))
        for label, coarse_first in (("full", False), ("coarse_first", True), ("full_again", False)):
            pipeline = FacePipeline(coarse_first=coarse_first)
            start_cpu, start = time.process_time(), time.perf_counter()
            result = run_lfw(pipeline, root)
            report[label] = {
                "accuracy": result.accuracies[0],
                "images": result.images,
                "fallbacks": result.fallbacks,
                "wall_s": round(time.perf_counter() - start, 2),
                "cpu_s": round(time.process_time() - start_cpu, 2),
            }
            print(f"{label}: {report[label]}", file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--lfw-fold", type=int, default=0, help="also run part 2 on this fold")
    parser.add_argument("--lfw-upscale", type=float, default=6.0)
    parser.add_argument(
        "--as-is-every", type=int, default=0, help="also run part 3 on every N-th image of the fold"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / FOLDERS[0]).is_dir():
        sys.exit(f"the shared photos are not at {args.data}; set FACELENS_DATA or --data")
    report: dict[str, Any] = {"photos": compare_photos(args.data)}
    if args.lfw_fold:
        report["lfw"] = compare_lfw(args.data / "lfw", args.lfw_fold, args.lfw_upscale)
    if args.as_is_every:
        report["as_is_rule"] = compare_as_is_rule(args.data / "lfw", 1, args.as_is_every)
    report["loadavg"] = list(os.getloadavg())
    summary = {k: v for k, v in report["photos"].items() if k != "rows"}
    print(
        json.dumps(
            {**summary, "lfw": report.get("lfw"), "as_is_rule": report.get("as_is_rule")}, indent=2
        )
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
