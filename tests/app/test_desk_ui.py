"""The batch and saved-search panels' views without a browser: the table rows, the summary, the
alerts (escaped), and both panels built into the app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.app.ui.batch import batch_rows, summary
from rag.app.ui.saved import alerts_html, saved_rows
from rag.service import Assistant
from rag.service.batch import BatchTerm, run_batch
from rag.service.saved import Alert, SavedSearch
from rag.types import Filters, Hit, SearchResult

HOSTILE = Hit(rank=1, score=0.5, doc_id="x", chunk_id="x#0", title="<script>alert(1)</script>",
              lang="en", source="", date="2024", text="Facial recognition <b>ban</b> in parks",
              start=0, end=38, jurisdiction="SE", page=3)  # fmt: skip


def _search(q: str, k: int, f: Filters, *, per_doc: int | None = None) -> SearchResult:
    if q == "bad":
        raise ValueError("unknown field nope:")
    return SearchResult(q, "en", (HOSTILE,) if q.startswith("facial") else ())


def test_batch_table_rows_and_summary() -> None:
    terms = [BatchTerm(2, "facial ban"), BatchTerm(3, "nothing"), BatchTerm(4, "bad")]
    result = run_batch(_search, terms)
    rows = batch_rows(result)
    assert len(rows) == 3
    term, rank, doc, jurisdiction, lang, page, passage, score = rows[0]
    assert (term, rank, jurisdiction, lang, page, score) == ("facial ban", 1, "SE", "en", 3, 0.5)
    assert "&lt;script&gt;" in doc and "<script>" not in doc
    assert "<mark>Facial</mark>" in passage and "<mark>ban</mark>" in passage
    assert "&lt;b&gt;" in passage
    assert (
        rows[1][6] == "<em>no passage found</em>" and rows[2][6] == "<em>unknown field nope:</em>"
    )
    assert "3 terms, 1 passages" in summary(result) and "1 term(s) refused" in summary(result)
    assert len(batch_rows(result, limit=2)) == 2


def test_alerts_are_escaped_and_name_new_documents() -> None:
    saved = SavedSearch(
        "<i>x</i>", "facial ban", Filters(langs=("sv",)), 5, None, "", "2026-12-01T10:00:00+00:00"
    )
    quiet = Alert(saved, (HOSTILE,))
    loud = Alert(saved, (HOSTILE,), (HOSTILE,), ("x",))
    assert "No new hits for the 1 saved search(es)" in alerts_html([quiet])
    html = alerts_html([quiet, loud])
    assert "New hits for 1 saved search(es)" in html and "new document" in html
    assert "<i>x</i>" not in html and "&lt;script&gt;" in html and "1 new of 1" in html
    assert saved_rows([loud]) == [["<i>x</i>", "facial ban", "lang=sv", 5, 1, "2026-12-01 10:00"]]
    assert "No saved searches yet" in alerts_html([])


def test_the_app_builds_with_both_panels(
    make_corpus: Callable[[dict[str, str]], Path], fake_assistant: Callable[..., Assistant]
) -> None:
    from rag.app.ui import build_app

    assistant = fake_assistant(make_corpus({"a.txt": "A\n\nFacial recognition rules."}))
    assistant.ingest()
    app = build_app(assistant)
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"batch", "batch-file", "batch-run", "batch-results", "batch-export-csv", "saved",
            "alerts", "save-search", "saved-table", "saved-pick"} <= ids  # fmt: skip
    names = {d.get("api_name") for d in app.config["dependencies"]}
    assert {"batch", "alerts", "search", "ask", "export", "compare"} <= names
