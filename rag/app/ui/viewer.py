"""The Document tab: one document whole — its metadata, its full cleaned text (page by page for
PDFs), every hit of the current query highlighted with previous/next, and links to the original.

Opened from a search hit, a citation or the Corpus tab through a deep link,
``?doc=<doc_id>&start=<offset>&end=<offset>&q=<query>``, which the page reads when it loads
(:func:`open_from_link`), so a citation can be shared and reopens at its quote. The hits of the
query in the document are:

- every occurrence of its phrases and of its free words (exact and lexical, as the search syntax
  matches them: ``rag/search/matching.py``);
- when none occurs (a query in another language), the document's passages the search returns.

Every highlighted span is an exact span of ``document.text`` (``data-start``/``data-end`` on each
mark say which); all document text goes through ``esc``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.app.ui.cards import link_html
from rag.app.ui.files import file_url, viewer_link
from rag.app.ui.widgets import esc
from rag.index.lexical import tokenize
from rag.search.matching import find_all
from rag.search.query_syntax import parse
from rag.service import Assistant
from rag.types import Document, Filters

log = logging.getLogger(__name__)

MAX_HITS = 2000  # highlighted spans per document
PASSAGES = 10  # passages asked for when no word of the query occurs in the document

VIEWER_JS = """
element.addEventListener('click', (ev) => {
  const b = ev.target.closest('.vw-nav');
  if (!b) return;
  const hits = [...element.querySelectorAll('mark[id^="vw-hit-"]')];
  if (!hits.length) return;
  const box = element.querySelector('.vw-doc');
  let i = parseInt(box.dataset.current || '-1', 10);
  i = b.dataset.step === 'next' ? (i + 1) % hits.length : (i - 1 + hits.length) % hits.length;
  box.dataset.current = String(i);
  element.querySelectorAll('mark.vw-current').forEach(m => m.classList.remove('vw-current'));
  element.querySelectorAll(`mark[data-hit="${i}"]`).forEach(m => m.classList.add('vw-current'));
  hits[i].scrollIntoView({block: 'center'});
  const at = element.querySelector('.vw-count');
  if (at) at.textContent = `${i + 1} / ${hits.length}`;
});
// a deep link's quote: scroll the text to it once the tab is shown (a hidden tab has no layout)
setInterval(() => {
  const q = document.querySelector('#viewer #vw-quote:not([data-seen])');
  const box = document.querySelector('#viewer .vw-doc');
  if (!q || !box || !box.offsetParent || !box.clientHeight) return;
  q.dataset.seen = '1';
  box.scrollTop += q.getBoundingClientRect().top - box.getBoundingClientRect().top
                   - box.clientHeight / 3;
}, 300);
"""
VIEWER_CSS = """
#viewer .vw-doc { white-space: pre-wrap; line-height: 1.5; max-height: 65vh !important;
  overflow-y: auto !important; border: 1px solid var(--border-color-primary); padding: 0.8em; }
.vw-page-no { font-weight: bold; margin: 1em 0 0.3em; border-top: 1px dashed #999; }
.vw-doc mark { background: #ffe58a; }
.vw-doc mark.vw-passage { background: #dbeafe; }
.vw-doc mark.vw-current { outline: 2px solid #d97706; }
.vw-quote { background: #bbf7d0; }
.vw-meta td { padding: 0 0.8em 0 0; vertical-align: top; }
"""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str  # "match" (a word or phrase of the query) or "passage" (a retrieved passage)


def _merge(spans: Sequence[tuple[int, int]], kind: str) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1].end:
            out[-1] = Span(out[-1].start, max(out[-1].end, end), kind)
        else:
            out.append(Span(start, end, kind))
    return out


def query_spans(
    assistant: Assistant, doc: Document, query: str, cross_lingual: bool = True
) -> list[Span]:
    """The hits of ``query`` in ``doc`` (see the module docstring), in text order, not
    overlapping, at most ``MAX_HITS``. Bad syntax raises QuerySyntaxError."""
    if not query.strip():
        return []
    parsed = parse(query)
    words = [w for w in parsed.words  # not the stopwords
             if tokenize(w, doc.lang or "en") or any(ch.isdigit() for ch in w)]  # fmt: skip
    found = find_all(doc.text, [*parsed.phrases, *words])
    if found:
        return _merge(found, "match")[:MAX_HITS]
    try:
        hits = assistant.search(query, PASSAGES, Filters(docs=(doc.doc_id,)), per_doc=PASSAGES,
                                cross_lingual=cross_lingual).hits  # fmt: skip
    except ValueError as exc:  # e.g. the query's own doc: filter names another document
        log.info("no passages for the viewer: %s", exc)
        return []
    return _merge([(h.start, h.end) for h in hits if h.doc_id == doc.doc_id], "passage")


def _segments(doc: Document, spans: Sequence[Span], quote: tuple[int, int] | None) -> list[int]:
    cuts = {0, len(doc.text), *doc.pages}
    for s in spans:
        cuts |= {s.start, s.end}
    if quote:
        cuts |= set(quote)
    return sorted(c for c in cuts if 0 <= c <= len(doc.text))


def render_text(doc: Document, spans: Sequence[Span], quote: tuple[int, int] | None) -> str:
    """The whole text escaped, page by page for PDFs, every span in a <mark> (split where a page
    or the quote starts or ends; each piece carries the span's number and offsets), the quote in
    a ``vw-quote`` span."""
    cuts = _segments(doc, spans, quote)
    out: list[str] = []
    j = 0  # the span at or after the segment
    seen: set[int] = set()
    page = 0
    for a, b in itertools.pairwise(cuts):
        if doc.pages and (doc.page_at(a) or 1) != page:
            page = doc.page_at(a) or 1
            out.append(("</div>" if out else "") + f'<div class="vw-page" id="vw-page-{page}">'
                       f'<div class="vw-page-no">Page {page}</div>')  # fmt: skip
        while j < len(spans) and spans[j].end <= a:
            j += 1
        piece = esc(doc.text[a:b])
        if j < len(spans) and spans[j].start <= a < spans[j].end:
            s = spans[j]
            anchor = "" if j in seen else f' id="vw-hit-{j}"'
            seen.add(j)
            cls = "vw-passage" if s.kind == "passage" else "vw-match"
            piece = (f'<mark class="{cls}"{anchor} data-hit="{j}" data-start="{s.start}" '
                     f'data-end="{s.end}">{piece}</mark>')  # fmt: skip
        if quote and quote[0] <= a < quote[1]:
            anchor = ' id="vw-quote"' if a == quote[0] else ""
            piece = f'<span class="vw-quote"{anchor}>{piece}</span>'
        out.append(piece)
    if doc.pages:
        out.append("</div>")
    return "".join(out)


def _meta_rows(doc: Document) -> list[tuple[str, str]]:
    rows = [("Document", esc(doc.doc_id)), ("Jurisdiction", esc(doc.jurisdiction)),
            ("Type", esc(doc.doc_type)), ("Status", esc(doc.status)), ("Date", esc(doc.date)),
            ("Language", esc(doc.lang)), ("Source", esc(doc.source)),
            ("Licence", esc(doc.licence)),
            ("URL", link_html(doc.url) if doc.url else "")]  # fmt: skip
    if doc.translations:
        links = [f'<a href="{esc(viewer_link(t))}" target="_blank" rel="noopener noreferrer">'
                 f"{esc(t)}</a>" for t in doc.translations]  # fmt: skip
        rows.append(("Translations", ", ".join(links)))
    if doc.pages:
        rows.append(("Pages", str(len(doc.pages))))
    return [(k, v) for k, v in rows if v]


def document_html(
    doc: Document, spans: Sequence[Span], quote: tuple[int, int] | None = None, note: str = ""
) -> str:
    """The viewer: title, metadata, the original file's link, hit navigation, the text."""
    meta = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in _meta_rows(doc))
    page = doc.page_at(quote[0]) if quote else None
    original = ""
    if doc.path:
        label = f"open the original file ({doc.path})" + (f" at p. {page}" if page else "")
        original = (f'<a class="vw-file" href="{esc(file_url(doc.path, page))}" target="_blank" '
                    f'rel="noopener noreferrer">{esc(label)}</a>')  # fmt: skip
    kind = "passage" if spans and spans[0].kind == "passage" else "match"
    count = (f"{len(spans)} {kind}{'es' if kind == 'match' else 's'} of the query"
             if spans else "no hits of the query")  # fmt: skip
    nav = (f'<button type="button" class="vw-nav" data-step="prev">◀ previous</button> '
           f'<span class="vw-count">{count}</span> '
           f'<button type="button" class="vw-nav" data-step="next">next ▶</button>'
           if spans else f'<span class="vw-count">{esc(count)}</span>')  # fmt: skip
    return (
        f'<div class="vw"><div class="vw-title"><b>{esc(doc.title or doc.doc_id)}</b></div>'
        f'<table class="vw-meta">{meta}</table><div class="vw-links">{original}</div>'
        + (f'<p class="vw-note">{esc(note)}</p>' if note else "")
        + f'<div class="vw-tools">{nav}</div>'
        f'<div class="vw-doc" data-current="-1">{render_text(doc, spans, quote)}</div></div>'
    )


def _quote(doc: Document, start: Any, end: Any) -> tuple[tuple[int, int] | None, str]:
    """The link's span, or None and why it is not shown."""
    if start in (None, "") and end in (None, ""):
        return None, ""
    try:
        lo, hi = int(start), int(end)
    except (TypeError, ValueError):
        return None, f"The link's span {start}–{end} is not a pair of character offsets."
    if not 0 <= lo < hi <= len(doc.text):
        size = f"{len(doc.text):,}"
        return None, (f"The link's span {lo}–{hi} is outside this document ({size} "
                      "characters): has the document changed since?")  # fmt: skip
    return (lo, hi), ""


def view(
    assistant: Assistant, doc_id: str, query: str = "", start: Any = None, end: Any = None,
    cross_lingual: bool = True,
) -> str:  # fmt: skip
    """The viewer's HTML for ``doc_id`` (a message when there is no such document)."""
    doc_id = (doc_id or "").strip()
    if not doc_id:
        return "<p>Choose a document.</p>"
    try:
        doc = assistant.document(doc_id)
    except Exception as exc:  # no index yet, a store error: say so instead of a broken page
        log.warning("viewer: %s", exc)
        return f"<p>{esc(str(exc))}</p>"
    if doc is None:
        return f"<p>No document {esc(doc_id)} in the index.</p>"
    quote, note = _quote(doc, start, end)
    try:
        spans = query_spans(assistant, doc, query or "", cross_lingual)
    except ValueError as exc:
        spans, note = [], f"{note} The query was not used: {exc}".strip()
    return document_html(doc, spans, quote, note)


def doc_choices(assistant: Assistant) -> list[tuple[str, str]]:
    try:
        docs = assistant.documents()
    except Exception:  # no index yet
        return []
    return [(f"{d.doc_id} — {d.title}"[:120], d.doc_id) for d, _ in docs]


def viewer_tab(assistant: Assistant) -> tuple[Any, Any, Any, Any]:
    """The Document tab; returns (doc dropdown, query box, span state, the viewer HTML) for
    the deep link."""
    with gr.Tab("Document", id="viewer", elem_id="viewer-tab"):
        with gr.Row():
            doc = gr.Dropdown(doc_choices(assistant), label="Document", allow_custom_value=True,
                              scale=3, elem_id="viewer-doc")  # fmt: skip
            query = gr.Textbox(label="Highlight the hits of (search syntax)", scale=3,
                               elem_id="viewer-query")  # fmt: skip
            cross = gr.Checkbox(True, label="Match across languages", scale=1,
                                elem_id="viewer-cross")  # fmt: skip
            go = gr.Button("Open", variant="primary", scale=1, elem_id="viewer-open")
        span = gr.State((None, None))
        html = gr.HTML("<p>Open a document from a search hit, a citation or the Corpus tab, "
                       "or choose one here.</p>", elem_id="viewer",
                       js_on_load=VIEWER_JS)  # fmt: skip

        def show(doc_id: str, q: str, c: bool, s: tuple[Any, Any]) -> str:
            return view(assistant, doc_id, q, s[0], s[1], c)

        for event in (go.click, query.submit):
            event(show, [doc, query, cross, span], html, api_visibility="private")
        doc.select(lambda: (None, None), None, span, queue=False, api_visibility="private")
    return doc, query, span, html


def open_from_link(app: gr.Blocks, assistant: Assistant, tabs: Any, outputs: Sequence[Any]) -> None:
    """On page load: the document list is read afresh, and a ``?doc=…&start=…&end=…&q=…`` link
    opens the Document tab at that span."""

    def on_load(request: gr.Request) -> tuple[Any, ...]:
        params = dict(request.query_params) if request is not None else {}
        doc_id = params.get("doc", "")
        docs = gr.update(choices=doc_choices(assistant))  # the documents indexed by now
        if not doc_id:
            return gr.skip(), docs, gr.skip(), gr.skip(), gr.skip()
        q, start, end = params.get("q", ""), params.get("start"), params.get("end")
        html = view(assistant, doc_id, q, start, end)
        docs = gr.update(choices=doc_choices(assistant), value=doc_id)
        return gr.Tabs(selected="viewer"), docs, q, (start, end), html

    app.load(on_load, None, [tabs, *outputs], show_progress="hidden", api_visibility="private")


def open_from_table(table: Any, tabs: Any, outputs: Sequence[Any], assistant: Assistant) -> None:
    """A click on a row of the Corpus tab's table opens that document in the Document tab."""

    def on_select(rows: Any, evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else int(evt.index)
        values = rows.values.tolist() if hasattr(rows, "values") else list(rows or [])
        if not 0 <= row < len(values):
            return tuple(gr.skip() for _ in range(5))
        doc_id = str(values[row][0])
        return gr.Tabs(selected="viewer"), doc_id, "", (None, None), view(assistant, doc_id)

    table.select(on_select, table, [tabs, *outputs], api_visibility="private")
