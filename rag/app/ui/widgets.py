"""What the tabs share: the CSS and the copy scripts, escaping (every piece of document text and
user input is HTML-escaped before it is shown, so a corpus file holding ``<script>`` renders as
text), the filter boxes' values and their messages, the answer as chat markdown, and the status
line. Source cards live in ``cards``, files to download in ``exports``."""

from __future__ import annotations

import html
import logging
import re
from typing import Any

import gradio as gr

from rag.ingest.uploads import date_problem
from rag.service import Assistant
from rag.service.staging import Indexing
from rag.types import Answer, Document, Filters

log = logging.getLogger(__name__)

CSS = """
.src-card {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
  margin: 0 0 10px 0; background: var(--background-fill-secondary);}
.src-card:target, .src-card:has(.src-n:target) {outline: 3px solid #f59e0b;}
.src-n:target + mark {outline: 2px solid #f59e0b;}
.src-head {font-weight: 600; margin-bottom: 4px;}
.badge {display: inline-block; padding: 0 6px; border-radius: 6px; background: #2563eb; color: #fff;
  font-size: 0.8em; margin-right: 6px; text-transform: uppercase;}
.badge-j {background: #047857;} .badge-t {background: #6d28d9; text-transform: none;}
.badge-p {background: #475569; text-transform: none;} .badge-o {background: #b45309;}
.src-also summary {cursor: pointer; font-size: 0.85em; color: var(--link-text-color);
  margin: 4px 0;}
.src-meta {color: var(--body-text-color-subdued); font-size: 0.85em; margin-bottom: 6px;}
.src-text {font-size: 0.92em; line-height: 1.45; white-space: pre-wrap;
  overflow-wrap: anywhere;}
.src-text mark {background: #fde68a; color: #111; padding: 0 1px;}
.src-n {font-size: 0.75em; font-weight: 600; color: #b45309; margin-right: 2px;}
.src-card:has(details[open]) .src-short {display: none;}
.src-more summary {cursor: pointer; font-size: 0.85em; color: var(--link-text-color);
  margin: 4px 0;}
.src-link {font-size: 0.85em; overflow-wrap: anywhere;}
.src-tools {display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px;}
.copy-cite {font-size: 0.8em; padding: 1px 8px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary);
  color: var(--body-text-color);}
#filter-msg, #filter-msg p {color: var(--error-text-color, #b91c1c);}
"""

# Copy to the clipboard; ``execCommand`` where the page is not a secure context (plain http on
# a LAN address has no ``navigator.clipboard``).
_COPY = """
const govragCopy = (text) => {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const t = document.createElement('textarea');
  t.value = text; t.style.position = 'fixed'; t.style.left = '-9999px';
  document.body.appendChild(t); t.select(); document.execCommand('copy'); t.remove();
  return Promise.resolve();
};
"""
# The sources panel's js_on_load: one listener for every "Copy citation" button it will hold.
COPY_CITATION_JS = (
    _COPY
    + """
element.addEventListener('click', (ev) => {
  const b = ev.target.closest('.copy-cite');
  if (!b) return;
  const label = b.textContent;
  govragCopy(b.dataset.cite).then(() => {
    b.textContent = 'Copied';
    setTimeout(() => { b.textContent = label; }, 1500);
  });
});
"""
)
# The "Copy answer" button's js: its input is the answer as plain text.
COPY_TEXT_JS = "(text) => {" + _COPY + "govragCopy(text || ''); return []; }"

DOC_HEADERS = ["doc_id", "title", "lang", "jurisdiction", "type", "source", "date", "file",
               "passages"]  # fmt: skip
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


# Explicit bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): a document
# holding U+202E would otherwise reverse what follows it on screen (the [n] marker, metadata).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def export_row(prefix: str, state: Any, export: Any) -> Any:
    """The Export CSV / Export JSON buttons and the file they offer (ids ``{prefix}export-csv``,
    ``-json``, ``-file``), wired to ``export(state, fmt)``; returns the file component."""
    with gr.Row():
        csv_btn = gr.Button("Export CSV", elem_id=f"{prefix}export-csv")
        json_btn = gr.Button("Export JSON", elem_id=f"{prefix}export-json")
        download = gr.File(label="Export", interactive=False, elem_id=f"{prefix}export-file")
    for btn, fmt in ((csv_btn, "csv"), (json_btn, "json")):
        btn.click(lambda s, fmt=fmt: export(s, fmt), state, download, api_visibility="private")
    return download


def shown(text: str) -> str:
    """Text as displayed: without bidi controls (the stored text and citations keep them)."""
    return _BIDI_CONTROLS.sub("", text)


def md_escape(text: str) -> str:
    """Text → markdown that shows exactly that text (no markup, no HTML, no bidi overrides)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(shown(text), quote=False))


def esc(text: str) -> str:
    return html.escape(shown(text))


def filter_problem(date_from: str, date_to: str) -> str:
    """What is wrong with the filter boxes' dates, for a person ("" when nothing is)."""
    problems = [
        f"{label}: {problem}"
        for label, value in (("From date", date_from), ("To date", date_to))
        if (value or "").strip() and (problem := date_problem(value))
    ]
    return " ".join(problems)


def filters_from(
    langs: list[str] | None, sources: list[str] | None, date_from: str, date_to: str,
    jurisdictions: list[str] | None = None, types: list[str] | None = None,
) -> Filters:  # fmt: skip
    """The shared filter boxes' values as :class:`Filters` (check ``filter_problem`` first)."""
    return Filters(
        langs=tuple(langs or ()), sources=tuple(sources or ()),
        jurisdictions=tuple(jurisdictions or ()), types=tuple(types or ()),
        date_from=(date_from or "").strip(), date_to=(date_to or "").strip(),
    )  # fmt: skip


def filters_json(f: Filters) -> dict[str, object]:
    """The filters a search ran with, for its export."""
    return {"langs": list(f.langs), "sources": list(f.sources),
            "jurisdictions": list(f.jurisdictions), "types": list(f.types),
            "date_from": f.date_from, "date_to": f.date_to}  # fmt: skip


def user_error(exc: Exception) -> gr.Error:
    """A user's mistake as the error an API caller sees: one WARNING line in the server log,
    no traceback (Gradio prints one for every error unless told not to)."""
    log.warning("refused: %s", exc)
    return gr.Error(str(exc), print_exception=False)


def warn_and_skip(message: str, n_outputs: int, filter_msg: bool = False) -> tuple[Any, ...]:
    """Say what is wrong in a toast (a warning, not an error: no red overlay over the page) and
    leave every output as it is; with ``filter_msg`` the last output, the line under the filter
    boxes, shows the message too."""
    log.warning("refused: %s", message)  # one line in the server log, no traceback
    gr.Warning(message)
    if filter_msg:
        return (*(gr.skip() for _ in range(n_outputs - 1)), md_escape(message))
    return tuple(gr.skip() for _ in range(n_outputs))


_MARKER_MD = re.compile(r"\\\[(\d+)\\\]")  # an escaped [n] in md_escape output


def mode_label(answer: Answer) -> str:
    if answer.mode == "llm":
        return "LLM"
    return "extractive (verbatim quotes)"


def searched_for(answer: Answer) -> str:
    """The query retrieval ran with when it is not the question as typed (a resolved follow-up)."""
    query = " ".join(answer.retrieval_query.split())
    return query if query and query != " ".join(answer.question.split()) else ""


def answer_markdown(answer: Answer) -> str:
    """The chat message with clickable [n] markers, what was searched for when that is not the
    question, then which mode answered and why."""
    footer = f"_Answered by: {mode_label(answer)}_" + (
        f" — {md_escape(answer.note)}" if answer.note else ""
    )
    if query := searched_for(answer):
        footer = f"_Searched for: {md_escape(query)}_  \n{footer}"
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


def status(assistant: Assistant, docs: list[tuple[Document, int]] | None = None) -> str:
    """The line under the title: documents, passages and languages of the index; how far the
    background build of ``rag serve`` is while it runs (or why it stopped); and "loading the
    model" while the background warm-up runs (the first answer waits)."""
    building = assistant.indexing
    if building.running or building.error:
        return indexing_line(building)
    if not assistant.ready:
        return "⏳ Loading the model and the index… (the first answer waits until they are in)"
    try:
        docs = assistant.documents() if docs is None else docs
    except Exception as exc:
        return f"⚠️ {html.escape(str(exc))}"
    chunks = sum(n for _, n in docs)
    langs = md_escape(", ".join(sorted({d.lang for d, _ in docs})))
    return f"{len(docs)} documents · {chunks} passages · languages: {langs}"


_BUILD_STAGES = {  # what the background build does before the number of passages is known
    "loading model": "loading the model",
    "language means": "computing the language means (once per machine)",
    "embedding": "embedding the first passages",
}


def indexing_line(s: Indexing) -> str:
    """The status line while the background build runs: "Indexing 1,240 / 9,800 passages…" (or
    what it does before that number is known), and what questions are answered from; or why it
    stopped."""
    if s.error:
        where = (f"answers come from the {s.indexed:,} passages indexed so far" if s.indexed
                 else "nothing is indexed yet")  # fmt: skip
        return (f"⚠️ Indexing stopped: {md_escape(s.error)} — {where}. Restart the app (or run "
                "`rag ingest`) to index the rest.")  # fmt: skip
    if s.total:
        head = f"⏳ Indexing {s.embedded:,} / {s.total:,} passages…"
    else:
        what = _BUILD_STAGES.get(s.stage, "reading the corpus")
        if s.stage == "reading" and s.files:
            what += f" ({s.files_read:,} / {s.files:,} files)"
        head = f"⏳ Building the index: {what}…"
    if s.indexed:
        return f"{head} answers come from the {s.indexed:,} passages indexed so far."
    return f"{head} questions are answered as soon as the first passages are in."


def choices(
    assistant: Assistant, docs: list[tuple[Document, int]] | None = None
) -> tuple[list[str], list[str], list[str], list[str]]:
    """The languages, sources, jurisdictions (each country also stands for its subdivisions:
    ``US`` next to ``US-CA`` and ``US-CO``) and document types of the index, for the filter
    boxes."""
    try:
        docs = assistant.documents() if docs is None else docs
    except Exception:  # no index yet
        return [], [], [], []
    langs = sorted({d.lang for d, _ in docs if d.lang})
    sources = sorted({d.source for d, _ in docs if d.source})
    codes = {d.jurisdiction for d, _ in docs if d.jurisdiction}
    jurisdictions = sorted(codes | {c.split("-")[0] for c in codes})
    types = sorted({d.doc_type for d, _ in docs if d.doc_type})
    return langs, sources, jurisdictions, types
