"""The groups of unknown faces on the People page, as a phone (390 px, touch) and a keyboard
(1280 px) user meet them.

One library (a few LFW people and a talking-head video, copied at test time) is scanned
once for the module through the API; each test opens its own page on it and puts back
what it changed (undo) so the next finds the groups as scanned. Screenshots of every step
go to ``test-artifacts/web/<test>/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from facelens.service.launcher import ServerProcess
from tests.conftest import data_path
from tests.test_web import CHROMIUM as CHROMIUM_PATH
from tests.test_web import Shots, encrypted_gallery, expect, log_in, playwright_api
from tests.test_web import browser as browser
from tests.test_web_library import (
    PEOPLE,
    PER_PERSON,
    LibrarySite,
    _finished,
    copy_library,
    fits,
    press,
)
from tests.test_web_library import make_page as make_page

Page = playwright_api.Page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM_PATH.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LibrarySite]:
    """A server whose library (one root) is scanned once for the whole module."""
    tmp_path = tmp_path_factory.mktemp("groups")
    root = tmp_path / "library"
    copy_library(root)
    gallery, keys, env = encrypted_gallery(tmp_path)
    args = ["--library-root", str(root), "--threads", "1"]
    with ServerProcess(
        gallery, env=env, extra_args=args, log_path=tmp_path / "server.log"
    ) as server:
        library = LibrarySite(server, keys, root)
        with library.client() as client:
            started = client.post("/api/library/scan", json={"folder": "photos"})
            assert started.status_code == 202, started.text
            assert _finished(client, started.json()["job"]) == "done"
        yield library


def faces_of(site: LibrarySite, group: int) -> list[int]:
    with site.client() as client:
        return [f["face"] for f in client.get(f"/api/library/groups/{group}").json()["faces"]]


def undo(site: LibrarySite) -> None:
    with site.client() as client:
        assert client.post("/api/library/undo").json()["undone"]


def focus_not_lost(page: Page, where: str) -> str:
    """The keyboard focus is on a control (never the page's body); its description."""
    focused = str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e && e !== document.body ? `${e.tagName}.${e.className}` : ''; }"
        )
    )
    assert focused, f"{where}: the focus fell to the page's body"
    return focused


def seen(shot: Shots, step: str) -> None:
    """A screenshot of the screen as the person sees it (the steps' own are of the whole
    page, where a message fixed to the foot of the screen is not where they see it)."""
    shot.count += 1
    path = shot.folder / f"{shot.count:02d}-{step}-screen.png"
    shot.page.screenshot(path=str(path))
    print(f"screenshot: {path}")


def top_of(page: Page, selector: str) -> float:
    return float(page.locator(selector).evaluate("e => e.getBoundingClientRect().top"))


def test_a_phone_sees_what_a_change_did_where_it_is_and_merges_where_it_ticked(
    site: LibrarySite, make_page: Any, request: pytest.FixtureRequest
) -> None:
    """At 390 px by touch: a split and a "Not this person" deep in a long group say what
    they did on screen, keep the group where it was with its faces open, and leave the
    focus in it; ticking two groups offers Merge beside the second tick, and after the merge
    the message is on screen and the focus on the merged group."""
    page = make_page(site, 390)
    shot = Shots(page, request.node.name)
    log_in(page, site)
    # Nobody is named yet: the link to Enroll is big enough for a finger.
    link = page.locator("#people-empty a")
    expect(link).to_be_visible()
    box = link.bounding_box()
    assert box is not None and box["height"] >= 44, box
    video = site.groups()["video"]["id"]
    card = f"#groups-list li[data-group='{video}']"
    expect(page.locator(card)).to_be_visible()

    # Split: the two last faces of the video's group (the panel's end is far down).
    page.locator(f"{card} .group-open").tap()
    faces = faces_of(site, video)
    assert len(faces) >= 6, faces
    for face in faces[-2:]:
        page.locator(f"{card} li[data-face='{face}'] .face-select").tap()
    split = page.locator(f"{card} .face-split")
    split.scroll_into_view_if_needed()
    expect(page.locator("#groups-tools")).not_to_be_in_viewport()  # the tools: far above
    before = top_of(page, f"{card} .face-tools")
    shot("split-ticked")
    split.tap()
    expect(page.locator("#groups-status")).to_contain_text("2 faces made group")
    expect(page.locator("#groups-status")).to_be_in_viewport()
    expect(page.locator(f"{card} .face-list li")).to_have_count(len(faces) - 2)  # open again
    # the tools stay where they were (scrolled at most out from under the message)
    assert abs(top_of(page, f"{card} .face-tools") - before) < 150, "the tools moved away"
    expect(page.locator(f"{card} .face-person-input")).to_be_in_viewport()
    last = f"{card} .face-list li:last-child .face-select"  # the face just above the tools
    expect(page.locator(last)).to_be_focused()
    expect(page.locator(last)).to_be_in_viewport()
    focus_not_lost(page, "after a split")
    fits(page, "after a split")
    shot("split-done")
    seen(shot, "split-done")
    undo(site)

    # "Not this person" on a face in the middle of the open group.
    page.reload()
    page.locator(f"{card} .group-open").tap()
    faces = faces_of(site, video)
    middle = faces[len(faces) // 2]
    reject = page.locator(f"{card} li[data-face='{middle}'] .face-reject")
    reject.scroll_into_view_if_needed()
    expect(page.locator("#groups-tools")).not_to_be_in_viewport()
    row = f"{card} .face-list li:nth-child({len(faces) // 2 + 1})"
    before = top_of(page, row)
    reject.tap()
    expect(page.locator("#groups-status")).to_have_text("The face left the group.")
    expect(page.locator("#groups-status")).to_be_in_viewport()
    expect(page.locator(f"{card} li[data-face='{middle}']")).to_have_count(0)
    assert abs(top_of(page, row) - before) < 150, "the faces moved away on the screen"
    # the focus is on the face now in its place, in view
    expect(page.locator(f"{row} .face-select")).to_be_focused()
    expect(page.locator(f"{row} .face-select")).to_be_in_viewport()
    shot("rejected")
    seen(shot, "rejected")
    undo(site)

    # Merge: the two last groups of a few faces, ticked far below the tools above the list.
    page.reload()
    groups = site.groups()
    first, second = groups[PEOPLE[0]]["id"], groups[PEOPLE[1]]["id"]
    for group in (first, second):
        page.locator(f"#groups-list li[data-group='{group}'] .group-select").tap()
    here = page.locator(f"#groups-list li[data-group='{second}'] .group-merge-here")
    expect(here).to_have_text("Merge 2 selected groups")
    expect(here).to_be_in_viewport()
    box = here.bounding_box()
    assert box is not None and box["height"] >= 44, box
    fits(page, "merge offered")
    shot("merge-offered")
    seen(shot, "merge-offered")
    here.tap()
    expect(page.locator("#groups-status")).to_contain_text("2 groups merged into group")
    expect(page.locator("#groups-status")).to_be_in_viewport()
    merged = page.locator("#groups-list li.group", has=page.locator(".group-open:focus"))
    expect(merged).to_have_count(1)
    expect(merged.locator(".group-head")).to_contain_text(f"{2 * PER_PERSON} faces")
    expect(page.locator("#groups-list .group-select:checked")).to_have_count(0)
    focus_not_lost(page, "after a merge")
    shot("merged")
    seen(shot, "merged")
    # The message's Undo, where the person is: the groups come back.
    page.locator("#groups-toast-undo").tap()
    expect(page.locator("#groups-status")).to_have_text("Undid the merge.")
    expect(page.locator(f"#groups-list li[data-group='{first}']")).to_have_count(1)
    expect(page.locator(f"#groups-list li[data-group='{second}']")).to_have_count(1)
    focus_not_lost(page, "after undo")
    fits(page, "after undo")
    shot("merge-undone")
    seen(shot, "merge-undone")


def test_move_to_group_moves_nothing_until_move_is_pressed(
    site: LibrarySite, make_page: Any, request: pytest.FixtureRequest
) -> None:
    """By keyboard at 1280 px: ArrowDown on "Move to group…" only chooses (the chosen
    group's face shows beside it); the Move button moves the face and the focus stays in
    the group. Ticking a group for a merge: one Tab reaches its Merge."""
    page = make_page(site, 1280)
    shot = Shots(page, request.node.name)
    log_in(page, site)
    groups = site.groups()
    source, other = groups[PEOPLE[2]]["id"], groups[PEOPLE[0]]["id"]
    card = f"#groups-list li[data-group='{source}']"
    press(page, f"{card} .group-open")
    faces = faces_of(site, source)
    first = f"{card} li[data-face='{faces[0]}']"
    press(page, f"{first} select.face-move", "ArrowDown")
    choice = page.locator(f"{first} select.face-move")
    expect(choice).not_to_have_value("")
    expect(choice).to_be_focused()
    expect(page.locator(f"{first} img.move-thumb")).to_be_visible()  # the chosen group's face
    expect(page.locator("#groups-status")).to_have_text("")
    assert faces_of(site, source) == faces  # nothing moved
    page.keyboard.press("ArrowDown")
    assert faces_of(site, source) == faces
    page.select_option(f"{first} select.face-move", str(other))
    expect(choice.locator("option:checked")).to_have_text(f"Group {other}: {PER_PERSON} faces")
    page.keyboard.press("Tab")
    go = page.locator(f"{first} .face-move-go")
    expect(go).to_be_focused()
    expect(go).to_have_text(f"Move to group {other}")
    shot("move-chosen")
    seen(shot, "move-chosen")
    page.keyboard.press("Enter")
    expect(page.locator("#groups-status")).to_have_text(f"The face moved to group {other}.")
    expect(page.locator("#groups-status")).to_be_in_viewport()
    assert faces[0] in faces_of(site, other) and faces[0] not in faces_of(site, source)
    expect(page.locator(f"{card} .face-select").first).to_be_focused()  # where it was
    shot("moved")
    seen(shot, "moved")
    undo(site)

    # Merge by keyboard: Space on a group's tick, then Tab once to merge.
    page.reload()
    for group in (other, source):
        press(page, f"#groups-list li[data-group='{group}'] .group-select", " ")
    page.keyboard.press("Tab")
    expect(
        page.locator(f"#groups-list li[data-group='{source}'] .group-merge-here")
    ).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#groups-status")).to_contain_text("2 groups merged")
    focus_not_lost(page, "after a merge by keyboard")
    shot("merged-by-keyboard")
    undo(site)


def test_a_name_in_another_case_is_the_person_already_known(
    site: LibrarySite, make_page: Any, request: pytest.FixtureRequest
) -> None:
    """At 390 px: "angela  BASSETT" typed for a group when Angela Bassett is known is
    offered as her ("This is Angela Bassett") and joins her: no second person. The message
    shows on screen; the focus goes to the next group's name. A filter that matches
    nobody says so."""
    page = make_page(site, 390)
    shot = Shots(page, request.node.name)
    groups = site.groups()
    with site.client() as client:
        named = client.post(
            f"/api/library/groups/{groups[PEOPLE[1]]['id']}/name", json={"name": "Angela Bassett"}
        )
        assert named.status_code == 200, named.text
    log_in(page, site)
    expect(page.locator("#people-list button[data-name='Angela Bassett']")).to_be_visible()
    card = f"#groups-list li[data-group='{groups[PEOPLE[0]]['id']}']"
    field = page.locator(f"{card} .group-name-input")
    field.fill("angela  BASSETT ")
    expect(page.locator(f"{card} .group-name button")).to_have_text("This is Angela Bassett")
    shot("same-name-other-case")
    press(page, f"{card} .group-name-input")
    expect(page.locator("#groups-status")).to_have_text("The group joined Angela Bassett.")
    expect(page.locator("#groups-status")).to_be_in_viewport()
    expect(page.locator("#groups-list .group-name-input:focus")).to_have_count(1)
    with site.client() as client:
        people = {p["name"]: p["templates"] for p in client.get("/api/people").json()}
    assert list(people) == ["Angela Bassett"], people
    fits(page, "named")
    shot("joined")
    seen(shot, "joined")

    # The filter: nobody matches "zzz" -> said so, and the count says 0 of them.
    page.fill("#people-filter", "zzz")
    expect(page.locator("#people-none")).to_have_text('Nobody called "zzz".')
    expect(page.locator("#people-count")).to_have_text("(0 of 1)")
    shot("filtered-nobody")
    page.fill("#people-filter", "ANGELA")
    expect(page.locator("#people-none")).to_have_text("")
    expect(page.locator("#people-count")).to_have_text("(1 of 1)")
    shot("filtered")


def test_a_group_of_someone_enrolled_since_says_who_it_looks_like(
    site: LibrarySite, make_page: Any, request: pytest.FixtureRequest
) -> None:
    """By keyboard at 1280 px: once Netanyahu is enrolled from a photo of his own, his group
    says "Looks like Benjamin Netanyahu"; another name typed for it is questioned beside the
    field ("Name them Bibi anyway" / "This is Benjamin Netanyahu"), and the second joins him."""
    group = site.groups()[PEOPLE[2]]["id"]
    photos = sorted((data_path("lfw/images_deepfunneled") / PEOPLE[2]).glob("*.jpg"))
    with site.client() as client:  # enrolled from photos of his own (two the library holds)
        made = client.post(
            "/api/people",
            data={"name": "Benjamin Netanyahu", "face": "largest"},
            files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos[:2]],
        )
        assert made.status_code == 201, made.text
    page = make_page(site, 1280)
    shot = Shots(page, request.node.name)
    log_in(page, site)
    card = f"#groups-list li[data-group='{group}']"
    expect(page.locator(f"{card} .looks-like")).to_contain_text("Looks like Benjamin Netanyahu")
    shot("looks-like")
    page.locator(f"{card} .group-name-input").fill("Bibi")
    press(page, f"{card} .group-name-input")
    question = page.locator(f"{card} .group-error")
    expect(question).to_contain_text("These faces look like Benjamin Netanyahu")
    expect(question).to_contain_text("not Bibi")
    expect(page.locator(f"{card} .group-name-anyway")).to_be_focused()
    shot("asked")
    page.keyboard.press("Tab")
    expect(question.locator(".group-looks-yes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#groups-status")).to_have_text("The group joined Benjamin Netanyahu.")
    expect(page.locator(card)).to_have_count(0)  # named: no longer among the unknown
    focus_not_lost(page, "after joining")
    with site.client() as client:
        people = {p["name"] for p in client.get("/api/people").json()}
    assert "Bibi" not in people and "Benjamin Netanyahu" in people
    shot("joined")
