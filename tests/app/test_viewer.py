"""The Document tab's viewer (no browser): every highlighted span is an exact span of the cleaned
text, pages for PDFs, the deep link's quote, messages instead of broken pages."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rag.app.ui.files import viewer_link
from rag.app.ui.viewer import Span, document_html, query_spans, view
from rag.app.ui.widgets import shown
from rag.service import Assistant
from rag.types import Document

TEXT = (
    "Artikel 1. Regeringen föreslår en ny lag om artificiell intelligens.\n\n"
    "Tillsynsmyndigheten ska granska riskfyllda system och får besluta om sanktionsavgifter. "
    "Sanktionsavgifter betalas till staten.\n\n人工智能 生成内容 应当标识。"
)
VIEWER_DOCS = {
    "sv/lag.md": TEXT,
    "en/act.md": "# Act\n\nProviders of high-risk AI systems keep logs. Deployers monitor them.",
}


class Marks(HTMLParser):
    """Text inside each <mark data-hit=…>, with its data-start/data-end, and the quote's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hits: dict[int, list[str]] = {}
        self.offsets: dict[int, tuple[int, int]] = {}
        self.quote: list[str] = []
        self._stack: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._stack.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self._stack and self._stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for tag, attrs in self._stack:
            if tag == "mark" and attrs.get("data-hit") is not None:
                n = int(attrs["data-hit"] or 0)
                self.hits.setdefault(n, []).append(data)
                self.offsets[n] = (int(attrs["data-start"] or 0), int(attrs["data-end"] or 0))
            if tag == "span" and "vw-quote" in (attrs.get("class") or ""):
                self.quote.append(data)


def marks_of(html: str) -> Marks:
    m = Marks()
    m.feed(html)
    return m


def assert_exact(html: str, doc: Document) -> Marks:
    """Every highlighted span's text is ``document.text[start:end]``, as shown."""
    m = marks_of(html)
    for n, pieces in m.hits.items():
        start, end = m.offsets[n]
        assert "".join(pieces) == shown(doc.text[start:end]), n
    return m


@pytest.fixture
def viewer_assistant(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> Assistant:
    a = fake_assistant(make_corpus(VIEWER_DOCS))
    a.ingest()
    return a


def test_every_hit_of_the_query_is_an_exact_span(viewer_assistant: Assistant) -> None:
    doc = viewer_assistant.document("sv/lag")
    assert doc is not None
    html = view(viewer_assistant, "sv/lag", '"ny lag" sanktionsavgifter 生成内容')
    m = assert_exact(html, doc)
    texts = ["".join(p) for p in m.hits.values()]
    assert texts == ["ny lag", "sanktionsavgifter", "Sanktionsavgifter", "生成内容"]
    assert 'id="vw-hit-0"' in html and "vw-nav" in html and "4 matches" in html


def test_a_deep_link_opens_at_its_quote(viewer_assistant: Assistant) -> None:
    doc = viewer_assistant.document("sv/lag")
    assert doc is not None
    start = doc.text.index("Tillsynsmyndigheten")
    end = doc.text.index("sanktionsavgifter.") + len("sanktionsavgifter")
    html = view(viewer_assistant, "sv/lag", "sanktionsavgifter", start, end)
    m = assert_exact(html, doc)
    assert "".join(m.quote) == doc.text[start:end]
    assert html.count('id="vw-quote"') == 1
    assert (
        viewer_link("sv/lag", start, end, "a b") == f"?doc=sv%2Flag&start={start}&end={end}&q=a+b"
    )


def test_a_query_in_another_language_highlights_the_passages(viewer_assistant: Assistant) -> None:
    doc = viewer_assistant.document("en/act")
    assert doc is not None
    spans = query_spans(viewer_assistant, doc, "loggar för högrisksystem")
    assert spans and {s.kind for s in spans} == {"passage"}
    assert_exact(document_html(doc, spans), doc)


def test_pages_are_shown_and_hits_split_at_page_breaks() -> None:
    text = "First page ends with a long sentence that runs on. Second page starts here."
    cut = text.index("runs")
    doc = Document("r", text, "Report", "en", "r.pdf", pages=(0, cut))
    spans = [Span(text.index("long"), text.index("Second"), "match")]
    html = document_html(doc, spans, quote=(text.index("Second"), len(text)))
    assert 'id="vw-page-1"' in html and 'id="vw-page-2"' in html and "Page 2" in html
    m = assert_exact(html, doc)
    assert len(m.hits[0]) == 2  # one hit, cut at the page break
    assert 'href="corpus/r.pdf#page=2"' in html  # the original at the quote's page


@pytest.mark.parametrize("doc_id, query, start, end, words", [
    ("nope", "", None, None, "No document nope"),
    ("sv/lag", "", "5", "999999", "outside this document"),
    ("sv/lag", "", "x", "3", "not a pair of character offsets"),
    ("sv/lag", '"unclosed', None, None, "unclosed quote"),
    ("", "", None, None, "Choose a document"),
])  # fmt: skip
def test_bad_links_and_queries_say_what_is_wrong(
    viewer_assistant: Assistant, doc_id: str, query: str, start: str | None, end: str | None,
    words: str,
) -> None:  # fmt: skip
    assert words in view(viewer_assistant, doc_id, query, start, end)
