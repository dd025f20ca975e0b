"""The API docs page works offline: Swagger UI renders every operation, and the browser
asks nothing of any host but the server (headless Debian chromium, Playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelens.service.launcher import ServerProcess

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


def test_swagger_ui_renders_every_operation_from_this_server_only(tmp_path: Path) -> None:
    requested: list[str] = []
    with (
        ServerProcess(tmp_path / "people.db", log_path=tmp_path / "server.log") as server,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(server.url + "/docs")
            operations = page.locator(".opblock")
            sync_api.expect(operations.first).to_be_visible(timeout=60_000)
            count = operations.count()
            page.screenshot(path=str(tmp_path / "docs.png"))
        finally:
            browser.close()
    assert count >= 15
    assert requested and all(url.startswith(server.url) for url in requested), requested
    assert any(url.endswith("/openapi.json") for url in requested)
