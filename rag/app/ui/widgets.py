"""What the tabs share: the CSS, escaping (every piece of document text and user input is
HTML-escaped before it is shown, so a corpus file holding ``<script>`` renders as text), the
filter boxes' values, the answer as chat markdown, source cards, highlights and exports."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
from typing import Any

from rag.index.lexical import tokenize
from rag.service import Assistant
from rag.types import Answer, Filters, Hit

log = logging.getLogger(__name__)

CSS = """
.src-card {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
  margin: 0 0 10px 0; background: var(--background-fill-secondary);}
.src-card:target {outline: 3px solid #f59e0b;}
.src-head {font-weight: 600; margin-bottom: 4px;}
.badge {display: inline-block; padding: 0 6px; border-radius: 6px; background: #2563eb; color: #fff;
  font-size: 0.8em; margin-right: 6px; text-transform: uppercase;}
.src-meta {color: var(--body-text-color-subdued); font-size: 0.85em; margin-bottom: 6px;}
.src-text {font-size: 0.92em; line-height: 1.45; white-space: pre-wrap;
  overflow-wrap: anywhere;}
.src-text mark {background: #fde68a; color: #111; padding: 0 1px;}
.src-link {font-size: 0.85em;}
"""

DOC_HEADERS = ["doc_id", "title", "lang", "source", "date", "country", "file", "passages"]
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


# Explicit bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): a document
# holding U+202E would otherwise reverse what follows it on screen (the [n] marker, metadata).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """Text as displayed: without bidi controls (the stored text and citations keep them)."""
    return _BIDI_CONTROLS.sub("", text)


def md_escape(text: str) -> str:
    """Text → markdown that shows exactly that text (no markup, no HTML, no bidi overrides)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(shown(text), quote=False))


def esc(text: str) -> str:
    return html.escape(shown(text))


def filters_from(
    langs: list[str] | None, sources: list[str] | None, date_from: str, date_to: str
) -> Filters:
    """The shared filter boxes' values as :class:`Filters`."""
    return Filters(
        langs=tuple(langs or ()), sources=tuple(sources or ()),
        date_from=(date_from or "").strip(), date_to=(date_to or "").strip(),
    )  # fmt: skip


_MARKER_MD = re.compile(r"\\\[(\d+)\\\]")  # an escaped [n] in md_escape output


def mode_label(answer: Answer) -> str:
    if answer.mode == "llm":
        return "LLM"
    return "extractive (verbatim quotes)"


def answer_markdown(answer: Answer) -> str:
    """The chat message with clickable [n] markers, then which mode answered and why."""
    footer = f"_Answered by: {mode_label(answer)}_" + (
        f" — {md_escape(answer.note)}" if answer.note else ""
    )
    if answer.abstained:
        return md_escape(answer.answer) + "\n\n" + footer
    if answer.mode == "llm":  # the model's prose, each [n] a link to its source card
        body = _MARKER_MD.sub(r"[\\[\1\\]](#src-\1)", md_escape(answer.answer))
        return body + "\n\n" + footer
    lead = md_escape(answer.answer.split("\n", 1)[0])
    blocks: dict[str, list[str]] = {}
    heads: dict[str, str] = {}
    for c in answer.citations:
        meta = ", ".join(x for x in (c.lang, c.date) if x)
        heads.setdefault(c.doc_id, f"**{md_escape(c.title)}** ({md_escape(meta)})")
        blocks.setdefault(c.doc_id, []).append(f"“{md_escape(c.quote)}” [\\[{c.n}\\]](#src-{c.n})")
    parts = [lead] + [heads[d] + "  \n" + " … ".join(qs) for d, qs in blocks.items()]
    return "\n\n".join([*parts, footer])


def export_text(result: dict[str, Any], fmt: str) -> str:
    """A search result (``SearchResult.to_json()``) as CSV (one row per hit, every citation field)
    or as the JSON object itself."""
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False, indent=2)
    if fmt != "csv":
        raise ValueError(f"export format must be 'csv' or 'json', got {fmt!r}")
    hits = result.get("hits", [])
    out = io.StringIO()
    if hits:
        writer = csv.DictWriter(out, fieldnames=list(hits[0]))
        writer.writeheader()
        writer.writerows(hits)
    return out.getvalue()


def card(anchor: str, n_label: str, title: str, lang: str, meta: str, before: str, span: str,
          after: str, link: str) -> str:  # fmt: skip
    e = esc
    return (
        f'<div class="src-card" id="{e(anchor)}">'
        f'<div class="src-head">{e(n_label)} {e(title)}</div>'
        f'<div class="src-meta"><span class="badge">{e(lang)}</span>{e(meta)}</div>'
        f'<div class="src-text">…{e(before)}<mark>{e(span)}</mark>{e(after)}…</div>'
        f'<div class="src-link">{e(link)}</div></div>'
    )


def sources_html(assistant: Assistant, answer: Answer) -> str:
    """The sources panel: each citation's quote highlighted inside its surrounding passage."""
    cards = []
    if answer.abstained:
        cards.append(f"<p>{html.escape(answer.answer)}</p>")
        for i, h in enumerate(answer.closest, 1):
            cards.append(hit_card(assistant, h, f"closest-{i}", f"({i})"))
        return "\n".join(cards)
    for c in answer.citations:
        before, span, after = assistant.context(c.doc_id, c.start, c.end, margin=300)
        meta = " · ".join(x for x in (c.source, c.date, c.doc_id) if x)
        cards.append(
            card(f"src-{c.n}", f"[{c.n}]", c.title, c.lang, meta, before, span, after,
                  c.url or f"corpus document {c.doc_id}, characters {c.start}–{c.end}")
        )  # fmt: skip
    return "\n".join(cards)


def hit_card(assistant: Assistant, h: Hit, anchor: str, label: str) -> str:
    before, span, after = assistant.context(h.doc_id, h.start, h.end, margin=150)
    meta = " · ".join(x for x in (h.source, h.date, h.chunk_id) if x)
    return card(anchor, label, h.title, h.lang, meta, before, span, after,
                 h.url or f"corpus document {h.doc_id}, characters {h.start}–{h.end}")  # fmt: skip


def highlight(text: str, query: str, lang: str) -> str:
    """Escape ``text`` and wrap words that share a BM25 term with the query in <mark>."""
    terms = set(tokenize(query, lang))
    out = []
    for part in re.split(r"(\w+)", text):
        esc_part = esc(part)
        hit = part and part[0].isalnum() and set(tokenize(part, lang)) & terms
        out.append(f"<mark>{esc_part}</mark>" if hit else esc_part)
    return "".join(out)


def status(assistant: Assistant) -> str:
    """The line under the title: documents, passages and languages of the index."""
    try:
        docs = assistant.documents()
    except Exception as exc:
        return f"⚠️ {html.escape(str(exc))}"
    chunks = sum(n for _, n in docs)
    langs = ", ".join(sorted({d.lang for d, _ in docs}))
    return f"{len(docs)} documents · {chunks} passages · languages: {langs}"


def choices(assistant: Assistant) -> tuple[list[str], list[str]]:
    """The languages and sources of the index, for the filter boxes."""
    try:
        docs = assistant.documents()
    except Exception:  # no index yet
        return [], []
    langs = sorted({d.lang for d, _ in docs if d.lang})
    sources = sorted({d.source for d, _ in docs if d.source})
    return langs, sources
