"""Face clustering on real photos: grouping, the same-photo rule, incremental runs,
corrections that stick, naming that enrolls, the command line and the contact sheets.

The photos are read once per session (into a template index that each test
copies), so the tests stay quick.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from facelens.api import FaceLens
from facelens.cli.main import cli
from facelens.cluster import FaceClusters
from facelens.errors import CorrectionError
from facelens.io.walk import expand_image_paths
from facelens.pipeline.faces import FacePipeline
from tests.conftest import data_path

pytestmark = pytest.mark.shared_data


def person_of(source: str) -> str | None:
    """Who the labelled k-NN photos show: the train folder, or the test file's name."""
    path = Path(source)
    if path.parent.parent.name == "train":
        return path.parent.name
    return {"obama1.jpg": "obama", "alex_lacamoire1.jpg": "alex_lacamoire"}.get(path.name)


@pytest.fixture(scope="session")
def knn_train() -> Path:
    return data_path("face_recognition_knn/examples/knn_examples/train")


@pytest.fixture(scope="session")
def knn_test() -> Path:
    return data_path("face_recognition_knn/examples/knn_examples/test")


@pytest.fixture(scope="session")
def indexed_train(
    tmp_path_factory: pytest.TempPathFactory, pipeline: FacePipeline, knn_train: Path
) -> Path:
    """A cluster index of the k-NN training photos, grouped once at the default rate."""
    folder = tmp_path_factory.mktemp("indexed")
    with FaceClusters.open(folder / "g.db", pipeline=pipeline) as clusters:
        clusters.run(expand_image_paths([knn_train]))
    return folder


@pytest.fixture()
def clusters(tmp_path: Path, indexed_train: Path, pipeline: FacePipeline) -> FaceClusters:
    """A copy of the indexed training photos, with its own (empty) gallery."""
    shutil.copy(indexed_train / "g.library.db", tmp_path / "g.library.db")
    opened = FaceClusters.open(tmp_path / "g.db", pipeline=pipeline)
    yield opened  # type: ignore[misc]
    opened.close()


def group_of_person(clusters: FaceClusters) -> dict[str, set[int | None]]:
    found: dict[str, set[int | None]] = {}
    for face in clusters.store.faces():
        person = person_of(face.source)
        if person:
            found.setdefault(person, set()).add(face.group_id)
    return found


def test_each_person_of_the_labelled_photos_is_one_group(clusters: FaceClusters) -> None:
    groups = group_of_person(clusters)
    assert set(groups) == {"alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"}
    assert all(len(g) == 1 for g in groups.values()), groups
    assert len({next(iter(g)) for g in groups.values()}) == 5  # five different groups


def test_faces_of_one_photo_are_never_grouped_even_when_everything_would_merge(
    tmp_path: Path, pipeline: FacePipeline
) -> None:
    photos = data_path("group_photos")
    with FaceClusters.open(tmp_path / "g.db", pipeline=pipeline) as clusters:
        report = clusters.run(expand_image_paths([photos]), threshold=-1.0)  # merge anything
        faces = clusters.store.faces()
        assert len(faces) >= 20
        per_group: dict[int | None, list[int]] = {}
        for face in faces:
            per_group.setdefault(face.group_id, []).append(face.photo_id)
        assert all(len(p) == len(set(p)) for p in per_group.values())
        assert max(len(p) for p in per_group.values()) > 1  # faces of different photos did merge
        assert report.regroup.faces_placed == len(faces)


def test_new_photos_join_existing_groups(clusters: FaceClusters, knn_test: Path) -> None:
    before = {f.id: f.group_id for f in clusters.store.faces()}
    obama_group = next(iter(group_of_person(clusters)["obama"]))
    report = clusters.run([knn_test / "obama1.jpg", knn_test / "alex_lacamoire1.jpg"])
    assert [p.status for p in report.photos] == ["indexed", "indexed"]
    assert report.regroup.faces_placed == 2 and report.regroup.groups_created == 0
    after = {f.id: f.group_id for f in clusters.store.faces()}
    assert all(after[f] == g for f, g in before.items())  # nobody already grouped moved
    assert group_of_person(clusters)["obama"] == {obama_group}
    # The same photos again are recognised by their bytes and not read twice.
    again = clusters.run([knn_test / "obama1.jpg"])
    assert [p.status for p in again.photos] == ["known"]


def test_corrections_survive_later_runs_and_rebuilds(
    clusters: FaceClusters, knn_test: Path
) -> None:
    groups = {p: next(iter(g)) for p, g in group_of_person(clusters).items()}
    assert groups["obama"] is not None and groups["biden"] is not None
    kit = next(f for f in clusters.store.faces() if person_of(f.source) == "kit_harington")
    # Look-alikes by a person's word: Obama and Biden are one group; one Kit photo is
    # "not this person"; the other Kit photo is moved to Rose.
    merged = clusters.merge([groups["obama"], groups["biden"]])["group"]
    clusters.reject([kit.id])
    other_kit = next(
        f
        for f in clusters.store.faces()
        if person_of(f.source) == "kit_harington" and f.id != kit.id
    )
    clusters.move([other_kit.id], groups["rose_leslie"])
    merged_faces = {f.id for f in clusters.store.faces(group_id=merged)}
    assert len(merged_faces) == 4
    for rebuild in (False, True):
        # A new photo of a person no correction touched joins that person's group.
        clusters.run([knn_test / "alex_lacamoire1.jpg"], rebuild=rebuild)
        assert group_of_person(clusters)["alex_lacamoire"] == {groups["alex_lacamoire"]}
        assert {f.id for f in clusters.store.faces(group_id=merged)} >= merged_faces
        assert clusters.store.faces([other_kit.id])[0].group_id == groups["rose_leslie"]
        assert clusters.store.faces([kit.id])[0].group_id not in (
            groups["kit_harington"],
            groups["rose_leslie"],
        )


def test_naming_a_group_enrolls_it_and_identify_finds_the_person(
    indexed_train: Path, knn_test: Path, tmp_path: Path
) -> None:
    shutil.copy(indexed_train / "g.library.db", tmp_path / "g.library.db")
    with FaceLens(gallery=tmp_path / "g.db") as lens:
        assert [m.identity for m in lens.identify(knn_test / "obama1.jpg")] == [None]
        clusters = lens.clusters()  # the index beside the lens's gallery
        obama_group = next(iter(group_of_person(clusters)["obama"]))
        result = clusters.name(obama_group, "Barack Obama")
        clusters.close()
        assert result["gallery"]["enrolled"] == 2
        assert result["templates_in_gallery"] == 2
        assert [m.identity for m in lens.identify(knn_test / "obama1.jpg")] == ["Barack Obama"]


def test_faces_leaving_a_named_group_leave_the_gallery(clusters: FaceClusters) -> None:
    obama_group = next(iter(group_of_person(clusters)["obama"]))
    clusters.name(obama_group, "Obama")
    leaving = clusters.store.faces(group_id=obama_group)[0]
    changes = clusters.reject([leaving.id])
    assert changes["gallery"]["removed"] == 1
    assert clusters.gallery.get_person("Obama").templates == 1
    renamed = clusters.name(obama_group, "Barack Obama")  # renaming renames the gallery person
    assert renamed["templates_in_gallery"] == 1
    assert [p.name for p in clusters.gallery.list_people()] == ["Barack Obama"]
    # Renaming onto another gallery person is refused before anything changes.
    clusters.gallery.add_person("Someone Else")
    with pytest.raises(CorrectionError):
        clusters.name(obama_group, "Someone Else")
    assert clusters.store.group(obama_group).name == "Barack Obama"


def test_command_line_run_json_html_and_corrections(
    tmp_path: Path, knn_train: Path, knn_test: Path
) -> None:
    runner = CliRunner()
    gallery = str(tmp_path / "g.db")
    result = runner.invoke(
        cli,
        [
            "--gallery",
            gallery,
            "cluster",
            str(knn_train),
            str(knn_test / "obama1.jpg"),
            "--html",
            str(tmp_path / "sheets"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stats"]["photos"] == 10 and Path(data["index"]).name == "g.library.db"
    obama = next(
        g for g in data["groups"] if any(Path(f["source"]).name == "obama1.jpg" for f in g["faces"])
    )
    assert obama["size"] == 3
    page = (tmp_path / "sheets" / f"group-{obama['id']}.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 3 and "http" not in page
    named = runner.invoke(
        cli, ["--gallery", gallery, "cluster", "name", str(obama["id"]), "Obama", "--json"]
    )
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)["gallery"]["enrolled"] == 3
    missing = runner.invoke(
        cli, ["--gallery", gallery, "cluster", "merge", str(obama["id"]), "9999"]
    )
    assert missing.exit_code == 1 and "no group 9999" in missing.output


def test_contact_sheet_renders_in_a_browser(tmp_path: Path, clusters: FaceClusters) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed")
    from facelens.cluster.sheet import write_contact_sheets

    index = write_contact_sheets(clusters, tmp_path / "sheets")
    import subprocess

    shot = tmp_path / "index.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            f"--screenshot={shot}",
            "--window-size=900,900",
            index.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    # Faces were drawn: the page is far from a blank white sheet.
    assert pixels.getextrema()[0] < 60


def file_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log, as stored on disk."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def pieces_in(blob: bytes, raw: bytes, skip: int = 0) -> int:
    """How many 32-byte pieces of ``blob`` (one every 128 bytes from ``skip``) appear in ``raw``."""
    return sum(blob[i : i + 32] in raw for i in range(skip, len(blob) - 32, 128))


JPEG_HEADERS = 640  # bytes at the start of a crop that every crop shares (quantization tables)


def test_erasing_a_person_also_forgets_their_named_group(
    clusters: FaceClusters, tmp_path: Path
) -> None:
    """`people remove NAME` (FaceLens.erase) reaches the cluster index beside the gallery."""
    from facelens import FaceLens

    obama_group = next(iter(group_of_person(clusters)["obama"]))
    faces = clusters.store.faces(group_id=obama_group)
    vectors = clusters.store.vectors([f.id for f in faces])
    clusters.name(obama_group, "Barack Obama")
    path = clusters.store.path
    assert all(pieces_in(v.tobytes(), file_bytes(path)) for v in vectors)
    with FaceLens(gallery=tmp_path / "g.db", embedder=clusters.pipeline.embedder_id) as lens:
        assert lens.erase("Barack Obama") >= 1
    assert clusters.store.group_named("Barack Obama") is None
    assert not clusters.store.faces(group_id=obama_group)
    clusters.close()
    raw = file_bytes(path)
    assert all(pieces_in(v.tobytes(), raw) == 0 for v in vectors)


def test_forgetting_a_group_leaves_no_byte_of_its_faces(clusters: FaceClusters) -> None:
    obama_group = next(iter(group_of_person(clusters)["obama"]))
    faces = clusters.store.faces(group_id=obama_group)
    crops = [clusters.store.crop(f.id) for f in faces]
    vectors = clusters.store.vectors([f.id for f in faces])
    path = clusters.store.path
    before = file_bytes(path)
    assert all(c and pieces_in(c, before, JPEG_HEADERS) for c in crops)  # there before
    assert all(pieces_in(v.tobytes(), before) for v in vectors)
    result = clusters.forget(obama_group)
    assert result["faces_erased"] == 2
    clusters.close()
    raw = file_bytes(path)
    for crop, vector in zip(crops, vectors, strict=True):
        assert crop is not None and pieces_in(crop, raw, JPEG_HEADERS) == 0
        assert pieces_in(vector.tobytes(), raw) == 0
    # The photos stay known: running on them again does not bring the faces back.
    reopened = FaceClusters.open(path.with_name("g.db"), pipeline=clusters.pipeline)
    report = reopened.run([Path(faces[0].source)])
    assert [p.status for p in report.photos] == ["known"]
    assert "obama" not in group_of_person(reopened)
    reopened.close()
