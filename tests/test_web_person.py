"""A person's page (#/people/NAME) in the browser: it shows only the person its URL names,
and a video Chromium cannot decode says so and shows the face instead.

The real server of tests/test_web_library.py (``library_site``: a library root of a few
LFW people and a talking-head video, MPEG-4 Part 2 like the other clips of its set) is
scanned through the API, only its video folder, so each test starts in seconds. Chromium
(Debian's) drives the page at 1280 px by mouse and at 390 px by keyboard; screenshots go
to ``test-artifacts/web/<test>/``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.test_web import CHROMIUM, WAIT_MS, Shots, expect, log_in
from tests.test_web import browser as browser
from tests.test_web_library import (
    PEOPLE,
    LibrarySite,
    Page,
    _finished,
    activate,
    fits,
    press,
)
from tests.test_web_library import library_site as library_site
from tests.test_web_library import make_page as make_page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

ANNA = "Anna Lookalike"
TWIN = "Anna Twin"
ALBERT = "Albert Costa"
ENROLLED = 8  # a named group's best faces enrolled in the gallery (DEFAULT_ENROLLED)


def _video_person(site: LibrarySite, name: str) -> int:
    """Scan the library's video folder and name its one group `name`; its faces' count."""
    with site.client() as client:
        started = client.post("/api/library/scan", json={"folder": "photos/videos"})
        assert _finished(client, started.json()["job"]) == "done"
        (group,) = client.get("/api/library/groups").json()
        named = client.post(f"/api/library/groups/{group['id']}/name", json={"name": name})
        assert named.status_code == 200, named.text
    return int(group["faces"])


def _hash(page: Page, name: str) -> None:
    """Go to a person's page as a typed or followed URL does."""
    page.evaluate("name => { location.hash = `#/people/${encodeURIComponent(name)}`; }", name)


def _drawn(page: Page, name: str, faces: int) -> None:
    """The page shows `name`: their heading, enrolled faces and rename field."""
    expect(page.locator("#person-name")).to_have_text(name)
    expect(page.locator("#person-photos figure")).to_have_count(faces)
    expect(page.locator("#rename-input")).to_have_value(name)
    expect(page.locator("#person-error")).to_be_hidden()


def _nothing_of_anyone(page: Page, name: str) -> None:
    """A name nobody has: it is said, with a way back, and nothing of anyone stays."""
    expect(page.locator("#person-name")).to_have_text(name)
    expect(page.locator("#person-error")).to_contain_text(f'Nobody called "{name}"')
    expect(page.locator("#person-missing a")).to_be_visible()
    expect(page.locator("#person-meta")).to_have_text("")
    expect(page.locator("#person-actions")).to_be_hidden()
    expect(page.locator("#rename-input")).to_have_value("")
    expect(page.locator("#person-photos figure")).to_have_count(0)
    expect(page.locator("#person-photos-title")).to_be_hidden()
    expect(page.locator("#appearance-photos > *")).to_have_count(0)
    expect(page.locator("#appearance-videos > *")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove face")).to_have_count(0)
    fits(page, f"the page of {name}, who is nobody")


@pytest.mark.parametrize("width", [1280, 390])
def test_a_persons_page_shows_only_the_person_its_url_names(
    library_site: LibrarySite, make_page: Any, request: pytest.FixtureRequest, width: int
) -> None:
    """Rename replaces the old name's page in the history (Back does not land on it); the
    old name, or any name nobody has, leaves nothing of the person shown before (faces,
    Remove buttons, rename field, appearances); a slow answer about a person left is not
    drawn over the one shown now. By keyboard at 390 px."""
    site = library_site
    keyboard = width < 600
    _video_person(site, ANNA)
    photos = sorted((site.root / "photos" / PEOPLE[0]).glob("*.jpg"))[:2]
    with site.client() as client:
        files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
        enrolled = client.post("/api/people", data={"name": ALBERT}, files=files)
        assert enrolled.status_code == 201, enrolled.text
    page = make_page(site, width)
    shot = Shots(page, request.node.name)
    log_in(page, site)
    # the cards are drawn again once each person's face is fetched: the focus goes after that
    card = f"#people-list button[data-name='{ANNA}']"
    expect(page.locator(f"{card} img.avatar")).to_be_visible()
    activate(page, card, keyboard)
    _drawn(page, ANNA, ENROLLED)
    expect(page.locator("#appearance-videos button.moment").first).to_be_visible()
    shot("person")

    page.fill("#rename-input", TWIN)
    activate(page, "#rename-button", keyboard)
    expect(page.locator("#flash")).to_have_text(f"Renamed to {TWIN}.")
    _drawn(page, TWIN, ENROLLED)
    assert page.evaluate("() => location.hash") == "#/people/Anna%20Twin"
    page.go_back()  # the page before the person's, not the dead name's
    expect(page.locator("#people-home")).to_be_visible()
    assert "Anna" not in page.evaluate("() => location.hash")
    expect(page.locator(f"#people-list button[data-name='{TWIN}']")).to_be_visible()

    _hash(page, ANNA)  # the old name, e.g. from a bookmark
    _nothing_of_anyone(page, ANNA)
    shot("old-name")
    _hash(page, TWIN)
    _drawn(page, TWIN, ENROLLED)
    _hash(page, "Nobody Here")
    _nothing_of_anyone(page, "Nobody Here")
    shot("nobody-here")
    activate(page, "#person-missing a", keyboard)
    expect(page.locator("#people-home")).to_be_visible()
    # the home page has asked about each person (their face on the card) before the next
    expect(page.locator(f"#people-list button[data-name='{TWIN}'] img.avatar")).to_be_visible()

    # Anna Twin's page is asked for, left for Albert's before the answer comes: the answer,
    # late, is not drawn. (The home page may ask about her too: every such call is held.)
    held: list[Any] = []
    twin = re.compile(r"/api/people/Anna%20Twin$")
    page.route(twin, lambda route: held.append(route))
    with page.expect_request(twin):
        _hash(page, TWIN)
    _hash(page, ALBERT)
    _drawn(page, ALBERT, 2)
    assert held
    for route in held:
        with page.expect_request_finished(lambda r: bool(twin.search(r.url))):
            route.continue_()
    page.unroute(twin)
    page.evaluate("() => new Promise(done => setTimeout(done, 200))")  # its answer is read
    _drawn(page, ALBERT, 2)
    expect(page.locator("#person-meta")).to_contain_text("2 enrolled faces")
    expect(page.locator("#appearance-videos > *")).to_have_count(0)
    fits(page, "Albert's page")
    shot("albert-not-anna")


def test_a_video_the_browser_cannot_decode_shows_the_face_and_a_download(
    library_site: LibrarySite, make_page: Any, request: pytest.FixtureRequest
) -> None:
    """The library's clip is MPEG-4 Part 2, which Chromium does not decode (its sound plays,
    the picture is a black box, videoWidth 0): the page says so, shows the face at the
    moment (its crop) and links the file for download; by keyboard at 390 px, and at 1280."""
    site = library_site
    faces = _video_person(site, ANNA)
    for width in (390, 1280):
        page = make_page(site, width)
        shot = Shots(page, f"{request.node.name}-{width}")
        log_in(page, site)
        _hash(page, ANNA)
        video = page.locator("#appearance-videos article.video").first
        fallback = video.locator(".video-fallback")
        expect(fallback).to_be_visible()
        expect(fallback).to_contain_text("This browser cannot play this video's format")
        assert (
            page.evaluate("() => document.querySelector('#appearance-videos video').videoWidth")
            == 0
        )
        still = fallback.locator(".still img.crop")
        page.wait_for_function(
            "() => document.querySelector('.video-fallback .still img').naturalWidth > 0",
            timeout=WAIT_MS,
        )
        moment = video.locator("button.moment").first
        start = float(moment.get_attribute("data-start") or "0")
        expect(fallback.locator(".still figcaption")).to_have_text(
            f"the face at 0:{int(start):02d}"
        )
        expect(still).to_have_attribute("src", re.compile(r"/api/library/faces/\d+/crop$"))
        link = fallback.locator("a[download]")
        href = link.get_attribute("href") or ""
        assert href.endswith(f"/api/library/items/{video.get_attribute('data-item')}/media")
        answer = page.request.get(href, headers={"Range": "bytes=0-11"})
        assert answer.status == 206 and answer.body()[4:8] == b"ftyp", answer.status
        if width < 600:
            press(page, "#appearance-videos button.moment >> nth=0")  # its sound plays from there
            expect(link).to_be_visible()
            link.focus()
            expect(link).to_be_focused()
        else:
            moment.click()
        expect(fallback.locator(".still figcaption")).to_contain_text("the face at")
        # What each count counts: the group's best 8 faces are enrolled (the card's "8 enrolled faces"),
        # every one of its faces is an appearance.
        assert faces > ENROLLED
        expect(page.locator("#person-meta")).to_have_text(
            re.compile(
                rf"^{ENROLLED} enrolled faces, since .*: the ones recognition compares with$"
            )
        )
        expect(page.locator("#appearance-videos-count")).to_contain_text(f"{faces} faces seen")
        fits(page, f"an undecodable video at {width} px")
        shot("undecodable-video")
