"""A real headless chromium for the live-model tests, offline, and helpers
that export small labkit models and serve folders on 127.0.0.1.

Every page opens with the network cut as in the site check
(booktools.check_site.CHROMIUM_ARGS) and its console errors collected; the
tests skip, saying why, where no chromium is installed. Helpers that are not
fixtures live in tests/live_helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def browser():
    from booktools.check_site import CHROMIUM_ARGS, find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium (scripts/setup.sh installs Debian's)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Served:
    """A folder served over HTTP on 127.0.0.1; ``url(path)`` for a file in it."""

    def __init__(self, folder: Path):
        from booktools.check_site import serve

        self.folder = folder
        self.server, self.base = serve(folder)

    def url(self, path: str = "") -> str:
        return f"{self.base}/{path}"


@pytest.fixture
def served(tmp_path):
    made = []

    def serve(folder: Path = tmp_path) -> Served:
        made.append(Served(folder))
        return made[-1]

    yield serve
    for s in made:
        s.server.shutdown()


@pytest.fixture
def open_page(browser):
    """open_page(url) -> page with ``page.errors`` (console errors, uncaught
    exceptions) and ``page.external`` (requests that tried to leave)."""
    contexts = []

    def open_(url: str):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.errors, page.external = [], []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                not r.url.startswith(("http://127.0.0.1", "file:", "data:", "blob:"))
                and page.external.append(r.url)
            ),
        )
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
