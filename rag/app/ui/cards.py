"""Source cards: each quote highlighted in its passage, a longer context to expand, the document's
URL as a link (http and https only), a "Copy citation" button; search-term highlights.

Every piece of document text, metadata and user input goes through ``esc`` (HTML-escaped, bidi
controls dropped) before it is put into HTML, attribute values included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from rag.app.ui.files import file_url, viewer_link
from rag.app.ui.widgets import esc, shown
from rag.index.lexical import tokenize
from rag.ingest.chunking import sentence_spans
from rag.service import Assistant
from rag.types import Answer, Citation, Hit, page_at

MARGIN = 300  # characters shown around a quote
MORE = 1500  # characters around it under "More context"
HIT_MARGIN = 150  # around a whole passage


def link_html(url: str) -> str:
    """A link that opens the original in a new tab, for http(s) URLs only; any other URL
    (``javascript:``, ``data:``, a bare path) is shown as text."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return esc(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return esc(url)
    return f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{esc(url)}</a>'


def citation_text(
    quote: str, title: str, source: str, date: str, url: str, doc_id: str, page: object = ""
) -> str:
    """The publication form of a quote: “quote” — Title, Source, date, p. N. URL."""
    where = ", ".join(shown(x).strip() for x in (title, source, date) if x and x.strip())
    if page:
        where += f", p. {page}"
    tail = shown(url).strip() or f"(govrag corpus document {doc_id})"
    quoted = f"“{' '.join(shown(quote).split())}”"
    return f"{quoted} — {where}. {tail}" if where else f"{quoted} {tail}"


def cite(c: Citation) -> str:
    return citation_text(c.quote, c.title, c.source, c.date, c.url, c.doc_id, c.page or "")


def copy_button(text: str, label: str = "Copy citation") -> str:
    hint = "Copy this quote with its title, source, date and link"
    return (f'<button type="button" class="copy-cite" data-cite="{esc(text)}" '
            f'title="{hint}">{esc(label)}</button>')  # fmt: skip


def marked(text: str, spans: Sequence[tuple[int, int, int]], labels: bool) -> str:
    """``text`` escaped with each ``(start, end, n)`` span in <mark>; with ``labels`` each span is
    preceded by its ``[n]``, which is also its anchor (``#src-n``). Overlapping spans are cut
    where the previous one ends."""
    out, cursor = [], 0
    for start, end, n in sorted(spans):
        start = max(start, cursor)
        out.append(esc(text[cursor:start]))
        if labels:
            out.append(f'<span class="src-n" id="src-{n}">[{n}]</span>')
        if end > start:
            out.append(f"<mark>{esc(text[start:end])}</mark>")
        cursor = max(cursor, end)
    out.append(esc(text[cursor:]))
    return "".join(out)


def window(
    assistant: Assistant, doc_id: str, lo: int, hi: int, spans: Sequence[tuple[int, int, int]],
    margin: int, labels: bool,
) -> tuple[str, int]:  # fmt: skip
    """The text around ``[lo, hi)`` with the spans (relative to ``lo``) marked; and how many
    characters of context it shows."""
    before, span, after = assistant.context(doc_id, lo, hi, margin=margin)
    lead = "…" if len(before) >= margin else ""
    trail = "…" if len(after) >= margin else ""
    body = f"{lead}{esc(before)}{marked(span, spans, labels)}{esc(after)}{trail}"
    return body, len(before) + len(after)


def badges_html(src: Hit | Citation) -> str:
    """Language, jurisdiction, type, page and OCR as badges (escaped), each with a tooltip."""
    items = [("badge", src.lang, "language"), ("badge badge-j", src.jurisdiction, "jurisdiction"),
             ("badge badge-t", src.doc_type, src.status or "document type"),
             ("badge badge-p", f"p. {src.page}" if src.page else "", "page in the PDF"),
             ("badge badge-o", "OCR" if src.ocr else "",
              "read from page images by OCR: check the quote against the original")]  # fmt: skip
    return "".join(f'<span class="{cls}" title="{esc(tip)}">{esc(text)}</span>'
                   for cls, text, tip in items if text)  # fmt: skip


def links_html(src: Hit | Citation, lo: int, hi: int, query: str = "") -> str:
    """The document in the app's viewer at this span (with ``query``'s hits), the original
    online (http(s) only) and the corpus file, at its page for PDFs."""
    view = viewer_link(src.doc_id, lo, hi, query)
    parts = [f'<a href="{esc(view)}" target="_blank" rel="noopener noreferrer" '
             f'class="src-view">open in the viewer</a>']  # fmt: skip
    parts += [link_html(src.url)] if src.url else []
    if src.file:
        label = f"open {src.file}" + (f" at p. {src.page}" if src.page else "")
        parts.append(f'<a href="{esc(file_url(src.file, src.page))}" target="_blank" '
                     f'rel="noopener noreferrer" class="src-file">{esc(label)}</a>')  # fmt: skip
    if len(parts) == 1:
        parts.append(esc(f"corpus document {src.doc_id}, characters {lo}–{hi}"))
    return " · ".join(parts)


def translations_html(assistant: Assistant, src: Hit | Citation, limit: int = MORE) -> str:
    """The "Also in: nl" expanders: the same provision in the corpus's other languages (official
    translations linked in the catalog), each under its own expander."""
    out = []
    for doc_id in src.translations:
        try:
            doc = assistant.document(doc_id)
        except Exception:  # no index or a store error: the card shows without it
            doc = None
        if doc is None:
            continue
        text = doc.text if len(doc.text) <= limit else doc.text[:limit].rstrip() + "…"
        out.append(f'<details class="src-also"><summary>Also in: {esc(doc.lang)} — '
                   f'{esc(doc.title)}</summary><div class="src-text">{esc(text)}</div>'
                   f"</details>")  # fmt: skip
    return "".join(out)


def card_html(
    anchor: str, label: str, title: str, badges: str, meta: str, short: str, more: str,
    link: str, buttons: Sequence[str], also: str = "",
) -> str:  # fmt: skip
    """One card; ``badges``, ``short``, ``more``, ``link``, ``buttons`` and ``also`` are HTML
    already escaped."""
    idattr = f' id="{esc(anchor)}"' if anchor else ""
    details = (f'<details class="src-more"><summary>More context</summary>'
               f'<div class="src-text">{more}</div></details>') if more else ""  # fmt: skip
    return (
        f'<div class="src-card"{idattr}>'
        f'<div class="src-head">{esc(label)} {esc(title)}</div>'
        f'<div class="src-meta">{badges}{esc(meta)}</div>'
        f'<div class="src-text src-short">{short}</div>{details}{also}'
        f'<div class="src-link">{link}</div>'
        f'<div class="src-tools">{"".join(buttons)}</div></div>'
    )


def group_citations(citations: Sequence[Citation], gap: int = 2 * MARGIN) -> list[list[Citation]]:
    """Quotes of one document whose contexts would overlap share a card (no context shown
    twice); cards in the order of their first [n]."""
    groups: list[list[Citation]] = []
    by_doc: dict[str, list[Citation]] = {}
    for c in citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    for cs in by_doc.values():
        cs = sorted(cs, key=lambda c: (c.start, c.n))
        group, end = [cs[0]], cs[0].end
        for c in cs[1:]:
            if c.start - end > gap:
                groups.append(group)
                group = []
            group.append(c)
            end = max(end, c.end)
        groups.append(group)
    return sorted(groups, key=lambda g: min(c.n for c in g))


def citation_card(assistant: Assistant, group: Sequence[Citation]) -> str:
    first = min(group, key=lambda c: c.n)
    lo, hi = min(c.start for c in group), max(c.end for c in group)
    spans = [(c.start - lo, c.end - lo, c.n) for c in group]
    several = len(group) > 1
    short, seen = window(assistant, first.doc_id, lo, hi, spans, MARGIN, labels=several)
    more, more_seen = window(assistant, first.doc_id, lo, hi, spans, MORE, labels=False)
    by_n = sorted(group, key=lambda c: c.n)
    label = " ".join(f"[{c.n}]" for c in by_n)
    meta = " · ".join(x for x in (first.source, first.date, first.doc_id) if x)
    buttons = [copy_button(cite(c), f"Copy citation [{c.n}]" if several else "Copy citation")
               for c in by_n]  # fmt: skip
    return card_html("" if several else f"src-{first.n}", label, first.title,
                     badges_html(first), meta, short, more if more_seen > seen else "",
                     links_html(first, lo, hi), buttons,
                     translations_html(assistant, first))  # fmt: skip


def sources_html(assistant: Assistant, answer: Answer) -> str:
    """The sources panel: each citation's quote highlighted inside its surrounding passage (quotes
    from one stretch of a document in one card); for an abstention, the closest passages with
    their best-matching sentence highlighted."""
    if answer.abstained:
        query = answer.retrieval_query or answer.question
        cards = [f"<p>{esc(answer.answer)}</p>"]
        for i, h in enumerate(answer.closest, 1):
            best = best_sentence(h.text, query, h.lang, answer.question_lang)
            cards.append(hit_card(assistant, h, f"closest-{i}", f"({i})", best))
        return "\n".join(cards)
    return "\n".join(citation_card(assistant, g) for g in group_citations(answer.citations))


def best_sentence(text: str, query: str, lang: str, query_lang: str) -> tuple[int, int] | None:
    """The sentence of ``text`` sharing the most search terms with ``query`` (ties: the first),
    or None when none shares a term."""
    terms = set(tokenize(query, query_lang)) | set(tokenize(query, lang))
    best, best_score = None, 0
    for start, end in sentence_spans(text):
        score = len(set(tokenize(text[start:end], lang)) & terms)
        if score > best_score:
            best, best_score = (start, end), score
    return best


def hit_card(
    assistant: Assistant, h: Hit, anchor: str, label: str, part: tuple[int, int] | None = None,
    query: str = "",
) -> str:  # fmt: skip
    """A passage in its document: ``part`` (offsets in ``h.text``) highlighted, or all of it;
    its viewer link shows ``query``'s hits."""
    start, end = part or (0, h.end - h.start)
    spans = [(start, end, 0)]
    short, seen = window(assistant, h.doc_id, h.start, h.end, spans, HIT_MARGIN, labels=False)
    more, more_seen = window(assistant, h.doc_id, h.start, h.end, spans, MORE, labels=False)
    meta = " · ".join(x for x in (h.source, h.date, h.chunk_id) if x)
    quote = h.text[start:end]
    page = page_at(h.page_starts, h.start + start) if h.page_starts else h.page
    text = citation_text(quote, h.title, h.source, h.date, h.url, h.doc_id, page or "")
    return card_html(anchor, label, h.title, badges_html(h), meta, short,
                     more if more_seen > seen else "", links_html(h, h.start, h.end, query),
                     [copy_button(text)], translations_html(assistant, h))  # fmt: skip


def highlight(text: str, query: str, lang: str) -> str:
    """Escape ``text`` and wrap words that share a BM25 term with the query in <mark>."""
    terms = set(tokenize(query, lang))
    out = []
    for part in re.split(r"(\w+)", text):
        esc_part = esc(part)
        hit = part and part[0].isalnum() and set(tokenize(part, lang)) & terms
        out.append(f"<mark>{esc_part}</mark>" if hit else esc_part)
    return "".join(out)
