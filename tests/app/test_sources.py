"""Where a citation points: page numbers through ingest into hits, citations, the CLI and the
source card; the card's badges, its link to the corpus file at that page (served read-only by the
app) and "Also in" for linked translations; the jurisdiction and type filters of the app."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.testclient import TestClient

from rag.app.cli import main
from rag.app.ui.cards import sources_html
from rag.app.ui.files import corpus_route, file_url
from rag.app.ui.widgets import choices
from rag.service import Assistant
from rag.types import Filters
from tests.ingest.test_pdf import text_pdf

PAGES = [
    ["Chapter one covers the scope of the act and its definitions."],
    ["Providers of high-risk systems must keep logs for six months."],
    ["Penalties reach thirty million euro for prohibited practices."],
]
CATALOG = [
    {"path": "act.pdf", "title": "Model Act", "jurisdiction": "US-CO", "type": "law",
     "status": "enacted", "lang": "en"},
    {"path": "en/articles.json", "id": "reg", "title": "Regulation", "lang": "en",
     "jurisdiction": "EU", "type": "regulation"},
    {"path": "nl/articles.json", "id": "reg_nl", "title": "Verordening", "lang": "nl",
     "jurisdiction": "EU", "type": "regulation", "translation_of": "reg"},
]  # fmt: skip


def _corpus(make_corpus: Callable[..., Path]) -> Path:
    return make_corpus({
        "act.pdf": text_pdf(PAGES),
        "en/articles.json": json.dumps({"article_005": {
            "title": "Article 5", "text_content": "Social scoring by public authorities is banned."}}),
        "nl/articles.json": json.dumps({"article_005": {
            "title": "Artikel 5", "text_content": "Sociale scoring door overheden is verboden."}}),
        "_private/notes.txt": "not to be served",
        "catalog.jsonl": "\n".join(json.dumps(e) for e in CATALOG),
    })  # fmt: skip


def test_pages_reach_hits_citations_and_cards(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    assistant = fake_assistant(_corpus(make_corpus))
    assistant.ingest()
    hits = assistant.search("logs six months", k=10, per_doc=10, filters=Filters(docs=("act",)))
    pages = {h.page for h in hits.hits}
    assert pages <= {1, 2, 3} and pages, hits
    for h in hits.hits:  # the page of a hit is the page its text starts on
        doc = assistant.document(h.doc_id)
        assert doc is not None and h.page == doc.page_at(h.start)
        assert (h.jurisdiction, h.doc_type, h.status, h.file) == ("US-CO", "law", "enacted",
                                                                   "act.pdf")  # fmt: skip
    answer = assistant.ask("How long must providers keep logs?", filters=Filters(docs=("act",)))
    assert not answer.abstained, answer
    for c in answer.citations:
        doc = assistant.document(c.doc_id)
        assert doc is not None and c.page == doc.page_at(c.start)
        assert doc.text[c.start : c.end] == c.quote
    card = sources_html(assistant, answer)
    first = answer.citations[0]
    assert f">p. {first.page}</span>" in card and ">US-CO</span>" in card and ">law</span>" in card
    assert f'href="corpus/act.pdf#page={first.page}"' in card


def test_cli_prints_page_and_jurisdiction(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    assistant = fake_assistant(_corpus(make_corpus))
    assistant.ingest()
    s = assistant.settings
    env = {"RAG_CORPUS_DIR": str(s.corpus_dir), "RAG_INDEX_DIR": str(s.index_dir),
           "RAG_MODEL": "hash:64", "RAG_CACHE_DIR": str(s.cache_dir)}  # fmt: skip
    out = CliRunner().invoke(main, ["search", "penalties thirty million", "--type", "law"], env=env)
    assert out.exit_code == 0, out.output
    assert "US-CO · law" in out.output and "p. " in out.output
    out = CliRunner().invoke(main, ["search", "penalties", "--jurisdiction", "US", "--json"],
                             env=env)  # fmt: skip
    hits = json.loads(out.stdout)["hits"]
    assert hits and {h["jurisdiction"] for h in hits} == {"US-CO"}  # US covers US-CO
    assert all(isinstance(h["page"], int) and h["file"] == "act.pdf" for h in hits)


def test_linked_translation_shows_as_also_in(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    assistant = fake_assistant(_corpus(make_corpus))
    assistant.ingest()
    answer = assistant.ask("Is social scoring banned?", filters=Filters(docs=("reg/",)))
    assert answer.citations and answer.citations[0].translations == ("reg_nl/article_005",)
    card = sources_html(assistant, answer)
    assert "Also in: nl — Verordening — Artikel 5" in card
    assert "Sociale scoring door overheden is verboden." in card


def test_filter_choices_list_countries_for_their_subdivisions(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    assistant = fake_assistant(_corpus(make_corpus))
    assistant.ingest()
    langs, _, jurisdictions, types = choices(assistant)
    assert langs == ["en", "nl"] and jurisdictions == ["EU", "US", "US-CO"]
    assert types == ["law", "regulation"]


def test_corpus_files_are_served_read_only(make_corpus: Callable[..., Path]) -> None:
    corpus = _corpus(make_corpus)
    (corpus.parent / "secret.txt").write_text("outside the corpus", encoding="utf-8")
    client = TestClient(Starlette(routes=[corpus_route(corpus)]))
    got = client.get(file_url("act.pdf", 2).split("#")[0])
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert got.headers["content-type"] == "application/pdf"
    assert "inline" in got.headers["content-disposition"]
    text = client.get("/corpus/en/articles.json")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    for bad in ("/corpus/../secret.txt", "/corpus/%2e%2e/secret.txt", "/corpus/catalog.jsonl",
                "/corpus/_private/notes.txt", "/corpus/missing.pdf", "/corpus/en"):  # fmt: skip
        assert client.get(bad).status_code == 404, bad
    assert client.post("/corpus/act.pdf").status_code == 405
    assert file_url("a b.pdf", 3) == "corpus/a%20b.pdf#page=3"
    assert file_url("notes.txt", 3) == "corpus/notes.txt"
