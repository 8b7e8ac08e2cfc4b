"""The app in a real browser: Debian's chromium, headless, driven by Playwright.

Needs /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs it). Set
GOVRAG_SCREENSHOT=docs/screenshot.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import re
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


def open_page(browser: Any, url: str) -> Any:
    """A page in a context of its own (its own Gradio session) that may use the clipboard."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True,
                                  permissions=["clipboard-read", "clipboard-write"])  # fmt: skip
    pg = context.new_page()
    pg.goto(url)
    pg.wait_for_selector("#question textarea", timeout=60_000)
    return pg


@pytest.fixture(scope="module")
def page(browser: Any, served: str) -> Iterator[Any]:
    pg = open_page(browser, served)
    yield pg
    pg.context.close()


_STATUS = "document.querySelector('#status [data-testid=markdown]').innerText"


def _status(page: Any) -> str:
    """The status line (without the hidden progress tracker over it)."""
    return str(page.evaluate(_STATUS))


def _clipboard(page: Any) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


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


def test_copy_gives_clean_text_and_citations(page: Any) -> None:
    """Copy answer gives the answer as text (no markdown escapes), Copy citation a quote in
    publication form; no label sits over the conversation."""
    chat_text = page.inner_text("#chat")
    assert "ambassaden i Storbritannien" in chat_text, "needs the previous test's answer"
    page.click("#copy-answer")
    page.wait_for_function("navigator.clipboard.readText().then(t => t.includes('Sources:'))")
    copied = _clipboard(page)
    assert "\\" not in copied and "](#src-" not in copied and "&gt;" not in copied
    assert copied.startswith("According to") and "AI-företag" in copied and "[1]" in copied
    assert "\n\nSources:\n[1] “" in copied and "DailyAI (Sam Jeans), 2024-01-11." in copied
    card = page.locator("#sources .src-card").first
    card.locator(".copy-cite").first.click()
    page.wait_for_function("navigator.clipboard.readText().then(t => !t.includes('Sources:'))")
    cite = _clipboard(page)
    title = "Amerikanska och kinesiska AI-företag har haft hemliga säkerhetssamtal"
    assert cite.startswith("“") and f"” — {title}, DailyAI (Sam Jeans), 2024-01-11." in cite
    quote = cite[1 : cite.index("” — ")]
    assert quote and quote in " ".join(card.locator(".src-short").inner_text().split())
    # The chat's own label once covered the messages when scrolled: there is none now, and the
    # heading above it stays above it.
    assert page.locator("#chat [data-testid='block-label']").count() == 0
    heading = page.get_by_role("heading", name="Conversation").bounding_box()
    assert heading["y"] + heading["height"] <= page.locator("#chat").bounding_box()["y"]


def test_card_links_the_original_and_a_follow_up_says_what_it_searched_for(
    page: Any, tmp_path: Path
) -> None:
    _ask(page, "Welche KI-Praktiken verbietet der AI Act der EU?")
    link = page.locator('#sources .src-link a[href^="http"]').first  # not the viewer's ?doc= link
    assert link.get_attribute("href").startswith("https://eur-lex.europa.eu/")
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener noreferrer"
    card = page.locator("#sources .src-card").first
    short = card.locator(".src-short")
    assert short.is_visible() and not card.locator(".src-more .src-text").is_visible()
    card.locator(".src-more summary").click()  # the longer context replaces the short one
    longer = card.locator(".src-more .src-text")
    assert longer.is_visible() and not short.is_visible()
    assert len(longer.inner_text()) > len(short.inner_text())
    text = _ask(page, "und die Strafen?")
    last = text.split("und die Strafen?", 1)[1]  # after the question as typed
    assert "Searched for: Welche KI-Praktiken verbietet der AI Act der EU? und die Strafen?" in last
    with page.expect_download() as info:
        page.click("#export-answer-md")
    name = info.value.suggested_filename
    assert re.fullmatch(r"govrag-answer-und-die-strafen-\d{4}-\d{2}-\d{2}\.md", name), name
    path = tmp_path / name
    info.value.save_as(path)
    md = path.read_text(encoding="utf-8")
    assert md.startswith("# und die Strafen?") and "_Searched for: " in md
    assert "## Sources" in md and "\\-" not in md


def test_a_bad_filter_date_is_explained_in_the_box_without_an_error_overlay(page: Any) -> None:
    page.get_by_text("Filters (apply to Ask, Search and Compare)").click()
    page.fill("#filter-from textarea", "last year")
    page.keyboard.press("Tab")
    message = "From date: use YYYY, YYYY-MM or YYYY-MM-DD, e.g. 2024-05"
    page.wait_for_function(
        f"document.querySelector('#filter-msg').innerText.includes({message!r})", timeout=10_000
    )
    page.get_by_role("tab", name="Search").click()
    page.fill("#search-query textarea", "Hiroshima AI process")
    page.click("#search-btn")
    toast = page.locator("[data-testid='toast-body']").filter(has_text=message)
    toast.first.wait_for(timeout=10_000)  # the toast says it too, in the same words
    page.wait_for_timeout(500)
    assert page.get_by_text("Error", exact=True).count() == 0  # no red overlay anywhere
    assert "date_from" not in page.inner_text("body")
    page.fill("#filter-from textarea", "")
    page.keyboard.press("Tab")
    page.wait_for_function("document.querySelector('#filter-msg').innerText.trim() === ''")
    page.click("#search-btn")
    page.wait_for_selector("#detail .src-card", timeout=60_000)
    # All passages of a document by default; the score's caption; a table taller than 500 px.
    assert page.locator("#per-doc input").input_value() == "all"
    assert "before language balancing" in page.inner_text("#score-note")
    assert page.locator("#results").bounding_box()["height"] > 560


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
    pg = open_page(browser, small_app)
    yield pg
    pg.context.close()


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
        link = small_page.locator(f"#export-file a[href*='.{fmt}']").first
        link.wait_for(timeout=30_000)
        with small_page.expect_download() as info:
            link.click()
        name = info.value.suggested_filename
        assert re.fullmatch(rf"govrag-search-hemliga-samtal-ai-sakerhet-\d{{4}}-\d{{2}}-\d{{2}}\.{fmt}",
                            name), name  # fmt: skip
        path = tmp_path / name
        info.value.save_as(path)
        got[fmt] = path.read_bytes()
    assert got["csv"].startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.DictReader(io.StringIO(got["csv"].decode("utf-8-sig"), newline="")))
    data = json.loads(got["json"].decode("utf-8"))
    assert rows and len(rows) == len(data["hits"])
    assert rows[0]["doc_id"] == data["hits"][0]["doc_id"] and rows[0]["start"].isdigit()
    assert {"title", "lang", "source", "date", "text", "start", "end"} <= set(rows[0])
    assert rows[0]["search_query"] == data["query"] == "hemliga samtal AI-säkerhet"
    assert rows[0]["search_filters"] == "per document=all" and data["filters"]["langs"] == []
    small_page.fill("#search-query textarea", "Kinas ambassad")
    small_page.click("#search-btn")  # the previous search's file is no longer offered
    small_page.wait_for_function("!document.querySelector('#export-file a')", timeout=60_000)


def test_upload_indexes_a_file_while_the_chat_keeps_answering(
    small_page: Any, browser: Any, small_app: str, tmp_path: Path
) -> None:
    """Upload a long report with its metadata; while it is being indexed, a question still gets
    its answer; afterwards every page shows the new corpus, and the same file is not saved twice."""
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
    open_before = open_page(browser, small_app)  # another person's page, open all along
    assert _status(open_before).startswith("2 documents")
    small_page.get_by_role("tab", name="Corpus").click()
    small_page.set_input_files("#upload input[type=file]", str(upload))
    small_page.fill("#meta-source textarea", "Regional Council of Skåne")
    small_page.fill("#meta-date textarea", "2024-05")
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
    assert "Saved uploads/council_report.txt with its metadata" in log and "1 added" in log
    assert "No date" not in log
    small_page.wait_for_function(  # the table, status and filters refresh right after
        "document.querySelector('#corpus-table').innerText.includes('Council report on')",
        timeout=30_000,
    )
    assert "Regional Council of Skåne" in small_page.inner_text("#corpus-table")
    assert _status(small_page).startswith("3 documents")
    # The page that was open all along catches up; a page opened now reads the new index.
    open_before.wait_for_function(f"{_STATUS}.startsWith('3 documents')", timeout=30_000)
    fresh = open_page(browser, small_app)
    fresh.wait_for_function(f"{_STATUS}.startsWith('3 documents')", timeout=5_000)  # on load
    fresh.get_by_role("tab", name="Corpus").click()
    assert "Council report on algorithm audits" in fresh.inner_text("#corpus-table")
    fresh.get_by_text("Filters (apply to Ask, Search and Compare)").click()
    fresh.click("#filter-sources input")
    fresh.get_by_role("option", name="Regional Council of Skåne").wait_for(timeout=10_000)
    for pg in (open_before, fresh):
        pg.context.close()
    # The same bytes again, under another name: not saved, and the log says where they are.
    again = tmp_path / "copy of the report.txt"
    again.write_bytes(upload.read_bytes())
    small_page.set_input_files("#upload input[type=file]", str(again))
    small_page.wait_for_timeout(500)
    small_page.click("#add-btn")
    small_page.wait_for_function(
        "document.querySelector('#corpus-log textarea').value.includes('already in the corpus')",
        timeout=60_000,
    )
    log = small_page.locator("#corpus-log textarea").input_value()
    assert log == ("Not saved copy of the report.txt: already in the corpus as "
                   "uploads/council_report.txt")  # fmt: skip
