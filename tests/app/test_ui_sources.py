"""Source cards, copying and exports with the fake embedder: links, longer context, citations in
publication form, merged cards, best-sentence highlights, clean text to copy, export files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.app.ui.cards import best_sentence, citation_text, link_html, sources_html
from rag.app.ui.exports import (
    answer_json,
    answer_markdown_file,
    answer_plain,
    export_name,
    export_text,
    write_export,
)
from rag.app.ui.search import run_search
from rag.app.ui.widgets import answer_markdown
from rag.service import Assistant
from rag.types import Answer, Citation, Filters, Hit

ARTICLE = (
    "Stockholm, 11 January 2024. Opening remarks came first. "
    "American and Chinese AI-företag held secret talks on AI safety. "
    "The talks were held in Geneva. Officials deltog in two meetings. "
    "The embassy said nothing. A spokesperson declined to comment.\n\n"
    + "Background paragraph about something else entirely. " * 80
    + "Closing line of the article."
)


def _quote(n: int, text: str, quote: str, **kw: str) -> Citation:
    start = text.index(quote)
    fields = {"title": "Secret talks", "lang": "sv", "source": "DailyAI", "date": "2024-01-11",
              "url": "https://dailyai.com/2024/01/talks"} | kw  # fmt: skip
    return Citation(n, "article", "article#0", fields["title"], fields["lang"], fields["source"],
                    fields["date"], quote, start, start + len(quote), fields["url"])  # fmt: skip


@pytest.fixture
def article(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> Assistant:
    assistant = fake_assistant(make_corpus({"article.txt": ARTICLE}))
    assistant.ingest()
    return assistant


def test_urls_become_links_only_for_http_and_https() -> None:
    link = link_html('https://example.org/a?b=1&c="x"')
    assert link == ('<a href="https://example.org/a?b=1&amp;c=&quot;x&quot;" target="_blank" '
                    'rel="noopener noreferrer">https://example.org/a?b=1&amp;c=&quot;x&quot;</a>')  # fmt: skip
    for bad in ("javascript:alert(1)", "JAVASCRIPT://x.org/%0aalert(1)", "data:text/html,<b>",
                "/etc/passwd", "https:///no-host", "ftp://x.org/a"):  # fmt: skip
        out = link_html(bad)
        assert "<a" not in out and "<b>" not in out, out


def test_a_card_links_its_url_and_has_a_longer_context_to_expand(article: Assistant) -> None:
    c = _quote(1, ARTICLE, "The talks were held in Geneva.")
    panel = sources_html(article, Answer("q", "en", "x", False, "extractive", (c,)))
    assert 'href="https://dailyai.com/2024/01/talks" target="_blank" rel="noopener noreferrer"' in (
        panel
    )
    short = re.search(r'<div class="src-text src-short">(.*?)</div>', panel, re.S)
    more = re.search(r"<details class=\"src-more\"><summary>More context</summary>"
                     r'<div class="src-text">(.*?)</div></details>', panel, re.S)  # fmt: skip
    assert short and more
    assert "Background paragraph" in more.group(1)
    assert len(more.group(1)) > 3 * len(short.group(1))
    assert "<mark>The talks were held in Geneva.</mark>" in more.group(1)


def test_copy_citation_gives_the_publication_form(article: Assistant) -> None:
    c = _quote(1, ARTICLE, "Officials deltog in two meetings.")
    expected = ("“Officials deltog in two meetings.” — Secret talks, DailyAI, 2024-01-11. "
                "https://dailyai.com/2024/01/talks")  # fmt: skip
    assert citation_text(c.quote, c.title, c.source, c.date, c.url, c.doc_id) == expected
    assert citation_text("a\n b", "T", "", "", "", "doc", page=4) == (
        "“a b” — T, p. 4. (govrag corpus document doc)"
    )
    panel = sources_html(article, Answer("q", "en", "x", False, "extractive", (c,)))
    buttons = re.findall(r'<button type="button" class="copy-cite" data-cite="([^"]*)"', panel)
    assert buttons == [expected]


def test_quotes_from_one_stretch_share_a_card_without_repeating_context(
    article: Assistant,
) -> None:
    quotes = ["American and Chinese AI-företag held secret talks on AI safety.",
              "The talks were held in Geneva.", "A spokesperson declined to comment."]  # fmt: skip
    far = _quote(4, ARTICLE, "Closing line of the article.")
    cs = (*(_quote(i, ARTICLE, q) for i, q in enumerate(quotes, 1)), far)
    panel = sources_html(article, Answer("q", "en", "x", False, "extractive", cs))
    assert panel.count('class="src-card"') == 2  # the three close quotes in one card
    shorts = re.findall(r'<div class="src-text src-short">(.*?)</div>', panel, re.S)
    assert sum(s.count("Opening remarks came first.") for s in shorts) == 1
    first = shorts[0]
    for n, q in enumerate(quotes, 1):
        assert f'<span class="src-n" id="src-{n}">[{n}]</span><mark>{q}</mark>' in first
    assert 'id="src-4"' in panel and panel.count("Copy citation [") == 3


def test_closest_passages_highlight_their_best_sentence(article: Assistant) -> None:
    hit = article.search("secret talks Geneva", k=1).hits[0]
    best = best_sentence(hit.text, "Where were the talks held? Geneva", "sv", "en")
    assert best and hit.text[best[0] : best[1]] == "The talks were held in Geneva."
    assert best_sentence(hit.text, "zzz qqq", "sv", "en") is None
    answer = Answer("Where were the talks held? Geneva", "en", "The corpus does not say.", True,
                    "extractive", closest=(hit,))  # fmt: skip
    panel = sources_html(article, answer)
    assert re.findall(r"<mark>(.*?)</mark>", panel) == ["The talks were held in Geneva."] * 2


def test_copied_answer_is_clean_text_with_its_citations() -> None:
    quote = "AI-företag (USA) deltog. Se [rapport](x) *nu*."
    c = Citation(1, "d", "d#0", "Hemliga samtal", "sv", "DailyAI", "2024-01-11", quote, 0,
                 len(quote), "https://dailyai.com/x")  # fmt: skip
    text = (
        f"According to 1 source in the corpus:\n\nHemliga samtal (sv, 2024-01-11):\n“{quote}” [1]"
    )
    answer = Answer("Vad sa de?", "sv", text, False, "extractive", (c,))
    plain = answer_plain(answer)
    assert "\\" not in plain and "](#src" not in plain and "&" not in plain
    assert plain.startswith(text)
    assert plain.endswith(
        f"Sources:\n[1] “{quote}” — Hemliga samtal, DailyAI, 2024-01-11. https://dailyai.com/x"
    )


def test_answer_exports_as_markdown_and_json() -> None:
    from markdown_it import MarkdownIt

    quote = "AI-företag deltog. <script>alert(1)</script> [x](javascript:alert(2))"
    c = Citation(1, "d", "d#0", "Hemliga samtal", "sv", "DailyAI", "2024-01-11", quote, 0,
                 len(quote))  # fmt: skip
    answer = Answer("and Japan?", "en", f"According to 1 source:\n\n“{quote}” [1]", False,
                    "extractive", (c,), retrieval_query="What did China say? and Japan?")  # fmt: skip
    day = dt.date(2026, 12, 1)
    md = answer_markdown_file(answer, day)
    assert md.startswith("# and Japan?\n") and "AI-företag deltog." in md  # no \\- or \\.
    assert "_Searched for: What did China say? and Japan?_" in md and "## Sources" in md
    html_out = MarkdownIt("commonmark", {"html": True}).render(md)
    assert "<script>" not in html_out and "&lt;script&gt;" in html_out
    assert "<a " not in html_out  # [x](javascript:…) stays text
    assert md.rstrip().endswith(
        "_Answered by govrag: extractive (verbatim quotes); exported 2026-12-01_"
    )
    data = json.loads(answer_json(answer, day))
    assert data["citations"][0]["quote"] == quote and data["exported"] == "2026-12-01"
    assert data["citations_formatted"] == [f"[1] “{quote}” — Hemliga samtal, DailyAI, "
                                           "2024-01-11. (govrag corpus document d)"]  # fmt: skip
    assert (
        export_name("answer", answer.question, "md", day) == "govrag-answer-and-japan-2026-12-01.md"
    )


def test_a_resolved_follow_up_says_what_was_searched_for() -> None:
    follow = Answer("and Japan?", "en", "x", True, "extractive",
                    retrieval_query="What did the EU ask China? and Japan?")  # fmt: skip
    assert "_Searched for: What did the EU ask China? and Japan?_" in answer_markdown(follow)
    same = Answer("What did the EU ask?", "en", "x", True, "extractive",
                  retrieval_query=" What did the EU ask? ")  # fmt: skip
    assert "Searched for" not in answer_markdown(same)


def test_search_export_names_records_and_marks_its_encoding(tmp_path: Path) -> None:
    hit = Hit(
        1, 0.5, "d", "d#0", "Kinas AI-regler", "zh", "新华社", "2024", "人工智能 säkerhet", 0, 9
    )
    result = {"query": "Hiroshima AI process?", "query_lang": "en", "hits": [hit.to_json()],
              "filters": {"langs": ["sv", "zh"], "sources": [], "date_from": "2024",
                          "date_to": ""}, "per_document": "all"}  # fmt: skip
    day = dt.date(2026, 12, 1)
    assert export_name("search", result["query"], "csv", day) == (  # type: ignore[arg-type]
        "govrag-search-hiroshima-ai-process-2026-12-01.csv"
    )
    assert export_name("search", "Vad sa Kinas ambassad/../?", "json", day) == (
        "govrag-search-vad-sa-kinas-ambassad-2026-12-01.json"
    )
    assert export_name("search", "人工智能", "csv", day) == "govrag-search-2026-12-01.csv"
    text = export_text(result, "csv", day)
    path = Path(write_export("x.csv", text, bom=True))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "新华社".encode() in raw
    (row,) = csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    assert row["chunk_id"] == "d#0" and row["search_query"] == "Hiroshima AI process?"
    assert row["search_filters"] == "lang=sv,zh; from=2024; per document=all"
    assert row["exported"] == "2026-12-01"
    data = json.loads(export_text(result, "json", day))
    assert data["query"] == "Hiroshima AI process?" and data["filters"]["langs"] == ["sv", "zh"]
    assert data["per_document"] == "all" and data["exported"] == "2026-12-01"
    assert list(data)[-1] == "hits" and data["hits"][0]["text"] == "人工智能 säkerhet"


def test_search_tab_shows_every_passage_of_a_document_by_default(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    long_doc = "\n\n".join(
        f"Section {i}. The audit office reviews algorithm audits of agency number {i}. " * 6
        for i in range(40)
    )
    assistant = fake_assistant(make_corpus({"long.txt": long_doc, "short.txt": "Audit rules."}))
    assistant.ingest()
    result, state = run_search(assistant, "algorithm audits of agency", 10, "all", Filters())
    assert sum(h.doc_id == "long" for h in result.hits) > 3
    assert state["per_document"] == "all" and state["filters"]["langs"] == []
    capped, _ = run_search(assistant, "algorithm audits of agency", 10, "2", Filters())
    assert sum(h.doc_id == "long" for h in capped.hits) == 2
