"""How fast the web page's People page opens on a library of many groups.

Builds a library of ``--groups`` unknown groups (1-30 faces each, a small JPEG
crop per face; made-up faces: only the page's speed is measured here, the
grouping itself is measured by ``library_lfw.py``), starts ``facelens serve``
on it, and times in Debian's Chromium, ``--runs`` times: from navigating to
the People page (logged in) until the first page of groups is shown with every
sample crop in the window loaded (the others load as they scroll into view), and "Show more groups" until the next page is shown, and the API call for a page
of 24 alone.

    .venv/bin/python benchmarks/library_web_page.py --groups 2000

``--gallery G`` times the page on an existing gallery and its library instead
(e.g. the LFW library that ``library_lfw.py --keep DIR`` leaves in ``DIR``).
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from facelens.cluster.store import ClusterStore, NewFace
from facelens.service.keys import KeyStore
from facelens.service.launcher import ServerProcess
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB
from facelens.types import Box

CHROMIUM = "/usr/bin/chromium"
FIRST_PAGE = """() => {
    const cards = document.querySelectorAll('#groups-list li.group');
    const images = [...document.querySelectorAll('#groups-list img.crop')]
        .filter(i => i.getBoundingClientRect().top < innerHeight);  // the rest load lazily
    return cards.length >= 24 && images.every(i => i.complete && i.naturalWidth > 0);
}"""


def _crop(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=80)
    return out.getvalue()


def build(library: Path, groups: int, dim: int) -> int:
    """Add ``groups`` groups of made-up faces to the library; the number of faces."""
    with sqlite3.connect(library) as db:
        model_id = str(db.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()[0])
    store = ClusterStore(library, model_id)
    rng = np.random.default_rng(0)
    crops = [_crop(i) for i in range(32)]
    faces = 0
    try:
        for g in range(groups):
            size = int(min(30, 1 + rng.pareto(1.5) * 2))
            new = []
            for i in range(size):
                vector = rng.standard_normal(dim).astype(np.float32)
                vector /= np.linalg.norm(vector)
                new.append(
                    NewFace(
                        Box(10, 10, 100, 100),
                        0.5 + 0.5 * rng.random(),
                        vector,
                        crops[(g + i) % len(crops)],
                    )
                )
            ids = store.add_photo(f"/made-up/{g}.jpg", f"made-up-{g}", 250, 250, new)
            with store.write() as db:
                store.assign(db, store.new_group(db), ids)
            faces += size
    finally:
        store.close()
    return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=512, help="template length of the made-up faces")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--gallery", type=Path, default=None, help="an existing gallery to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        gallery = args.gallery or Path(folder) / "people.db"
        state = StateDB(ServiceSettings(gallery=str(gallery)).state_db)
        key = KeyStore(state).create("bench", "admin")[1]
        state.close()
        with (
            ServerProcess(gallery) as server,  # creates the library beside the gallery
            httpx.Client(base_url=server.url, headers={"X-API-Key": key}) as client,
        ):
            about = client.get("/api/library").json()
        if args.gallery is None:
            faces = build(gallery.with_name(about["library"]), args.groups, args.dim)
        else:
            faces = int(about.get("faces", 0))
        first: list[float] = []
        more: list[float] = []
        api: list[float] = []
        with ServerProcess(gallery) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
            )
            page = browser.new_context(base_url=server.url).new_page()
            page.goto("/")
            page.fill("#login-key", key)
            page.click("#login-submit")
            page.wait_for_function(FIRST_PAGE, timeout=60_000)
            total = page.text_content("#groups-count")
            for _ in range(args.runs):
                page.goto("about:blank")
                started = time.perf_counter()
                page.goto(f"{server.url}/#/people")
                page.wait_for_function(FIRST_PAGE, timeout=60_000)
                first.append(time.perf_counter() - started)
                started = time.perf_counter()
                page.click("#groups-more")
                page.wait_for_function(
                    "() => document.querySelectorAll('#groups-list li.group').length >= 48",
                    timeout=60_000,
                )
                more.append(time.perf_counter() - started)
            browser.close()
            with httpx.Client(base_url=server.url, headers={"X-API-Key": key}) as client:
                for run in range(args.runs):
                    started = time.perf_counter()
                    answer = client.get(
                        "/api/library/groups", params={"offset": 24 * run, "limit": 24}
                    )
                    api.append(time.perf_counter() - started)
                    assert answer.status_code == 200
    result = {
        "groups": args.groups if args.gallery is None else about["groups"],
        "faces": faces,
        "shown": total,
        "first_page_s": {"median": statistics.median(first), "max": max(first)},
        "show_more_s": {"median": statistics.median(more), "max": max(more)},
        "api_page_of_24_s": {"median": statistics.median(api), "max": max(api)},
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
