"""The app in a real browser: Debian's chromium, headless, driven by Playwright.

Needs /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs it). Set
GOVRAG_SCREENSHOT=docs/screenshot.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.model

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def page(served: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is not installed: apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.goto(served)
        pg.wait_for_selector("#question textarea", timeout=60_000)
        yield pg
        browser.close()


def test_ask_shows_cited_answer_and_source_panel(page: Any, tmp_path: Path) -> None:
    page.fill("#question textarea", "What did the Chinese embassy in the UK say?")
    page.click("#ask-btn")
    card = page.wait_for_selector("#sources .src-card", timeout=60_000)
    assert card.is_visible()
    marker = page.locator("#chat a[href='#src-1']").first
    assert marker.is_visible() and marker.inner_text() == "[1]"
    assert "Storbritannien" in page.inner_text("#sources")
    assert page.locator("#sources mark").first.is_visible()  # the quote, highlighted in its passage
    shot = Path(os.environ.get("GOVRAG_SCREENSHOT") or tmp_path / "ask.png")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    marker.click()  # brings its source card into view
    assert page.locator("#src-1").is_visible()
