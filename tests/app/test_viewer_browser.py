"""The Document tab in a real browser (Debian's chromium, headless, Playwright): a deep link
``?doc=…&start=…&end=…&q=…`` opens the tab at its quote, the highlighted quote is exactly
``document.text[start:end]``, previous/next walk the query's hits, pages of a PDF are shown, and
a hit's "open in the viewer" link from the Search tab opens the same document.

The app serves a shipped PDF and a Swedish note with the hash embedder (no model: it starts in
seconds). Set GOVRAG_VIEWER_SCREENSHOT=docs/viewer.png to save a screenshot of the viewer.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from rag.app.ui.files import viewer_link
from rag.app.ui.widgets import shown
from rag.service import Assistant
from tests.app.test_browser import browser  # noqa: F401  (the module's chromium)
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.model  # with the other browser tests (needs chromium, not the model)

PDF = "int/INT_g7_hiroshima_code_of_conduct_2023.en.pdf"
NOTE = "Tillsynsmyndigheten ska granska riskfyllda system och får besluta om sanktionsavgifter."


@pytest.fixture(scope="module")
def viewer_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Assistant]]:
    from rag.app.ui import build_app, launch
    from tests.reliability.common import fake_assistant

    root = tmp_path_factory.mktemp("viewer")
    corpus = root / "corpus"
    (corpus / "int").mkdir(parents=True)
    shutil.copy(ROOT / "corpus" / PDF, corpus / PDF)
    (corpus / "note.sv.md").write_text(f"# Lag om AI\n\n{NOTE}\n", encoding="utf-8")
    assistant = fake_assistant(corpus, root / "index", root / "cache")
    assert assistant.ingest().skipped == ()
    port = free_port()
    app = build_app(assistant)
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True, corpus_dir=corpus)
    yield f"http://127.0.0.1:{port}/", assistant
    app.close()


_QUOTE = (
    "() => [...document.querySelectorAll('#viewer .vw-quote')].map(e => e.textContent).join('')"
)
_MARKS = """() => [...document.querySelectorAll('#viewer mark[data-hit]')].map(m => ({
  hit: m.dataset.hit, start: +m.dataset.start, end: +m.dataset.end, text: m.textContent,
  current: m.classList.contains('vw-current')}))"""


def test_a_deep_link_opens_the_viewer_at_its_quote(
    browser: Any,  # noqa: F811
    viewer_app: tuple[str, Assistant],
) -> None:
    url, assistant = viewer_app
    doc_id = PDF.removesuffix(".pdf")
    doc = assistant.document(doc_id)
    assert doc is not None and len(doc.pages) > 1
    start = doc.pages[1] + 10  # a quote on page 2
    end = start + 120
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(url + viewer_link(doc_id, start, end, '"AI" OR risks'))
    page.wait_for_selector("#viewer #vw-quote", timeout=60_000)
    quote = page.evaluate(_QUOTE)
    assert quote == shown(doc.text[start:end])
    page.wait_for_function(  # the text is scrolled to the quote, on page 2
        "() => document.querySelector('#vw-quote').dataset.seen === '1'"
        " && document.querySelector('#viewer .vw-doc').scrollTop > 0",
        timeout=10_000,
    )
    assert page.locator("#viewer-tab").is_visible()  # the Document tab is the one shown
    assert page.locator("#viewer #vw-page-2").count() == 1
    assert page.locator("#viewer a.vw-file").get_attribute("href").endswith(".pdf#page=2")
    marks = page.evaluate(_MARKS)
    assert marks
    pieces: dict[str, list[str]] = {}
    for m in marks:
        pieces.setdefault(m["hit"], []).append(m["text"])
    for m in marks:  # every highlighted span is exactly the cleaned text at its offsets
        assert "".join(pieces[m["hit"]]) == shown(doc.text[m["start"] : m["end"]])
    page.click("#viewer .vw-nav[data-step=next]")
    page.click("#viewer .vw-nav[data-step=next]")
    current = [m for m in page.evaluate(_MARKS) if m["current"]]
    assert current and {m["hit"] for m in current} == {"1"}
    assert page.locator("#viewer .vw-count").inner_text().startswith("2 / ")
    page.click("#viewer .vw-nav[data-step=prev]")
    assert {m["hit"] for m in page.evaluate(_MARKS) if m["current"]} == {"0"}
    if shot := os.environ.get("GOVRAG_VIEWER_SCREENSHOT"):
        page.locator("#viewer #vw-quote").scroll_into_view_if_needed()
        page.screenshot(path=shot, full_page=False)
    page.close()


def _searched(chromium: Any, url: str, query: str) -> Any:
    """A new page on the app whose Search tab has run ``query``."""
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    page.goto(url)
    page.get_by_role("tab", name="Search").click()
    page.fill("#search-query textarea", query)
    page.click("#search-btn")
    return page


def test_a_search_hit_opens_in_the_viewer(
    browser: Any,  # noqa: F811
    viewer_app: tuple[str, Assistant],
) -> None:
    url, _ = viewer_app
    page = _searched(browser, url, '"besluta om sanktionsavgifter"')
    link = page.locator("#detail a.src-view")
    link.wait_for(timeout=60_000)
    href = link.get_attribute("href")
    assert href.startswith("?doc=note.sv&") and "q=" in href
    page.goto(url + href)
    page.wait_for_selector("#viewer #vw-quote", timeout=60_000)
    texts = [m["text"] for m in page.evaluate(_MARKS)]
    assert texts == ["besluta om sanktionsavgifter"]
    page.close()


def test_bad_syntax_is_said_under_the_search_box(
    browser: Any,  # noqa: F811
    viewer_app: tuple[str, Assistant],
) -> None:
    url, _ = viewer_app
    page = _searched(browser, url, '"unclosed phrase')
    page.wait_for_function(
        "() => document.querySelector('#syntax-msg').innerText.includes('unclosed quote')",
        timeout=30_000,
    )
    page.close()


def test_the_corpus_table_opens_a_document(
    browser: Any,  # noqa: F811
    viewer_app: tuple[str, Assistant],
) -> None:
    url, _ = viewer_app
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(url)
    page.get_by_role("tab", name="Corpus").click()
    page.locator("#corpus-table").get_by_text("note.sv", exact=True).first.click()
    page.wait_for_function(
        "() => (document.querySelector('#viewer') || {}).innerText?.includes('sanktionsavgifter')",
        timeout=30_000,
    )
    page.close()


def test_the_api_takes_the_syntax_and_says_what_is_wrong(viewer_app: tuple[str, Assistant]) -> None:
    from gradio_client import Client

    client = Client(viewer_app[0], verbose=False)
    result = client.predict('"besluta om sanktionsavgifter"', 5, [], [], [], True,
                            api_name="/search")  # fmt: skip
    assert [h["doc_id"] for h in result["hits"]] == ["note.sv"]
    result = client.predict("riskfyllda system", 5, [], [], [], False, api_name="/search")
    assert result["query_lang"] == "sv" and {h["lang"] for h in result["hits"]} == {"sv"}
    with pytest.raises(Exception, match="unclosed quote"):
        client.predict('"AI Act', 5, api_name="/search")
