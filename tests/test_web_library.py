"""The library in the browser: scan, name, merge, correct, a person's page, search by photo.

A real ``facelens serve --library-root`` runs on a new encrypted gallery; its one
library root is the test's own folder, into which a few LFW people's photos, a
broken file and one talking-head video are copied at test time. Chromium
(Debian's) drives the real page at 1280 and 390 px wide, by mouse at 1280 and
by keyboard alone at 390. Screenshots of every step go to
``test-artifacts/web/<test>/``.
"""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facelens.service.launcher import ServerProcess
from tests.conftest import data_path
from tests.test_web import CHROMIUM as CHROMIUM_PATH
from tests.test_web import WAIT_MS, Shots, encrypted_gallery, expect, log_in, playwright_api
from tests.test_web import browser as browser

Page = playwright_api.Page

PEOPLE = ("Albert_Costa", "Angela_Bassett", "Benjamin_Netanyahu")
PER_PERSON = 4  # photos of each person in the library; the 5th of Netanyahu is the search probe
VIDEO = "videos/OpenTalker+SadTalker/examples/ref_video/WDA_AlexandriaOcasioCortez_000.mp4"
AOC = "Alexandria Ocasio-Cortez"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM_PATH.exists(), reason="Debian chromium is not installed"),
]


class LibrarySite:
    """A running server with a library root and admin/enroll/query keys."""

    def __init__(self, server: ServerProcess, keys: dict[str, str], root: Path) -> None:
        self.server = server
        self.keys = keys
        self.url = server.url
        self.root = root

    def client(self, role: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.keys[role]}, timeout=300)

    def groups(self) -> dict[str, dict[str, Any]]:
        """Each unknown group's detail, keyed by the LFW person (or "video") most of it holds."""
        found: dict[str, dict[str, Any]] = {}
        with self.client() as client:
            for summary in client.get("/api/library/groups", params={"limit": 100}).json():
                detail = client.get(f"/api/library/groups/{summary['id']}").json()
                owners = [
                    "video" if f["kind"] == "video" else Path(f["source"]).parent.name
                    for f in detail["faces"]
                ]
                owner = max(set(owners), key=owners.count)
                if owner not in found or len(detail["faces"]) > len(found[owner]["faces"]):
                    found[owner] = detail
        return found


def copy_library(root: Path) -> Path:
    """``root/photos``: PER_PERSON photos of each of PEOPLE (a folder each) and the video in
    ``videos/``, copied from the shared data at test time; the photos folder."""
    folder = root / "photos"
    lfw = data_path("lfw/images_deepfunneled")
    for person in PEOPLE:
        (folder / person).mkdir(parents=True)
        for photo in sorted((lfw / person).glob("*.jpg"))[:PER_PERSON]:
            shutil.copy(photo, folder / person / photo.name)
    (folder / "videos").mkdir()
    shutil.copy(data_path(VIDEO), folder / "videos" / "aoc.mp4")
    return folder


@pytest.fixture
def library_site(tmp_path: Path) -> Iterator[LibrarySite]:
    root = tmp_path / "library"
    folder = copy_library(root)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    outside = tmp_path / "outside"
    outside.mkdir()
    gallery, keys, env = encrypted_gallery(tmp_path)
    args = ["--library-root", str(root), "--threads", "1"]
    with ServerProcess(
        gallery, env=env, extra_args=args, log_path=tmp_path / "server.log"
    ) as server:
        yield LibrarySite(server, keys, root)


@pytest.fixture
def make_page(browser: Any) -> Iterator[Any]:
    """New pages: a phone (under 600 px wide: 844 high, touch) or a desktop (900 high); no
    JavaScript error may happen on any of them."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(site: LibrarySite, width: int) -> Page:
        phone = width < 600
        context = browser.new_context(
            base_url=site.url,
            viewport={"width": width, "height": 844 if phone else 900},
            has_touch=phone,
        )
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _finished(client: httpx.Client, job: str) -> str:
    """Wait for a job to end; its final state."""
    for _ in range(2400):
        state = str(client.get(f"/api/jobs/{job}").json()["state"])
        if state in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.25)
    raise AssertionError(f"job {job} did not finish")


def fits(page: Page, where: str) -> None:
    """Nothing on the page scrolls sideways."""
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if width > inner:
        wide = page.evaluate(
            """inner => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > inner + 0.5 || e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0)
                .slice(-5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' '
                    + Math.round(e.getBoundingClientRect().right))""",
            inner,
        )
        raise AssertionError(f"{where}: the page is {width} px wide in a {inner} px window: {wide}")


def press(page: Page, selector: str, key: str = "Enter") -> None:
    """Reach a control by keyboard focus and activate it with a key (no mouse)."""
    target = page.locator(selector)
    target.focus()
    expect(target).to_be_focused()
    page.keyboard.press(key)


def activate(page: Page, selector: str, keyboard: bool) -> None:
    if keyboard:
        press(page, selector)
    else:
        page.click(selector)


def tick(page: Page, selector: str, keyboard: bool) -> None:
    """Toggle a checkbox: Space on it, or a click."""
    if keyboard:
        press(page, selector, " ")
    else:
        page.click(selector)


FILES = len(PEOPLE) * PER_PERSON + 2
"""Files in the library folder "photos": the people's photos, the video and a broken JPEG."""


def _scan_from_the_page(page: Page, keyboard: bool, shot: Shots) -> None:
    expect(page.locator("#scan-card")).to_be_visible()
    expect(page.locator("#groups-empty")).to_be_visible()
    page.fill("#scan-folder", "photos")
    if keyboard:
        press(page, "#scan-folder")
    else:
        page.click("#scan-start")
    expect(page.locator("#scan-progress")).to_be_visible()
    expect(page.locator("#scan-result")).to_contain_text(
        f"Scanned photos: {FILES} files found. Read {FILES - 1} new files: ",
        timeout=WAIT_MS * 3,
    )
    expect(page.locator("#scan-failures-box")).to_be_visible()
    expect(page.locator("#scan-result")).to_contain_text("1 file could not be read.")
    expect(page.locator("#scan-failures-title")).to_have_text("1 file could not be read")
    expect(page.locator("#scan-failures")).to_contain_text("broken.jpg")
    expect(page.locator("#groups-list li.group").first).to_be_visible()
    shot("scanned")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_library_from_scan_to_a_persons_video_moment(
    library_site: LibrarySite, make_page: Any, request: pytest.FixtureRequest, width: int
) -> None:
    """Scan a folder, name a group, merge two (and undo), reject a face, open a person, play
    a video moment, name a face met in Identify, search by photo; at 390 px by keyboard."""
    site = library_site
    keyboard = width < 600
    page = make_page(site, width)
    shot = Shots(page, request.node.name)
    log_in(page, site)  # the People page is the home page
    expect(page.locator("#view-people")).to_be_visible()
    expect(page.locator("#people-home")).to_be_visible()
    shot("home-empty")
    fits(page, "home")

    _scan_from_the_page(page, keyboard, shot)
    fits(page, "groups")
    groups = site.groups()
    assert {"video", *PEOPLE} <= set(groups), groups.keys()
    with site.client() as client:
        total = int(client.get("/api/library/groups").headers["X-Total-Count"])
    expect(page.locator("#groups-count")).to_contain_text(f"{total} group")

    # Name the video's group: it becomes a person, listed with the known people.
    video_group = groups["video"]["id"]
    card = f"#groups-list li[data-group='{video_group}']"
    page.fill(f"{card} .group-name-input", AOC)
    if keyboard:
        press(page, f"{card} .group-name-input")
    else:
        page.click(f"{card} .group-name button[type=submit]")
    expect(page.locator("#groups-status")).to_contain_text(f"now {AOC}")
    expect(page.locator(f"#people-list button[data-name='{AOC}']")).to_be_visible()
    expect(page.locator(card)).to_have_count(0)
    # the keyboard goes on with the group now in its place, not at the top of the page
    expect(page.locator("#groups-list .group-name-input:focus")).to_have_count(1)
    shot("named")

    # Merge two groups, then undo it.
    first, second = groups[PEOPLE[0]], groups[PEOPLE[1]]
    for group in (first, second):
        tick(page, f"#groups-list li[data-group='{group['id']}'] .group-select", keyboard)
    expect(page.locator("#groups-merge")).to_have_text("Merge 2 selected groups")
    activate(page, "#groups-merge", keyboard)
    expect(page.locator("#groups-status")).to_contain_text("2 groups merged")
    merged = len(first["faces"]) + len(second["faces"])
    expect(page.locator("#groups-list li.group .group-head").first).to_contain_text(
        f"{merged} faces"
    )
    expect(page.locator("#groups-list .group-select:checked")).to_have_count(0)
    expect(page.locator("#groups-merge")).to_be_disabled()
    shot("merged")
    activate(page, "#library-undo", keyboard)
    expect(page.locator("#groups-status")).to_contain_text("Undid the merge.")
    expect(page.locator(f"#groups-list li[data-group='{first['id']}']")).to_be_visible()
    expect(page.locator(f"#groups-list li[data-group='{second['id']}']")).to_be_visible()

    # Hide a group of strangers: it leaves the list, is among the hidden ones; undo.
    hidden = f"#groups-list li[data-group='{second['id']}']"
    activate(page, f"{hidden} .group-hide", keyboard)
    expect(page.locator("#groups-status")).to_contain_text("is hidden")
    expect(page.locator(hidden)).to_have_count(0)
    tick(page, "#groups-hidden", keyboard)
    expect(page.locator(hidden)).to_be_visible()
    expect(page.locator("#groups-count")).to_contain_text("1 hidden group")
    tick(page, "#groups-hidden", keyboard)
    activate(page, "#library-undo", keyboard)
    expect(page.locator("#groups-status")).to_contain_text("Undid hiding the group.")
    expect(page.locator(hidden)).to_be_visible()

    # Reject a face of a group: it leaves the group.
    third = groups[PEOPLE[2]]
    card = f"#groups-list li[data-group='{third['id']}']"
    activate(page, f"{card} .group-open", keyboard)
    rejected = third["faces"][-1]["face"]
    face = f"{card} .face-list li[data-face='{rejected}']"
    expect(page.locator(face)).to_be_visible()
    shot("group-faces")
    fits(page, "group faces")
    activate(page, f"{face} .face-reject", keyboard)
    expect(page.locator("#groups-status")).to_contain_text("left the group")
    with site.client() as client:
        after = client.get(f"/api/library/groups/{third['id']}").json()
    assert rejected not in [f["face"] for f in after["faces"]]
    assert len(after["faces"]) == len(third["faces"]) - 1

    # Move a face to another group (the select of each face lists the groups shown; the
    # face moves when Move is pressed). The group's faces stay open after a change.
    expect(page.locator(f"{card} .group-open")).to_have_attribute("aria-expanded", "true")
    moved = after["faces"][0]["face"]
    page.select_option(
        f"{card} .face-list li[data-face='{moved}'] select.face-move", str(first["id"])
    )
    activate(page, f"{card} .face-list li[data-face='{moved}'] .face-move-go", keyboard)
    expect(page.locator("#groups-status")).to_contain_text(f"moved to group {first['id']}")
    with site.client() as client:
        target = client.get(f"/api/library/groups/{first['id']}").json()
    assert moved in [f["face"] for f in target["faces"]]

    # Move a ticked face to a named person (the video's), then undo it.
    expect(page.locator(f"{card} .group-open")).to_have_attribute("aria-expanded", "true")
    to_person = after["faces"][1]["face"]
    tick(page, f"{card} .face-list li[data-face='{to_person}'] .face-select", keyboard)
    expect(page.locator(f"{card} .face-count")).to_have_text("1 face selected:")
    page.fill(f"{card} .face-person-input", AOC)
    shot("group-face-to-person")
    fits(page, "group face tools")
    if keyboard:
        press(page, f"{card} .face-person-input")
    else:
        page.click(f"{card} .face-to-person")
    expect(page.locator("#groups-status")).to_contain_text(f"1 face moved to {AOC}")
    with site.client() as client:
        linked = client.get(f"/api/people/{AOC}/appearances").json()
    assert to_person in {a["face"] for a in linked if a["how"] == "linked"}
    activate(page, "#library-undo", keyboard)
    expect(page.locator("#groups-status")).to_contain_text("Undid moving the faces.")
    with site.client() as client:
        back = client.get(f"/api/library/groups/{third['id']}").json()
    assert to_person in [f["face"] for f in back["faces"]]

    # Split: ticked faces of a group become a new group; every face ticked cannot split.
    card = f"#groups-list li[data-group='{second['id']}']"
    activate(page, f"{card} .group-open", keyboard)
    with site.client() as client:  # a face rejected above may have joined it
        faces = [
            f["face"] for f in client.get(f"/api/library/groups/{second['id']}").json()["faces"]
        ]
    for face_id in faces:
        tick(page, f"{card} .face-list li[data-face='{face_id}'] .face-select", keyboard)
    expect(page.locator(f"{card} .face-split")).to_be_disabled()
    expect(page.locator(f"{card} .face-count")).to_contain_text("must leave at least one")
    tick(page, f"{card} .face-list li[data-face='{faces[0]}'] .face-select", keyboard)
    expect(page.locator(f"{card} .face-split")).to_be_enabled()
    activate(page, f"{card} .face-split", keyboard)
    expect(page.locator("#groups-status")).to_contain_text(f"{len(faces) - 1} face")
    expect(page.locator("#groups-status")).to_contain_text("made group")
    with site.client() as client:
        left = client.get(f"/api/library/groups/{second['id']}").json()
    assert [f["face"] for f in left["faces"]] == [faces[0]]
    shot("split")

    # A face moved to the video's person stays, for their page below.
    card = f"#groups-list li[data-group='{third['id']}']"
    expect(page.locator(f"{card} .group-open")).to_have_attribute("aria-expanded", "true")
    tick(page, f"{card} .face-list li[data-face='{to_person}'] .face-select", keyboard)
    page.fill(f"{card} .face-person-input", AOC)
    activate(page, f"{card} .face-to-person", keyboard)
    expect(page.locator("#groups-status")).to_contain_text(f"1 face moved to {AOC}")

    # The person's page: the video moments. Faces of the first 3 s are "not this person"
    # (through the API), so the moment left starts about 3 s in.
    with site.client() as client:
        seen = client.get(f"/api/people/{AOC}/appearances").json()
        assert [a["face"] for a in seen if a["kind"] != "video"] == [to_person]
        for found in seen:
            if found["kind"] == "video" and found["time"] < 3.0:
                answer = client.post(f"/api/people/{AOC}/appearances/{found['face']}/reject")
                assert answer.status_code == 200, answer.text
        start = min(
            a["time"]
            for a in client.get(f"/api/people/{AOC}/appearances").json()
            if a["kind"] == "video"
        )
    assert start >= 3.0
    activate(page, f"#people-list button[data-name='{AOC}']", keyboard)
    expect(page.locator("#person-detail")).to_be_visible()
    expect(page.locator("#person-name")).to_have_text(AOC)
    expect(page.locator("#person-name")).to_be_focused()
    moment = page.locator("#appearance-videos button.moment").first
    expect(moment).to_contain_text("0:03")
    fits(page, "person")
    activate(page, "#appearance-videos button.moment >> nth=0", keyboard)
    page.wait_for_function(
        "start => { const v = document.querySelector('#appearance-videos video');"
        " return v && v.readyState >= 1 && v.currentTime >= start - 0.3; }",
        arg=start,
        timeout=WAIT_MS,
    )
    now = page.evaluate("() => document.querySelector('#appearance-videos video').currentTime")
    assert start - 0.3 <= now <= 8.5
    shot("person-video-moment")

    # The photo moved to them is "Someone else": it moves to a new person; undo brings it back.
    figure = f"#appearance-photos figure[data-face='{to_person}']"
    expect(page.locator(figure)).to_be_visible()
    activate(page, f"{figure} .someone-else summary", keyboard)
    page.fill(f"{figure} .other-person-input", "Benjamin Netanyahu")
    shot("person-someone-else")
    fits(page, "person someone else")
    if keyboard:
        press(page, f"{figure} .other-person-input")
    else:
        page.click(f"{figure} .move-person button")
    expect(page.locator("#person-status")).to_contain_text("moved to Benjamin Netanyahu")
    expect(page.locator(figure)).to_have_count(0)
    with site.client() as client:
        bibi = client.get("/api/people/Benjamin Netanyahu/appearances").json()
    assert to_person in {a["face"] for a in bibi}
    activate(page, "#person-undo", keyboard)
    expect(page.locator("#person-status")).to_contain_text("Undid moving the faces.")
    expect(page.locator(figure)).to_be_visible()

    # A 200-character name: the heading wraps, the label on the photo ends in "…" inside it.
    long_name = "W" + "o" * 199
    with site.client() as client:
        moved = client.post(
            "/api/library/faces/name", json={"faces": [to_person], "name": long_name}
        )
        assert moved.status_code == 200, moved.text
    page.evaluate("name => { location.hash = `#/people/${encodeURIComponent(name)}`; }", long_name)
    tag = page.locator("#appearance-photos .face-box .tag").first
    expect(tag).to_have_attribute("title", long_name)
    page.wait_for_function(
        """() => { const t = document.querySelector('#appearance-photos .face-box .tag');
            const p = t.closest('.photo').getBoundingClientRect(), r = t.getBoundingClientRect();
            return t.scrollWidth > t.clientWidth && r.left >= p.left - 0.5 && r.right <= p.right + 0.5; }"""
    )
    fits(page, "person with a 200-character name")
    shot("person-long-name")
    with site.client() as client:
        assert client.post("/api/library/undo").json()["undone"]

    # Name a face where it is met: Identify a photo of an unknown person, "New person".
    activate(page, "#nav a[data-view=identify]", keyboard)
    probe = sorted((data_path("lfw/images_deepfunneled") / PEOPLE[0]).glob("*.jpg"))[PER_PERSON]
    page.set_input_files("#identify-file", str(probe))
    form = page.locator("#identify-results li form.name-face").first
    expect(form).to_be_visible()
    form.locator("input").fill(AOC)
    expect(form.locator("button")).to_have_text(f"This is {AOC}")  # an existing person
    form.locator("input").fill("Albert Costa")
    expect(form.locator("button")).to_have_text("New person: Albert Costa")
    if keyboard:
        form.locator("input").press("Enter")
    else:
        form.locator("button").click()
    expect(page.locator("#identify-results")).to_contain_text("Albert Costa is enrolled")
    with site.client() as client:
        people = {p["name"]: p["templates"] for p in client.get("/api/people").json()}
    assert people.get("Albert Costa") == 1
    shot("identify-named")
    fits(page, "identify")

    # Search by photo: a photo of Netanyahu that is not in the library finds his photos.
    activate(page, "#nav a[data-view=search]", keyboard)
    probe = sorted((data_path("lfw/images_deepfunneled") / PEOPLE[2]).glob("*.jpg"))[PER_PERSON]
    page.set_input_files("#search-file", str(probe))
    hits = page.locator("#search-results li.hit.match")
    expect(hits.first).to_be_visible()
    expect(page.locator("#search-status")).to_contain_text("found among")
    assert hits.count() >= PER_PERSON - 1
    expect(hits.first.locator(".verdict-word")).to_contain_text("same person")
    expect(hits.first.locator(".evidence")).to_contain_text("times likelier")
    activate(page, "#search-results li.hit.match >> nth=0 >> button.show-where", keyboard)
    expect(hits.first.locator(".where .face-box")).to_be_visible()
    shot("search")
    fits(page, "search")

    # An upload is scanned too (the drop zone's file picker).
    activate(page, "#nav a[data-view=people]", keyboard)
    extra = sorted((data_path("lfw/images_deepfunneled") / PEOPLE[1]).glob("*.jpg"))[PER_PERSON]
    page.set_input_files("#scan-file", str(extra))
    expect(page.locator("#scan-result")).to_contain_text(
        f"Scanned the upload {extra.name}: 1 file found. Read 1 new file: "
    )
    fits(page, "home after an upload")


def _words(count: int, noun: str) -> str:
    """A count and its noun as the page writes them: 1 face, 3 faces."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


@pytest.mark.parametrize("width", [1280, 390])
def test_the_scan_form_names_its_folder_and_jobs_say_in_words_what_they_did(
    library_site: LibrarySite,
    make_page: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    width: int,
) -> None:
    """The scan form names the server folder it reads (the --library-root as the server was
    given it) and its field is relative to it: left empty, the whole folder is scanned. The
    Jobs view then tells in sentences what that scan did (files found and read, faces and
    the groups they went to, the file that could not be read, listed) and what an
    identify_photos job found, with each photo's outcome read from its result when opened;
    no raw list of facts. By mouse at 1280 px, by keyboard alone at 390 px."""
    site = library_site
    keyboard = width < 600
    root = str(site.root)
    page = make_page(site, width)
    shot = Shots(page, request.node.name)
    log_in(page, site)
    expect(page.locator("#scan-where")).to_have_text(
        f"Photos and videos are read from {root} on the server, or uploaded below."
    )
    expect(page.locator("#scan-prefix")).to_have_text(f"{root}/")  # before the folder field
    expect(page.locator("#scan-folder-label")).to_have_text("Folder to scan, inside it")
    expect(page.locator("#scan-roots")).to_contain_text("Leave it empty to scan the whole")
    fits(page, "scan form")
    shot("scan-form")

    # The field left empty: the whole library folder is scanned.
    if keyboard:
        press(page, "#scan-folder")
    else:
        page.click("#scan-start")
    expect(page.locator("#scan-result")).to_contain_text(
        f"Scanned {root}: {FILES} files found.", timeout=WAIT_MS * 3
    )
    expect(page.locator("#scan-failures")).to_contain_text("photos/broken.jpg")

    # An identify_photos job of two photos and a broken one (started through the API).
    archive = tmp_path / "party.zip"
    lfw = data_path("lfw/images_deepfunneled")
    with zipfile.ZipFile(archive, "w") as bundle:
        for person in PEOPLE[:2]:
            bundle.write(sorted((lfw / person).glob("*.jpg"))[PER_PERSON], f"{person}.jpg")
        bundle.writestr("broken.jpg", b"not an image at all")
    with site.client() as client:
        started = client.post(
            "/api/jobs/identify_photos",
            files={"file": (archive.name, archive.read_bytes(), "application/zip")},
        )
        assert started.status_code == 202, started.text
        assert _finished(client, started.json()["id"]) == "done"
        jobs = {job["kind"]: job for job in client.get("/api/jobs").json()}
    scanned = jobs["library_scan"]["result"]["summary"]
    grouping = scanned["grouping"]
    assert grouping["groups_grown"] == 0 and scanned["duplicates"] == 0, scanned
    identified = jobs["identify_photos"]["result"]["summary"]

    activate(page, "#nav a[data-view=jobs]", keyboard)
    scan = page.locator("#jobs-list tr[data-kind=library_scan]")
    expect(scan.locator("td.kind")).to_have_text("Library scan")
    words = scan.locator(".summary")
    expect(words).to_contain_text(f"Scanned {root}: {FILES} files found.")
    expect(words).to_contain_text(
        f"Read {FILES - 1} new files: {_words(scanned['faces'], 'face')} found, in "
        f"{_words(grouping['groups_created'], 'new group')}."
    )
    expect(words).to_contain_text("1 file could not be read.")
    failures = scan.locator("details.job-failures")
    expect(failures).to_have_attribute("open", "")
    expect(failures.locator("li")).to_have_text(re.compile(r"^photos/broken\.jpg — \S"))
    for raw in ("registered", "items per second", "grouping", "failed in all"):
        expect(words).not_to_contain_text(raw)
    expect(scan.locator("a.download")).to_have_text("Download scan.json")

    photos = page.locator("#jobs-list tr[data-kind=identify_photos]")
    expect(photos.locator("td.kind")).to_have_text("Identify photos")
    expect(photos.locator(".summary")).to_contain_text(
        "Looked for faces in 2 photos (1 more photo could not be read): "
        f"{_words(identified['faces'], 'face')} found."
    )
    expect(photos.locator(".summary")).to_contain_text("Nobody enrolled was recognized.")
    expect(photos.locator(".summary")).not_to_contain_text("identified:")
    opener = "#jobs-list tr[data-kind=identify_photos] details.each-photo summary"
    activate(page, opener, keyboard)  # the photos are read from identify.json when opened
    table = photos.locator("details.each-photo table")
    expect(table.locator("tr", has_text="broken.jpg")).to_contain_text("could not be read")
    expect(table.locator("tr", has_text=f"{PEOPLE[0]}.jpg")).to_contain_text("unknown face")
    if keyboard:  # the focus stays on what opened it while the table is read in
        expect(page.locator(opener)).to_be_focused()
    expect(photos.locator("a.download")).to_have_text("Download identify.json")
    fits(page, "jobs in words")
    shot("jobs-in-words")

    # The Jobs form scans a folder on the server too (POST /api/library/scan): no upload.
    page.select_option("#job-kind", "library_scan")
    expect(page.locator("label[for=job-folder]")).to_have_text(
        f"Folder inside {root} (relative to it, or its full path)"
    )
    expect(page.locator("#job-start")).to_be_disabled()
    page.locator("#job-folder").fill("photos/videos")
    activate(page, "#job-start", keyboard)
    again = page.locator("#jobs-list tr[data-kind=library_scan]").first
    expect(again.locator("td.input")).to_have_text("photos/videos")
    expect(again).to_have_attribute("data-state", "done", timeout=WAIT_MS * 3)
    expect(page.locator("#job-error")).to_be_hidden()
    expect(page.locator("#job-folder")).to_have_value("")
    fits(page, "a folder scanned from the Jobs form")
    shot("folder-scan-job")
    # ... and a zip upload (POST /api/library/scan/upload; the jobs API takes no zip for it)
    again_zip = tmp_path / "again.zip"
    with zipfile.ZipFile(again_zip, "w") as bundle:
        bundle.write(sorted((site.root / "photos" / PEOPLE[0]).glob("*.jpg"))[0], "a.jpg")
    page.set_input_files("#job-file", again_zip)
    activate(page, "#job-start", keyboard)
    zipped = page.locator("#jobs-list tr[data-kind=library_scan]").first
    expect(zipped.locator("td.input")).to_have_text("again.zip")
    expect(zipped).to_have_attribute("data-state", "done", timeout=WAIT_MS * 3)
    expect(page.locator("#job-error")).to_be_hidden()


def test_two_pages_name_one_group_and_a_refused_name_gives_the_gallerys_message(
    library_site: LibrarySite, make_page: Any, request: pytest.FixtureRequest
) -> None:
    """Two browsers (1280 and 390 px) show the same groups; the first to name one wins, the
    other is told and sees the groups as they are now. A name the gallery refuses is refused
    with the gallery's words. The Name button says "This is NAME" or "New person: NAME"."""
    site = library_site
    with site.client() as client:
        started = client.post("/api/library/scan", json={"folder": "photos"})
        assert _finished(client, started.json()["job"]) == "done"
        photo = next((site.root / "photos" / PEOPLE[0]).glob("*.jpg")).read_bytes()
        gallery_says = client.post(
            "/api/people",
            data={"name": "bad/name"},
            files={"photos": ("a.jpg", photo, "image/jpeg")},
        ).json()["error"]["message"]
    groups = site.groups()
    first, second = make_page(site, 1280), make_page(site, 390)
    for page in (first, second):
        log_in(page, site)
    card = f"#groups-list li[data-group='{groups['video']['id']}']"
    for page in (first, second):
        expect(page.locator(card)).to_be_visible()

    first.fill(f"{card} .group-name-input", "   ")
    first.click(f"{card} .group-name button[type=submit]")
    expect(first.locator(f"{card} .group-error")).to_contain_text("Type the person's name")
    first.fill(f"{card} .group-name-input", "bad/name")
    first.click(f"{card} .group-name button[type=submit]")
    expect(first.locator(f"{card} .group-error")).to_have_text(gallery_says)  # by the group
    expect(first.locator("#groups-error")).to_be_hidden()
    first.fill(f"{card} .group-name-input", AOC)
    expect(first.locator(f"{card} .group-name button")).to_have_text(f"New person: {AOC}")
    first.click(f"{card} .group-name button[type=submit]")
    expect(first.locator("#groups-status")).to_contain_text(f"now {AOC}")

    second.fill(f"{card} .group-name-input", "Somebody Else")  # this page has not seen it
    press(second, f"{card} .group-name-input")
    expect(second.locator("#groups-error")).to_contain_text(f"was named '{AOC}' meanwhile")
    expect(second.locator("#groups-error")).to_be_focused()  # its card is gone: shown above
    expect(second.locator(card)).to_have_count(0)  # the groups as they are now
    expect(second.locator(f"#people-list button[data-name='{AOC}']")).to_be_visible()
    Shots(second, request.node.name)("second-page-told")
    fits(second, "second page")
    other = f"#groups-list li[data-group='{groups[PEOPLE[1]]['id']}']"
    second.fill(f"{other} .group-name-input", "bad/name")  # on the phone: told by the group
    press(second, f"{other} .group-name-input")
    expect(second.locator(f"{other} .group-error")).to_have_text(gallery_says)
    expect(second.locator(f"{other} .group-error")).to_be_in_viewport()
    second.fill(f"{other} .group-name-input", AOC)
    expect(second.locator(f"{other} .group-name button")).to_have_text(f"This is {AOC}")
    with site.client() as client:
        people = {p["name"] for p in client.get("/api/people").json()}
        named = client.get(f"/api/library/groups/{groups['video']['id']}").json()["name"]
    assert named == AOC and "Somebody Else" not in people and "bad/name" not in people


def escape(page: Page, back: str) -> None:
    """Press Escape where the focus is; the focus is then on `back` (what opened what closed)."""
    page.keyboard.press("Escape")
    expect(page.locator(back)).to_be_focused()


def test_escape_closes_what_is_open_and_gives_the_focus_back(
    library_site: LibrarySite, make_page: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Escape, at 1280 px (opened by mouse) and 390 px (by keyboard): closes the list of
    files a scan could not read, a group's faces, "Someone else…" on a person's page and the
    photo of a search hit, each time giving the focus back to what opened it; undoes a name
    being typed for a group or a rename. Nothing is saved by it."""
    site = library_site
    bibi = "Benjamin Netanyahu"
    with site.client() as client:
        started = client.post("/api/library/scan", json={"folder": "photos"})
        assert _finished(client, started.json()["job"]) == "done"
        group = site.groups()[PEOPLE[2]]
        named = client.post(f"/api/library/groups/{group['id']}/name", json={"name": bibi})
        assert named.status_code == 200, named.text
    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w") as bundle:  # a zip whose one photo cannot be read
        bundle.writestr("broken.jpg", b"\xff\xd8\xff\xe0 not a whole JPEG")
    probe = sorted((data_path("lfw/images_deepfunneled") / PEOPLE[2]).glob("*.jpg"))[PER_PERSON]

    for width in (1280, 390):
        keyboard = width < 600
        page = make_page(site, width)
        shot = Shots(page, f"{request.node.name}-{width}")
        log_in(page, site)

        # The files a scan could not read: an open <details>; Escape closes it.
        page.set_input_files("#scan-file", str(archive))
        failures = page.locator("#scan-failures-box")
        expect(failures).to_be_visible(timeout=WAIT_MS * 2)
        expect(failures).to_have_attribute("open", "")
        page.focus("#scan-failures-title")
        escape(page, "#scan-failures-title")
        expect(failures).not_to_have_attribute("open", "")
        activate(page, "#scan-failures-title", keyboard)  # opened again, by mouse or key
        expect(failures).to_have_attribute("open", "")
        escape(page, "#scan-failures-title")
        expect(failures).not_to_have_attribute("open", "")

        # A name typed for a group: Escape empties it (and the button says "Name" again).
        card = f"#groups-list li[data-group='{site.groups()[PEOPLE[0]]['id']}']"
        page.fill(f"{card} .group-name-input", "Somebody")
        expect(page.locator(f"{card} .group-name button")).to_have_text("New person: Somebody")
        escape(page, f"{card} .group-name-input")
        expect(page.locator(f"{card} .group-name-input")).to_have_value("")
        expect(page.locator(f"{card} .group-name button")).to_have_text("Name")

        # A group's faces: Escape on a face's checkbox, or in the name of the faces ticked,
        # closes them; the focus goes back to "Check the faces".
        toggle = f"{card} .group-open"
        activate(page, toggle, keyboard)
        expect(page.locator(f"{card} .group-faces .face-select").first).to_be_visible()
        page.locator(f"{card} .group-faces .face-select").first.focus()
        shot("group-faces-open")
        escape(page, toggle)
        expect(page.locator(f"{card} .group-faces")).to_be_hidden()
        expect(page.locator(toggle)).to_have_attribute("aria-expanded", "false")
        expect(page.locator(toggle)).to_have_text("Check the faces")
        activate(page, toggle, keyboard)
        page.fill(f"{card} .face-person-input", "Somebody")
        escape(page, toggle)
        expect(page.locator(f"{card} .group-faces")).to_be_hidden()
        fits(page, "groups after Escape")

        # A person's page: "Someone else…" closes and forgets the name; a rename is undone.
        activate(page, f"#people-list button[data-name='{bibi}']", keyboard)
        expect(page.locator("#person-name")).to_have_text(bibi)
        summary = "#appearance-photos figure >> nth=0 >> .someone-else summary"
        other = page.locator("#appearance-photos figure").first.locator(".other-person-input")
        activate(page, summary, keyboard)
        other.fill("Somebody")
        shot("someone-else-open")
        escape(page, summary)
        expect(page.locator("#appearance-photos .someone-else[open]")).to_have_count(0)
        activate(page, summary, keyboard)
        expect(other).to_have_value("")
        escape(page, summary)
        page.fill("#rename-input", "Bibi")
        escape(page, "#rename-input")
        expect(page.locator("#rename-input")).to_have_value(bibi)
        fits(page, "person after Escape")

        # A search hit's photo: Escape closes it; the focus is on "Show the photo".
        activate(page, "#nav a[data-view=search]", keyboard)
        page.set_input_files("#search-file", str(probe))
        show = "#search-results li.hit.match >> nth=0 >> button.show-where"
        activate(page, show, keyboard)
        where = page.locator("#search-results li.hit.match").first.locator(".where")
        expect(where.locator(".face-box")).to_be_visible()
        shot("search-hit-open")
        escape(page, show)
        expect(where).to_be_hidden()
        expect(page.locator(show)).to_have_attribute("aria-expanded", "false")
        fits(page, "search after Escape")
        shot("search-hit-closed")

    with site.client() as client:  # none of it was saved
        people = {p["name"] for p in client.get("/api/people").json()}
    assert people == {bibi}


def test_a_query_key_sees_the_library_but_changes_nothing(
    library_site: LibrarySite, make_page: Any, request: pytest.FixtureRequest
) -> None:
    site = library_site
    with site.client() as client:
        started = client.post("/api/library/scan", json={"folder": "photos"})
        assert started.status_code == 202, started.text
        job = started.json()["job"]
        assert _finished(client, job) == "done"
    page = make_page(site, 390)
    shot = Shots(page, request.node.name)
    log_in(page, site, "query")
    expect(page.locator("#groups-list li.group").first).to_be_visible()
    expect(page.locator("#scan-card")).to_be_hidden()
    expect(page.locator("#groups-list .group-name")).to_have_count(0)
    expect(page.locator("#groups-list .group-select")).to_have_count(0)
    expect(page.locator("#groups-merge")).to_be_hidden()
    expect(page.locator("#library-undo")).to_be_hidden()
    shot("query-home-390")
    fits(page, "query home")

    # A person's page: the moments play, but "Not this person" is not offered.
    with site.client() as client:
        named = client.post(
            f"/api/library/groups/{site.groups()['video']['id']}/name", json={"name": AOC}
        )
        assert named.status_code == 200, named.text
    page.goto(f"/web/#/people/{AOC}")
    expect(page.locator("#person-name")).to_have_text(AOC)
    expect(page.locator("#appearance-videos button.moment").first).to_be_visible()
    expect(page.locator("#person-detail .not-them")).to_have_count(0)
    expect(page.locator("#rename-button")).to_be_hidden()
    expect(page.locator("#erase-button")).to_be_hidden()
    shot("query-person-390")
    fits(page, "query person")


def test_the_media_of_an_item_photos_and_seekable_videos(library_site: LibrarySite) -> None:
    """GET /api/library/items/{id}/media: the file as scanned, byte ranges for videos, and
    nothing once a file leaves the roots or is gone (errors show no server path)."""
    site = library_site
    root = site.root
    with site.client() as client:
        started = client.post("/api/library/scan", json={"folder": "photos"})
        assert _finished(client, started.json()["job"]) == "done"
        video_group = site.groups()["video"]
        named = client.post(f"/api/library/groups/{video_group['id']}/name", json={"name": AOC})
        assert named.status_code == 200, named.text
        video = client.get(f"/api/people/{AOC}/appearances").json()[0]["item"]
        probe = sorted((data_path("lfw/images_deepfunneled") / PEOPLE[2]).glob("*.jpg"))[0]
        found = client.post(
            "/api/library/search", files={"photo": (probe.name, probe.read_bytes(), "image/jpeg")}
        ).json()["appearances"]
        photo_hit = next(h for h in found if h["kind"] == "image")
        photo_path = root / "photos" / PEOPLE[2] / Path(photo_hit["source"]).name
        photo = photo_hit["item"]

    video_bytes = (root / "photos" / "videos" / "aoc.mp4").read_bytes()
    with site.client("query") as client:  # reading media is a query key's right
        whole = client.get(f"/api/library/items/{photo}/media")
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "image/jpeg"
        assert whole.content == photo_path.read_bytes()
        part = client.get(f"/api/library/items/{video}/media", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-type"] == "video/mp4"
        assert part.headers["content-range"] == f"bytes 100-199/{len(video_bytes)}"
        assert part.content == video_bytes[100:200]
        missing = client.get("/api/library/items/999999/media")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "item_not_found"

        # The file is replaced by a link outside the roots: refused, and the path not shown.
        outside = root.parent / "outside" / "elsewhere.jpg"
        shutil.move(photo_path, outside)
        photo_path.symlink_to(outside)
        moved = client.get(f"/api/library/items/{photo}/media")
        assert moved.status_code == 403
        assert str(root.parent) not in moved.text and "elsewhere" not in moved.text
        photo_path.unlink()
        gone = client.get(f"/api/library/items/{photo}/media")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "media_not_found"
        assert str(root) not in gone.text
    anonymous = httpx.get(f"{site.url}/api/library/items/{photo}/media", timeout=30)
    assert anonymous.status_code == 401
