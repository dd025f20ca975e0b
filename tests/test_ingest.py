"""facelens ingest and search on a collection the tests make: photos, a video, a bad file.

The collection: variants of scikit-image's astronaut (public domain, NASA),
photos without a face, a broken file, and the synthetic clip of
tests/test_video.py (the astronaut moving across a grey background).
Interruption is real: the command runs in a child process that is killed
with SIGKILL part way, then run again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facelens.cli.main import cli
from facelens.gallery import SQLiteGallery
from facelens.ingest import ProcessOptions, ScanIndex, expand_sources, run_ingest
from facelens.ingest.run import LocalExecutor, enroll_result
from facelens.ingest.search import search_appearances
from facelens.match.calibration import calibration_for, operating_point
from facelens.models import registry
from tests.test_video import synthetic_frames, write_clip

MODEL = registry.DEFAULT_EMBEDDER
OPTIONS = ProcessOptions(MODEL, registry.DEFAULT_DETECTOR, threads=2)


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    """photos/ (6 astronaut variants, 1 photo without a face, 1 broken file), clip.mp4."""
    root = tmp_path_factory.mktemp("collection")
    photos = root / "photos" / "astronaut"
    photos.mkdir(parents=True)
    image = Image.fromarray(astronaut)
    variants = {
        "a0.jpg": image,
        "a1.jpg": image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "a2.jpg": image.resize((384, 384)),
        "a3.jpg": image.crop((40, 0, 512, 472)),
        "a4.png": image.rotate(8, fillcolor=(90, 90, 90)),
        "a5.jpg": Image.fromarray(np.clip(astronaut * 0.7, 0, 255).astype(np.uint8)),
    }
    for name, variant in variants.items():
        variant.save(photos / name)
    Image.fromarray(np.full((200, 300, 3), 120, np.uint8)).save(root / "photos" / "grey.jpg")
    (root / "photos" / "broken.jpg").write_bytes(b"this is not a JPEG")
    write_clip(root / "clip.mp4", synthetic_frames(50), audio=False)
    return root


def face_rows(scan: Path) -> list[tuple[str, int, float, float]]:
    with sqlite3.connect(scan) as db:
        rows = db.execute(
            "SELECT i.source, f.frame_index, round(f.x, 1), round(f.y, 1) FROM faces f "
            "JOIN items i ON i.id = f.item_id ORDER BY i.source, f.frame_index, f.x"
        ).fetchall()
    return [(str(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]


def test_sources_expand_folders_lists_and_videos(collection: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(f"# photos\n{collection / 'clip.mp4'}\n\n{collection / 'photos/grey.jpg'}\n")
    items = expand_sources([collection / "photos", f"@{listing}", collection / "photos/grey.jpg"])
    kinds = {Path(i.source).name: i.kind for i in items}
    assert kinds["clip.mp4"] == "video" and kinds["a4.png"] == "image"
    assert len(items) == len({i.source for i in items}) == 9  # grey.jpg once


def test_ingest_then_search_finds_every_appearance(collection: Path, tmp_path: Path) -> None:
    scan = ScanIndex(tmp_path / "scan.db", MODEL)
    summary = run_ingest(scan, expand_sources([collection]), LocalExecutor(OPTIONS))
    assert summary.processed == 9 and summary.failed == 1  # the broken file, alone
    assert [Path(s).name for s, _ in scan.failures()] == ["broken.jpg"]
    faces = scan.faces()
    sources = {Path(s).name for s in faces.sources}
    assert {"a0.jpg", "a1.jpg", "a2.jpg", "a3.jpg", "a4.png", "a5.jpg", "clip.mp4"} <= sources
    assert "grey.jpg" not in sources
    video = [i for i, s in enumerate(faces.sources) if s.endswith("clip.mp4")]
    assert len(video) >= 3  # 2 s at 2 frames per second
    assert all(faces.frame_index[i] >= 0 and not np.isnan(faces.time[i]) for i in video)

    calibration = calibration_for(MODEL)
    point = operating_point(calibration, fmr=1e-4)
    probe = faces.vectors[0]
    found = search_appearances(probe, faces, point, calibration)
    assert len(found) == len(faces.face_ids)  # every face of the collection is the astronaut
    assert all(a.match and a.score >= point.threshold for a in found)
    assert [a.score for a in found] == sorted((a.score for a in found), reverse=True)
    assert all(a.llr is not None and a.llr > 0 and a.score_fmr <= 1e-4 for a in found)
    stranger = -probe  # nobody looks like this
    assert search_appearances(stranger, faces, point, calibration) == []
    assert search_appearances(stranger, faces, point, calibration, include_below=True, limit=3)
    scan.close()


def test_interrupted_ingest_resumes_without_repeats_or_losses(
    collection: Path, tmp_path: Path
) -> None:
    scan = tmp_path / "scan.db"
    command = [
        *(sys.executable, "-m", "facelens.cli.main", "ingest", str(collection)),
        *("--scan", str(scan), "--batch-size", "1", "--workers", "1", "--json"),
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = 0
    while child.poll() is None and done < 2:
        time.sleep(0.2)
        if scan.exists():
            try:
                with sqlite3.connect(scan, timeout=1) as db:
                    done = db.execute(
                        "SELECT COUNT(*) FROM items WHERE status != 'pending'"
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                pass
    assert child.poll() is None, "the run finished before it could be interrupted"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with sqlite3.connect(scan) as db:
        states = dict(db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall())
        (broken_status,) = db.execute(
            "SELECT status FROM items WHERE source LIKE '%broken.jpg'"
        ).fetchone()
    assert states.get("pending", 0) > 0 and sum(states.values()) == 9

    result = CliRunner().invoke(
        cli, ["ingest", str(collection), "--scan", str(scan), "--workers", "1", "--json"]
    )
    # The broken file fails the run that reaches it: the first one when it got that far
    # before the kill (as it does on a fast machine), else this one.
    assert result.exit_code == (1 if broken_status == "pending" else 0)
    assert f'"processed": {states["pending"]}' in result.stdout  # only what was left
    again = CliRunner().invoke(cli, ["ingest", str(collection), "--scan", str(scan), "--json"])
    assert '"processed": 0' in again.stdout

    whole = tmp_path / "whole.db"
    run_ingest(ScanIndex(whole, MODEL), expand_sources([collection]), LocalExecutor(OPTIONS))
    assert face_rows(scan) == face_rows(whole)  # same faces as one clean run: none twice, none lost


def test_search_command_lists_appearances_with_evidence(collection: Path, tmp_path: Path) -> None:
    scan = tmp_path / "scan.db"
    runner = CliRunner()
    runner.invoke(
        cli,
        [
            "ingest",
            str(collection / "clip.mp4"),
            str(collection / "photos/astronaut/a1.jpg"),
            "--scan",
            str(scan),
        ],
    )
    result = runner.invoke(
        cli, ["search", str(collection / "photos/astronaut/a0.jpg"), "--scan", str(scan), "--json"]
    )
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    where = {Path(a["source"]).name for a in report["appearances"]}
    assert where == {"clip.mp4", "a1.jpg"}
    assert all(a["llr"] > 0 and a["match"] for a in report["appearances"])
    assert any(
        a["time"] is not None and a["frame_index"] is not None for a in report["appearances"]
    )
    missing = runner.invoke(
        cli,
        [
            "search",
            str(collection / "photos/astronaut/a0.jpg"),
            "--scan",
            str(tmp_path / "none.db"),
        ],
    )
    assert missing.exit_code == 1 and "no scan index" in missing.output


def test_ingest_into_the_gallery_enrolls_each_photo_once(collection: Path, tmp_path: Path) -> None:
    gallery_path = tmp_path / "people.db"
    state = ScanIndex(tmp_path / "state.db", MODEL)
    gallery = SQLiteGallery(gallery_path, MODEL)
    options = ProcessOptions(MODEL, registry.DEFAULT_DETECTOR, target="gallery", threads=2)
    items = expand_sources([collection / "photos"])
    # an enrollment that happened just before a crash, before its item was marked done
    first = LocalExecutor(options).processor.run([(items[0], None)])[0]
    enroll_result(gallery, first)
    summary = run_ingest(state, items, LocalExecutor(options), gallery=gallery)
    assert summary.failed == 2  # the broken file and the photo without a face
    templates = gallery.list_templates("astronaut")
    assert len(templates) == 6 and len({t.source for t in templates}) == 6
    assert not state.faces().face_ids.size  # no template leaves the gallery
    gallery.close()
    state.close()


def test_ray_ingest_gives_the_local_results(collection: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is in the test extra; install it with scripts/setup.sh")
    from facelens.ingest.ray_runner import RayExecutor

    items = expand_sources([collection / "photos/astronaut", collection / "photos/broken.jpg"])
    local = ScanIndex(tmp_path / "local.db", MODEL)
    run_ingest(local, items, LocalExecutor(OPTIONS))
    executor = RayExecutor(OPTIONS, address=None, workers=1, in_flight=1)
    try:
        distributed = ScanIndex(tmp_path / "ray.db", MODEL)
        summary = run_ingest(distributed, items, executor, batch_size=2)
    finally:
        executor.close()
    assert summary.processed == 7 and summary.failed == 1
    assert face_rows(tmp_path / "ray.db") == face_rows(tmp_path / "local.db")
    assert np.allclose(distributed.faces().vectors, local.faces().vectors, atol=1e-5)


def test_with_the_gallery_key_the_scan_index_holds_templates_only_as_ciphertext(
    tmp_path: Path,
) -> None:
    from facelens.errors import GalleryKeyMismatchError, GalleryKeyRequiredError
    from facelens.gallery.protection import GalleryCipher
    from facelens.ingest.process import ItemResult
    from facelens.ingest.sources import WorkItem
    from facelens.vectors import unit_rows

    cipher = GalleryCipher.generate()
    path = tmp_path / "sealed-scan.db"
    vectors = unit_rows(np.random.default_rng(3).normal(size=(5, 128))).astype(np.float32)
    scan = ScanIndex(path, MODEL, cipher=cipher)
    assert scan.encrypted
    scan.add_items([WorkItem("/photos/a.jpg", "image"), WorkItem("/photos/b.jpg", "image")])
    for source, rows in (("/photos/a.jpg", slice(0, 2)), ("/photos/b.jpg", slice(2, 5))):
        count = len(vectors[rows])
        scan.record(
            ItemResult(
                source,
                boxes=np.tile(np.float32([1, 2, 30, 40]), (count, 1)),
                detector_scores=np.full(count, 0.9, np.float32),
                qualities=np.full(count, 0.8, np.float32),
                frame_index=np.full(count, -1, np.int64),
                time=np.full(count, np.nan),
                vectors=vectors[rows],
                frames=1,
            )
        )
    faces = scan.faces()
    assert np.array_equal(faces.vectors, vectors)
    assert faces.sources == ["/photos/a.jpg"] * 2 + ["/photos/b.jpg"] * 3
    raw = path.read_bytes() + path.with_name(path.name + "-wal").read_bytes()
    assert not any(v.tobytes()[:32] in raw for v in vectors)
    scan.close()
    with pytest.raises(GalleryKeyRequiredError):
        ScanIndex(path, MODEL)
    with pytest.raises(GalleryKeyMismatchError):
        ScanIndex(path, MODEL, cipher=GalleryCipher.generate())
    with sqlite3.connect(path) as db:  # a template moved to another face does not open there
        db.execute("UPDATE faces SET vector = (SELECT vector FROM faces WHERE id = 1) WHERE id = 2")
    db.close()
    reopened = ScanIndex(path, MODEL, cipher=cipher)
    with pytest.raises(GalleryKeyMismatchError):
        reopened.faces()
    reopened.close()
