"""The library: one store beside the gallery for every photo and video scanned (real photos).

A few LFW people, a talking-head video and a damaged file are copied to a
temporary folder at test time (never into the repository), scanned once into
a library, and each test works on its own copy of that library and gallery.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facelens import FaceLens
from facelens.cluster.store import ClusterStore
from facelens.errors import CorrectionError, GroupMatchesOtherPersonError
from facelens.ingest import expand_sources
from facelens.ingest.library import Library, person_threshold
from facelens.match.calibration import calibration_for, operating_point
from facelens.models.registry import DEFAULT_EMBEDDER
from tests.conftest import data_path

PEOPLE = ("Albert_Costa", "Angela_Bassett", "Benjamin_Netanyahu", "Bob_Graham")
VIDEO = "videos/OpenTalker+SadTalker/examples/ref_video/WDA_KatieHill_000.mp4"


def _collection(root: Path) -> Path:
    folder = root / "photos"
    lfw = data_path("lfw/images_deepfunneled")
    for person in PEOPLE:
        (folder / person).mkdir(parents=True)
        for photo in sorted((lfw / person).glob("*.jpg"))[:5]:
            shutil.copy(photo, folder / person / photo.name)
    (folder / "video").mkdir()
    shutil.copy(data_path(VIDEO), folder / "video" / "katie.mp4")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a whole JPEG")
    return folder


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A collection and the gallery folder whose library holds it, scanned once."""
    root = tmp_path_factory.mktemp("library")
    folder = _collection(root)
    with FaceLens(gallery=root / "people.db") as lens:
        library = lens.library(video_fps=1.0)
        try:
            summary = library.scan(expand_sources([folder]))
        finally:
            library.close()
    assert summary.failed == 1 and summary.processed == 4 * 5 + 1 + 1
    return root, folder


def _copy(scanned: tuple[Path, Path], tmp_path: Path) -> Path:
    root, _ = scanned
    for name in ("people.db", "people.library.db"):
        if (root / name).exists():
            shutil.copy(root / name, tmp_path / name)
    return tmp_path / "people.db"


def _group_of(library: Library, person: str) -> int:
    """The group holding most of ``person``'s photos."""
    counts: dict[int, int] = {}
    for face in library.store.faces():
        if f"/{person}/" in face.source and face.group_id is not None:
            counts[face.group_id] = counts.get(face.group_id, 0) + 1
    return max(counts, key=lambda g: counts[g])


def test_scan_keeps_items_faces_and_groups_beside_the_gallery(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    root = scanned[0]
    assert (root / "people.library.db").is_file()
    with FaceLens(gallery=root / "people.db") as lens:
        library = lens.library()
        try:
            counts = library.store.item_counts()
            assert (counts.done, counts.failed, counts.pending) == (21, 1, 0)
            failed = library.store.items("failed")
            assert failed[0].source.endswith("broken.jpg") and failed[0].error
            video_faces = [f for f in library.store.faces() if f.kind == "video"]
            assert video_faces and all(f.time is not None for f in video_faces)
            assert {f.frame_index for f in video_faces} != {None}
            photo_faces = [f for f in library.store.faces() if f.kind == "image"]
            assert all(f.time is None and f.frame_index is None for f in photo_faces)
            assert library.store.crop(photo_faces[0].id)[:2] == b"\xff\xd8"  # JPEG
            # The video's faces (one person over many frames) make one group, not one per frame.
            video_groups = {f.group_id for f in video_faces}
            assert len(video_groups) == 1
            total, page = library.groups_page(0, 3)
            assert total >= 5 and len(page) == 3
            assert page[0].faces >= page[1].faces >= page[2].faces
        finally:
            library.close()


def test_a_second_scan_reads_only_new_files_and_resumes_pending_ones(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    gallery = _copy(scanned, tmp_path)
    _, folder = scanned
    extra = tmp_path / "more"
    extra.mkdir()
    lfw = data_path("lfw/images_deepfunneled")
    new_photos = sorted((lfw / "Allyson_Felix").glob("*.jpg"))[:3]
    for photo in new_photos:
        shutil.copy(photo, extra / photo.name)
    shutil.copy(next((folder / PEOPLE[0]).glob("*.jpg")), extra / "same_bytes.jpg")
    with FaceLens(gallery=gallery) as lens:
        library = lens.library()
        try:
            again = library.scan(expand_sources([folder]))
            assert (again.registered, again.processed) == (0, 0)
            # Stop after the first item: the rest stays pending, recorded as such.
            with pytest.raises(KeyboardInterrupt):

                def stop(done: int, total: int, source: str) -> None:
                    raise KeyboardInterrupt

                library.scan(expand_sources([extra]), progress=stop, batch_size=1)
            # The copy under another name is known by its bytes: done, not read again.
            done = {i.source: i for i in library.store.items("done")}
            assert done[str(extra / "same_bytes.jpg")].faces == 0
            assert library.store.item_counts().pending == 3
        finally:
            library.close()
    with FaceLens(gallery=gallery) as lens:  # as after a restart
        library = lens.library()
        try:
            resumed = library.scan([])
            assert (resumed.processed, resumed.faces) == (3, 3)
            assert library.store.item_counts().pending == 0
        finally:
            library.close()


def test_naming_a_group_enrolls_its_best_faces_and_links_the_rest(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    gallery = _copy(scanned, tmp_path)
    with FaceLens(gallery=gallery) as lens:
        library = lens.library(enroll_best=2)
        try:
            group = _group_of(library, "Angela_Bassett")
            size = library.store.group(group).faces
            assert size >= 3
            library.name(group, "Angela Bassett")
            assert lens.gallery.get_person("Angela Bassett").templates == 2
            point = lens.operating_point()
            found = library.appearances("Angela Bassett", point, lens.calibration)
            linked = [a for a in found if a.how == "linked"]
            assert len(linked) == size and all(a.time is None for a in linked)
            assert all("Angela_Bassett" in a.source for a in found)
            # Naming another group with the same name joins the person (a merge).
            other = _group_of(library, "Bob_Graham")
            result = library.name(other, "Angela Bassett")
            assert result["group"] == group
            assert library.store.group(group).faces > size
            # ... and undo puts it back.
            assert library.undo()["undone"] == "name"
            assert library.store.group(group).faces == size
            assert library.store.group(other).name is None
        finally:
            library.close()


def test_not_this_person_and_erase_reach_the_library(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    gallery = _copy(scanned, tmp_path)
    with FaceLens(gallery=gallery) as lens:
        library = lens.library()
        try:
            group = _group_of(library, "Benjamin_Netanyahu")
            library.name(group, "Bibi")
            point = lens.operating_point()
            before = library.appearances("Bibi", point, lens.calibration)
            wrong = before[0].face
            library.reject_appearance("Bibi", wrong)
            after = library.appearances("Bibi", point, lens.calibration)
            assert wrong not in {a.face for a in after}
            assert len(after) == len(before) - 1
            linked = {a.face for a in after if a.how == "linked"}
        finally:
            library.close()
        # Renamed in the gallery, the library follows; erased by the new name, neither the new
        # nor the old name stays in the library (its corrections named "Bibi").
        lens.rename("Bibi", "Mr Netanyahu")
        store = ClusterStore(tmp_path / "people.library.db", lens.pipeline.embedder_id)
        try:
            assert store.group_named("Mr Netanyahu") is not None
            assert store.not_person("Mr Netanyahu") == {wrong}
        finally:
            store.close()
        lens.erase("Mr Netanyahu")
        store = ClusterStore(tmp_path / "people.library.db", lens.pipeline.embedder_id)
        try:
            for name in ("Bibi", "Mr Netanyahu"):
                assert store.group_named(name) is None
                assert store.not_person(name) == set()
            assert not linked & {f.id for f in store.faces()}
            assert wrong in {f.id for f in store.faces()}  # not theirs: it stays
        finally:
            store.close()
        raw = (tmp_path / "people.library.db").read_bytes()
        assert b"Bibi" not in raw and b"Mr Netanyahu" not in raw


def test_a_group_of_an_enrolled_persons_faces_looks_like_them(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    """Enrolled from a photo the library does not hold, Albert Costa's group says it looks
    like him; nobody else's does; marking its faces "not this person" takes it back."""
    gallery = _copy(scanned, tmp_path)
    photo = sorted((data_path("lfw/images_deepfunneled") / "Albert_Costa").glob("*.jpg"))[-1]
    with FaceLens(gallery=gallery) as lens:
        library = lens.library()
        try:
            groups = [g.id for g in library.store.groups()]
            point, calibration = lens.operating_point(), lens.calibration
            assert library.resemblances(groups, point, calibration) == {}  # nobody enrolled
            assert lens.enroll("Albert Costa", [photo]).accepted
            costa = _group_of(library, "Albert_Costa")
            found = library.resemblances(groups, point, calibration)
            assert list(found) == [costa], found
            looks = found[costa]
            assert looks.name == "Albert Costa" and looks.of == library.store.group(costa).faces
            assert 2 * looks.faces >= looks.of and looks.score >= point.threshold

            # named after someone else, the group is refused as a photo of his would be
            def threshold_for(k: int) -> float:
                return person_threshold(point, calibration, k)

            with pytest.raises(GroupMatchesOtherPersonError, match="looks like 'Albert Costa'"):
                library.name(costa, "Somebody Else", threshold_for=threshold_for)
            assert library.store.group(costa).name is None
            for face in library.store.faces(group_id=costa):
                library.reject_appearance("Albert Costa", face.id)
            assert library.resemblances(groups, point, calibration) == {}
            library.name(costa, "Somebody Else", threshold_for=threshold_for)  # no longer him
        finally:
            library.close()


def test_search_by_photo_finds_that_persons_appearances(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = scanned
    probe = sorted((data_path("lfw/images_deepfunneled") / "Albert_Costa").glob("*.jpg"))[-1]
    with FaceLens(gallery=root / "people.db") as lens:
        library = lens.library()
        try:
            face = lens.pipeline.detect(probe)[0]
            assert face.template is not None
            found = library.search(face.template.vector, lens.operating_point(), lens.calibration)
            assert found and all("Albert_Costa" in a.source for a in found if a.match)
            assert found[0].face is not None and found[0].llr is not None
        finally:
            library.close()


def test_cli_ingest_cluster_and_search_share_the_library(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from facelens.cli.main import cli

    lfw = data_path("lfw/images_deepfunneled")
    folder = tmp_path / "photos"
    for person in PEOPLE[:2]:
        (folder / person).mkdir(parents=True)
        for photo in sorted((lfw / person).glob("*.jpg"))[:3]:
            shutil.copy(photo, folder / person / photo.name)
    gallery = str(tmp_path / "people.db")
    ingested = CliRunner().invoke(cli, ["--gallery", gallery, "ingest", str(folder), "--json"])
    assert ingested.exit_code == 0, ingested.output
    report = json.loads(ingested.output)
    assert report["processed"] == 6 and report["library"].endswith("people.library.db")
    shown = CliRunner().invoke(cli, ["--gallery", gallery, "cluster", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["stats"]["photos"] == 6  # the same file
    probe = str(sorted((lfw / PEOPLE[0]).glob("*.jpg"))[-1])
    found = CliRunner().invoke(cli, ["--gallery", gallery, "search", probe, "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["appearances"]
    assert hits and all(PEOPLE[0] in a["source"] for a in hits)


def test_a_person_with_more_templates_needs_a_stricter_match_to_be_shown() -> None:
    """k templates give a stranger k chances: the threshold is the one for fmr / k."""
    calibration = calibration_for(DEFAULT_EMBEDDER)
    point = operating_point(calibration, fmr=1e-4)
    assert person_threshold(point, calibration, 1) == point.threshold
    eight = person_threshold(point, calibration, 8)
    assert eight == pytest.approx(calibration.threshold_for(1e-4 / 8))
    assert eight > point.threshold
    floor = calibration.threshold_for(max(calibration.min_fmr, calibration.fmr[-1]))
    assert person_threshold(point, calibration, 10**9) == pytest.approx(floor)  # clamped


def test_a_wrong_face_moves_to_a_named_person_and_undo_puts_it_back(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    """A face of one group moved to a person: it joins their group, is kept apart from the
    faces it left, a "not this person" said before is withdrawn; undo puts it back."""
    gallery = _copy(scanned, tmp_path)
    with FaceLens(gallery=gallery) as lens:
        library = lens.library(enroll_best=2)
        try:
            angela = _group_of(library, "Angela_Bassett")
            library.name(angela, "Angela Bassett")
            bob = _group_of(library, "Bob_Graham")
            bob_faces = [f.id for f in library.store.faces(group_id=bob)]
            wrong = bob_faces[0]
            point = lens.operating_point()
            library.reject_appearance("Angela Bassett", wrong)  # said before: not her
            result = library.move_to_person([wrong], "Angela Bassett")
            assert result["group"] == angela and result["faces"] == [wrong]
            assert library.store.faces([wrong])[0].group_id == angela
            assert wrong in {
                a.face for a in library.appearances("Angela Bassett", point, lens.calibration)
            }
            cannot = set(library.store.links("cannot"))
            assert all((min(wrong, f), max(wrong, f)) in cannot for f in bob_faces[1:])
            assert library.undo()["undone"] == "move"
            assert library.store.faces([wrong])[0].group_id == bob
            assert wrong not in {
                a.face for a in library.appearances("Angela Bassett", point, lens.calibration)
            }
        finally:
            library.close()


def test_faces_moved_to_a_person_without_a_group_make_their_group(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    """A person enrolled from photos (no group in the library) or a new name: the faces get
    a group named after them and their best are enrolled; undo takes the templates back."""
    gallery = _copy(scanned, tmp_path)
    lfw = data_path("lfw/images_deepfunneled")
    with FaceLens(gallery=gallery) as lens:
        enrolled = lens.enroll("Albert Costa", [sorted((lfw / "Albert_Costa").glob("*.jpg"))[5]])
        assert enrolled.person is not None and enrolled.person.templates == 1
        library = lens.library(enroll_best=2)
        try:
            albert = _group_of(library, "Albert_Costa")
            faces = [f.id for f in library.store.faces(group_id=albert)]
            result = library.move_to_person(faces[:2], "Albert Costa")
            group = library.store.group(result["group"])
            assert group.name == "Albert Costa" and group.faces == 2
            assert result["gallery"]["enrolled"] == 2
            assert lens.gallery.get_person("Albert Costa").templates == 3
            assert library.store.faces([faces[2]])[0].group_id == albert
            library.undo()
            assert library.store.group_named("Albert Costa") is None
            assert lens.gallery.get_person("Albert Costa").templates == 1
            assert {f.group_id for f in library.store.faces(faces)} == {albert}
            new = library.move_to_person(faces[:1], "Robert")  # a new person
            assert lens.gallery.get_person("Robert").templates == 1
            assert library.store.group(new["group"]).name == "Robert"
        finally:
            library.close()


def test_a_split_makes_a_new_group_kept_apart_and_undo_joins_them(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    gallery = _copy(scanned, tmp_path)
    with FaceLens(gallery=gallery) as lens:
        library = lens.library()
        try:
            group = _group_of(library, "Benjamin_Netanyahu")
            faces = [f.id for f in library.store.faces(group_id=group)]
            assert len(faces) >= 3
            result = library.split(group, faces[:2])
            new = result["new_group"]
            assert {f.group_id for f in library.store.faces(faces[:2])} == {new}
            assert library.store.group(group).faces == len(faces) - 2
            cannot = set(library.store.links("cannot"))
            assert (min(faces[0], faces[2]), max(faces[0], faces[2])) in cannot
            with pytest.raises(CorrectionError):
                library.split(group, faces[2:])  # nothing would be left
            assert library.store.group(group).faces == len(faces) - 2  # the refusal changed nothing
            assert library.undo()["undone"] == "split"
            assert {f.group_id for f in library.store.faces(faces)} == {group}
        finally:
            library.close()


def test_undoing_a_naming_that_made_a_person_erases_them_again(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    """Naming a group makes a new person; undo puts the faces back and leaves no empty person
    behind. A person who had photos of their own before is kept, with those photos."""
    gallery = _copy(scanned, tmp_path)
    lfw = data_path("lfw/images_deepfunneled")
    with FaceLens(gallery=gallery) as lens:
        library = lens.library()
        try:
            group = _group_of(library, "Bob_Graham")
            library.name(group, "Bob Graham")
            assert lens.gallery.get_person("Bob Graham").templates > 0
            assert library.undo()["undone"] == "name"
            assert library.store.group(group).name is None
            assert "Bob Graham" not in {p.name for p in lens.gallery.list_people()}
            # Someone enrolled from a photo before: undo takes back only the group's faces.
            photo = sorted((lfw / "Albert_Costa").glob("*.jpg"))[-1]
            assert lens.enroll("Albert Costa", [photo]).accepted
            library.name(_group_of(library, "Albert_Costa"), "Albert Costa")
            assert library.undo()["undone"] == "name"
            assert lens.gallery.get_person("Albert Costa").templates == 1
        finally:
            library.close()
