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
def browser() -> Iterator[Any]:
    """One chromium for the module (Playwright's sync API cannot run two at once)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is not installed: apt-get install chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser: Any, served: str) -> Iterator[Any]:
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.goto(served)
    pg.wait_for_selector("#question textarea", timeout=60_000)
    yield pg
    pg.close()


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


# --- a second, small app: two seed articles, an LLM (the local stub), uploads allowed -----------
# Kept apart from the session's shipped index, which other tests expect unchanged.


@pytest.fixture(scope="module")
def small_app(real_embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag.app.ui import build_app, launch
    from rag.config import Settings
    from rag.service import Assistant
    from tests.conftest import SHIPPED_CORPUS, free_port
    from tests.llm_stub import StubLLM

    corpus = tmp_path_factory.mktemp("small") / "corpus"
    corpus.mkdir()
    for name in ("001_f22444b573f99c26.txt", "002_05be2de35abf45d3.txt"):
        shutil.copy(SHIPPED_CORPUS / name, corpus / name)
    with StubLLM("good") as stub:
        settings = Settings.from_env(
            corpus_dir=corpus, index_dir=corpus.parent / "index", llm="openai:stub-llm",
            llm_base_url=stub.base_url,
        )  # fmt: skip
        assistant = Assistant(settings, real_embedder)
        assistant.ingest()
        app = build_app(assistant)
        port = free_port()
        launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        yield f"http://127.0.0.1:{port}/"
        app.close()


@pytest.fixture(scope="module")
def small_page(browser: Any, small_app: str) -> Iterator[Any]:
    pg = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg.goto(small_app)
    pg.wait_for_selector("#question textarea", timeout=60_000)
    yield pg
    pg.close()


_ANSWERS = "document.querySelector('#chat').innerText.split('Answered by:').length - 1"


def _ask(page: Any, question: str) -> str:
    """Ask in the chat and wait for the answer (each answer ends with "Answered by: …")."""
    before = page.evaluate(_ANSWERS)
    page.fill("#question textarea", question)
    page.click("#ask-btn")
    page.wait_for_function(f"{_ANSWERS} > {before}", timeout=120_000)
    return str(page.inner_text("#chat"))


def test_llm_toggle_switches_the_answering_mode(small_page: Any) -> None:
    toggle = small_page.locator("#use-llm input[type=checkbox]")
    assert toggle.is_visible() and toggle.is_checked()
    assert "stub-llm" in small_page.inner_text("#use-llm")
    text = _ask(small_page, "What did the Chinese embassy in the UK say?")
    assert "Answered by: LLM" in text and "Source 1 states" in text
    assert small_page.locator("#chat a[href='#src-1']").first.is_visible()
    assert small_page.locator("#sources .src-card").first.is_visible()
    toggle.uncheck()
    text = _ask(small_page, "What did the Chinese embassy in the UK say?")
    last = text.rsplit("What did the Chinese embassy", 1)[1]
    assert "Answered by: extractive" in last and "According to" in last


def test_search_export_downloads_csv_and_json(small_page: Any, tmp_path: Path) -> None:
    import csv
    import io
    import json

    small_page.get_by_role("tab", name="Search").click()
    small_page.fill("#search-query textarea", "hemliga samtal AI-säkerhet")
    small_page.click("#search-btn")
    small_page.wait_for_selector("#detail .src-card", timeout=60_000)  # the top passage in detail
    assert "hemliga" in small_page.inner_text("#results")
    got = {}
    for fmt in ("csv", "json"):
        small_page.click(f"#export-{fmt}")
        link = small_page.locator(f"#export-file a[href*='govrag-search.{fmt}']").first
        link.wait_for(timeout=30_000)
        with small_page.expect_download() as info:
            link.click()
        path = tmp_path / f"export.{fmt}"
        info.value.save_as(path)
        got[fmt] = path.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(got["csv"], newline="")))
    data = json.loads(got["json"])
    assert rows and len(rows) == len(data["hits"])
    assert rows[0]["doc_id"] == data["hits"][0]["doc_id"] and rows[0]["start"].isdigit()
    assert {"title", "lang", "source", "date", "text", "start", "end"} <= set(rows[0])


def test_upload_indexes_a_file_while_the_chat_keeps_answering(
    small_page: Any, tmp_path: Path
) -> None:
    """Upload a long report; while it is being indexed, a question still gets its answer."""
    paragraphs = [
        f"Section {i}. The regional council discussed algorithmic auditing rule number {i} "
        f"for public agencies, including transparency registers and human oversight duties. "
        f"Inspectors in district {i} reported on compliance with the audit schedule."
        for i in range(400)
    ]
    upload = tmp_path / "council report.txt"
    upload.write_text(
        "Council report on algorithm audits\n\n" + "\n\n".join(paragraphs), encoding="utf-8"
    )
    small_page.get_by_role("tab", name="Corpus").click()
    small_page.set_input_files("#upload input[type=file]", str(upload))
    small_page.wait_for_timeout(500)
    small_page.click("#add-btn")
    small_page.get_by_role("tab", name="Ask").click()
    text = _ask(small_page, "Vad sa den kinesiska ambassaden i Storbritannien?")
    log_now = small_page.locator("#corpus-log textarea").input_value()
    assert "Indexed" not in log_now  # the answer came while the upload was still being indexed
    assert "[1]" in text.rsplit("Vad sa den kinesiska", 1)[1]  # a cited answer
    small_page.get_by_role("tab", name="Corpus").click()
    small_page.wait_for_function(
        "document.querySelector('#corpus-log textarea').value.includes('Indexed')",
        timeout=600_000,
    )
    log = small_page.locator("#corpus-log textarea").input_value()
    assert "Saved uploads/council_report.txt" in log and "1 added" in log
    assert "Council report on algorithm audits" in small_page.inner_text("body")
