"""Batch search and saved searches in a real browser (Debian's chromium, headless, Playwright).

The app serves five shipped news articles (sv, en, nl, …) with the real model, so that it starts in
about a minute: 200 terms from a CSV run in one batch while another session's question is
answered in the Ask tab; the exported CSV is checked row by row against ``Assistant.search`` (what
``rag search`` prints) for the same terms. A search saved in the panel reports a file that an
ingest adds afterwards. GOVRAG_BATCH_SCREENSHOT=docs/batch.png and
GOVRAG_ALERTS_SCREENSHOT=docs/alerts.png refresh the README's pictures of the two panels.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_browser import browser, open_page  # noqa: F401  (the module's chromium)

pytestmark = pytest.mark.model

FILES = ["000_d6080d44269c3cef.txt", "001_f22444b573f99c26.txt", "002_05be2de35abf45d3.txt",
         "003_558473f26e01e703.txt", "004_2b0df22166c00e27.txt"]  # fmt: skip
SUBJECTS = ["AI safety", "Chinese companies", "secret talks", "embassy", "regulation",
            "Hiroshima process", "Japan", "the European Union", "chips", "export controls",
            "ansiktsigenkänning", "säkerhetssamtal", "kunstmatige intelligentie", "toezicht",
            "OpenAI", "Anthropic", "elections", "deepfakes", "labels", "transparency"]  # fmt: skip
FORMS = ["{}", "what about {}?", "{} rules", "news on {}", "{} in 2023", "who discussed {}",
         "{} and governments", "{} risks", "{} agreement", "{} statement"]  # fmt: skip
TERMS = [form.format(s) for form in FORMS for s in SUBJECTS]
assert len(TERMS) == 200


@pytest.fixture(scope="module")
def desk_app(real_embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from rag.app.ui import build_app, launch
    from rag.config import Settings
    from rag.service import Assistant
    from tests.conftest import SHIPPED_CORPUS, free_port

    corpus = tmp_path_factory.mktemp("desk") / "corpus"
    corpus.mkdir()
    for name in FILES:
        shutil.copy(SHIPPED_CORPUS / name, corpus / name)
    settings = Settings.from_env(corpus_dir=corpus, index_dir=corpus.parent / "index")
    assistant = Assistant(settings, real_embedder)
    assert assistant.ingest().documents == len(FILES)
    app = build_app(assistant)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", assistant
    app.close()


_SUMMARY = "(document.querySelector('#batch-summary [data-testid=markdown]')?.innerText ?? '')"


def _ask(page: Any, question: str) -> None:
    page.fill("#question textarea", question)
    page.click("#ask-btn")


def test_200_terms_export_matches_search_while_another_session_is_answered(
    browser: Any,  # noqa: F811
    desk_app: Any,
    tmp_path: Path,
) -> None:
    url, assistant = desk_app
    terms = tmp_path / "terms200.csv"
    with terms.open("w", encoding="utf-8-sig", newline="") as fh:  # Excel's BOM included
        writer = csv.writer(fh)
        writer.writerow(["term"])
        writer.writerows([t] for t in TERMS)
    analyst, other = open_page(browser, url), open_page(browser, url)
    analyst.get_by_role("tab", name="Search").click()
    analyst.get_by_text("Batch search: a file of terms").click()
    analyst.set_input_files("#batch-file input[type=file]", str(terms))
    analyst.wait_for_timeout(500)
    analyst.click("#batch-run")
    # the batch shows its progress, and meanwhile another person's question gets its answer
    analyst.wait_for_function(
        "document.querySelector('#batch').innerText.includes('/ 200 terms')", timeout=60_000
    )
    _ask(other, "What did the Chinese embassy in the UK say?")
    other.wait_for_function("document.querySelector('#chat').innerText.includes('Answered by:')",
                            timeout=120_000)  # fmt: skip
    # the batch was still running when the answer came: its progress shows, its summary not yet
    assert "/ 200 terms" in analyst.inner_text("#batch-summary")
    assert analyst.evaluate(f"{_SUMMARY}.trim()") == "", "the batch had finished first"
    assert "[1]" in other.inner_text("#chat")
    analyst.wait_for_function(f"{_SUMMARY}.includes('200 terms')", timeout=300_000)
    assert "terms200.csv" in analyst.inner_text("#batch-summary")
    if shot := os.environ.get("GOVRAG_BATCH_SCREENSHOT"):  # docs/batch.png
        analyst.locator("#batch").screenshot(path=shot)
    assert "<mark>" in analyst.inner_html("#batch-results") or analyst.locator(
        "#batch-results mark").count() > 0  # fmt: skip
    analyst.click("#batch-export-csv")
    link = analyst.locator("#batch-export-file a[href*='.csv']").first
    link.wait_for(timeout=30_000)
    with analyst.expect_download() as info:
        link.click()
    assert info.value.suggested_filename.startswith("govrag-batch-terms200-")
    path = tmp_path / "export.csv"
    info.value.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    expected = []
    for n, term in enumerate(TERMS, 2):  # row 1 is the header
        for h in assistant.search(term, 5).hits:  # what `rag search TERM` lists
            expected.append((str(n), term, str(h.rank), h.chunk_id, str(h.start), str(h.end),
                             h.title, h.text))  # fmt: skip
    got = [(r["row"], r["term"], r["rank"], r["chunk_id"], r["start"], r["end"], r["title"],
            r["text"]) for r in rows]  # fmt: skip
    assert len(got) == len(expected) and got == expected
    for analyst_or_other in (analyst, other):
        analyst_or_other.context.close()


def test_a_saved_search_reports_a_file_ingested_afterwards(
    browser: Any,  # noqa: F811
    desk_app: Any,
) -> None:
    url, assistant = desk_app
    page = open_page(browser, url)
    page.get_by_role("tab", name="Search").click()
    page.fill("#search-query textarea", "municipal drone surveillance permits")
    page.get_by_text("Saved searches and alerts").click()
    page.fill("#saved-name textarea", "drones")
    page.click("#save-search")
    page.wait_for_function(
        "document.querySelector('#saved-table').innerText.includes('drones')", timeout=60_000
    )
    assert "No new hits" in page.inner_text("#alerts")
    (assistant.settings.corpus_dir / "drones.txt").write_text(
        "Drone surveillance\n\nThe municipality now requires permits for drone surveillance of "
        "public squares; the police must apply for each flight.", encoding="utf-8")  # fmt: skip
    assert assistant.ingest().files_added == ("drones.txt",)
    page.wait_for_function(
        "document.querySelector('#alerts').innerText.includes('New hits for')", timeout=60_000
    )
    alerts = page.inner_text("#alerts")
    if shot := os.environ.get("GOVRAG_ALERTS_SCREENSHOT"):  # docs/alerts.png
        page.locator("#saved").screenshot(path=shot)
    assert "drones — “municipal drone surveillance permits”: 1 new of" in alerts
    assert "new document" in alerts.lower() and "requires permits for drone surveillance" in alerts
    page.click("#saved-pick input")
    page.locator("#saved-pick [role=option][aria-label='drones']").click()
    page.click("#saved-seen")
    page.wait_for_function(
        "document.querySelector('#alerts').innerText.includes('No new hits')", timeout=60_000
    )
    page.click("#saved-open")  # runs it in the Search tab
    page.wait_for_selector("#detail .src-card", timeout=60_000)
    assert page.input_value("#search-query textarea") == "municipal drone surveillance permits"
    page.context.close()
