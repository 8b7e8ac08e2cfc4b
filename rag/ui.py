"""The Gradio app: Ask (chat with cited sources), Search (analysts' desk), Corpus (documents).

``build_app(assistant)`` returns the Blocks; ``launch(app, host, port)`` serves it with its CSS.
The only module that imports gradio. Every piece of document text and user input is HTML-escaped
before it is shown, so a corpus file holding ``<script>`` renders as text.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from rag.corpus import UPLOAD_SUFFIXES, LoadError, remove_file, save_upload
from rag.lexical import tokenize
from rag.pipeline import Assistant
from rag.retrieve import Filters
from rag.types import Answer, Hit

log = logging.getLogger(__name__)

# One per language, each answered from a document in another language except the Chinese one
# (checked against the shipped corpus: tests/test_real_model.py).
EXAMPLES = [
    "What did the Chinese embassy in the UK say?",
    "Welk AI-taalmodel bracht JD.com op de markt?",
    "Hur ser Singapore på EU:s AI-regler?",
    "Welche KI-Praktiken verbietet der AI Act der EU?",
    "Quel est le montant maximal des amendes pour les pratiques d'IA interdites ?",
    "深圳的人工智能产业促进条例什么时候开始施行？",
]

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


def _e(text: str) -> str:
    return html.escape(shown(text))


def _filters(langs: list[str] | None, sources: list[str] | None, date_from: str, date_to: str) -> (
    Filters
):  # fmt: skip
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


def _card(anchor: str, n_label: str, title: str, lang: str, meta: str, before: str, span: str,
          after: str, link: str) -> str:  # fmt: skip
    e = _e
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
            cards.append(_hit_card(assistant, h, f"closest-{i}", f"({i})"))
        return "\n".join(cards)
    for c in answer.citations:
        before, span, after = assistant.context(c.doc_id, c.start, c.end, margin=300)
        meta = " · ".join(x for x in (c.source, c.date, c.doc_id) if x)
        cards.append(
            _card(f"src-{c.n}", f"[{c.n}]", c.title, c.lang, meta, before, span, after,
                  c.url or f"corpus document {c.doc_id}, characters {c.start}–{c.end}")
        )  # fmt: skip
    return "\n".join(cards)


def _hit_card(assistant: Assistant, h: Hit, anchor: str, label: str) -> str:
    before, span, after = assistant.context(h.doc_id, h.start, h.end, margin=150)
    meta = " · ".join(x for x in (h.source, h.date, h.chunk_id) if x)
    return _card(anchor, label, h.title, h.lang, meta, before, span, after,
                 h.url or f"corpus document {h.doc_id}, characters {h.start}–{h.end}")  # fmt: skip


def highlight(text: str, query: str, lang: str) -> str:
    """Escape ``text`` and wrap words that share a BM25 term with the query in <mark>."""
    terms = set(tokenize(query, lang))
    out = []
    for part in re.split(r"(\w+)", text):
        esc = _e(part)
        hit = part and part[0].isalnum() and set(tokenize(part, lang)) & terms
        out.append(f"<mark>{esc}</mark>" if hit else esc)
    return "".join(out)


def build_app(assistant: Assistant) -> gr.Blocks:
    """The whole UI around one shared Assistant (model and index load once per process)."""
    index_lock = threading.Lock()

    def choices() -> tuple[list[str], list[str]]:
        try:
            docs = assistant.documents()
        except Exception:  # no index yet
            return [], []
        langs = sorted({d.lang for d, _ in docs if d.lang})
        sources = sorted({d.source for d, _ in docs if d.source})
        return langs, sources

    def status() -> str:
        try:
            docs = assistant.documents()
        except Exception as exc:
            return f"⚠️ {html.escape(str(exc))}"
        chunks = sum(n for _, n in docs)
        langs = ", ".join(sorted({d.lang for d, _ in docs}))
        return f"{len(docs)} documents · {chunks} passages · languages: {langs}"

    def respond(
        message: str,
        chat: list[dict[str, Any]],
        turns: list[list[str]],
        langs: list[str],
        sources: list[str],
        date_from: str,
        date_to: str,
        use_llm: bool = False,
    ) -> tuple[Any, ...]:
        message = (message or "").strip()
        if not message:
            return chat, gr.skip(), "", turns
        try:
            answer = assistant.ask(
                message, history=[(q, a) for q, a in turns],
                filters=_filters(langs, sources, date_from, date_to),
                mode=_mode(use_llm),
            )  # fmt: skip
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        chat = [*chat, {"role": "user", "content": md_escape(message)},
                {"role": "assistant", "content": answer_markdown(answer)}]  # fmt: skip
        return chat, sources_html(assistant, answer), "", [*turns, [message, answer.answer]]

    def _mode(use_llm: bool | None) -> str | None:
        if not assistant.llm_label:
            return None
        return "llm" if use_llm else "extractive"

    def do_search(
        query: str, k: float, langs: list[str], sources: list[str], date_from: str, date_to: str
    ) -> tuple[Any, ...]:
        if not (query or "").strip():
            raise gr.Error("Type a query first.")
        try:
            result = assistant.search(query, int(k), _filters(langs, sources, date_from, date_to))
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        rows = [
            [h.rank, round(h.score, 3), html.escape(h.title), h.lang, h.date,
             highlight(h.text[:400] + ("…" if len(h.text) > 400 else ""), query, result.query_lang)]
            for h in result.hits
        ]  # fmt: skip
        detail = _hit_card(assistant, result.hits[0], "detail", "[1]") if result.hits else (
            "<p>No passages match (check the filters).</p>"
        )  # fmt: skip
        return rows, detail, result.to_json()

    def select_row(state: dict[str, Any], evt: gr.SelectData) -> str:
        hits = (state or {}).get("hits", [])
        row = evt.index[0] if isinstance(evt.index, list | tuple) else int(evt.index)
        if not 0 <= row < len(hits):
            return ""
        h = Hit(**hits[row])
        return _hit_card(assistant, h, "detail", f"[{h.rank}]")

    def export(state: dict[str, Any], fmt: str) -> str:
        hits = (state or {}).get("hits", [])
        if not hits:
            raise gr.Error("Run a search first.")
        folder = Path(tempfile.mkdtemp(prefix="govrag-export-"))
        path = folder / f"govrag-search.{'json' if fmt == 'json' else 'csv'}"
        with path.open("w", newline="", encoding="utf-8") as fh:
            fh.write(export_text(state, fmt))
        return str(path)

    def corpus_table() -> list[list[Any]]:
        try:
            docs = assistant.documents()
        except Exception:
            return []
        return [[d.doc_id, d.title, d.lang, d.source, d.date, d.country, d.path, n]
                for d, n in docs]  # fmt: skip

    def file_choices() -> list[str]:
        return sorted({row[6] for row in corpus_table()})

    def reindex(progress: gr.Progress) -> str:
        def tick(stage: str, done: int, total: int) -> None:
            progress((done, max(total, 1)), desc=stage)

        with index_lock:
            report = assistant.ingest(progress=tick)
        lines = [
            f"Indexed {report.documents} documents, {report.chunks} passages "
            f"({len(report.files_added)} added, {len(report.files_changed)} changed, "
            f"{len(report.files_removed)} removed) in {report.seconds:.1f} s."
        ]
        lines += [f"Skipped {s.path}: {s.reason}" for s in report.skipped]
        return "\n".join(lines)

    def upload(files: list[Any] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        if not files:
            raise gr.Error("Choose one or more files first.")
        saved, refused = [], []
        for f in files:
            path = Path(getattr(f, "name", f))
            original = getattr(f, "orig_name", None) or path.name
            try:
                saved.append(save_upload(assistant.settings.corpus_dir, path, original,
                                         assistant.settings.max_upload_mb))  # fmt: skip
            except LoadError as exc:
                refused.append(str(exc))
        msg = "\n".join([f"Saved {s}" for s in saved] + [f"Refused {r}" for r in refused])
        if saved:
            msg += "\n" + reindex(progress)
        return msg, corpus_table(), gr.update(choices=file_choices()), status()

    def remove(rel: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        if not rel:
            raise gr.Error("Choose a file to remove.")
        try:
            remove_file(assistant.settings.corpus_dir, rel)
        except LoadError as exc:
            raise gr.Error(str(exc)) from exc
        msg = f"Removed {rel}\n" + reindex(progress)
        return msg, corpus_table(), gr.update(choices=file_choices(), value=None), status()

    langs, sources = choices()
    with gr.Blocks(title="govrag") as app:
        gr.Markdown("## govrag — cited answers from AI-governance documents, in any language")
        status_md = gr.Markdown(status())
        with gr.Accordion("Filters (apply to Ask and Search)", open=False), gr.Row():
            f_lang = gr.CheckboxGroup(langs, label="Document languages", value=[])
            f_source = gr.Dropdown(sources, multiselect=True, label="Sources", value=[])
            f_from = gr.Textbox(label="From date", placeholder="YYYY[-MM[-DD]]")
            f_to = gr.Textbox(label="To date", placeholder="YYYY[-MM[-DD]]")
        filters = [f_lang, f_source, f_from, f_to]
        with gr.Tab("Ask"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(label="Conversation", height=520, elem_id="chat")
                    turns = gr.State([])
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask in any language, e.g. What did the EU ask Japan?",
                            show_label=False, scale=5, elem_id="question",
                        )  # fmt: skip
                        send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-btn")
                    gr.Examples(EXAMPLES, inputs=question, label="Examples")
                    with gr.Row():
                        use_llm = gr.Checkbox(
                            value=bool(assistant.llm_label),
                            visible=bool(assistant.llm_label),
                            label=f"Write answers with the LLM ({assistant.llm_label}); "
                            "checked against the sources, verbatim quotes if a check fails",
                            elem_id="use-llm",
                        )
                        clear = gr.Button("New conversation", size="sm")
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    panel = gr.HTML("<p>Quotes and their passages appear here.</p>",
                                    elem_id="sources")  # fmt: skip
            ask_io = (
                [question, chat, turns, *filters, use_llm],
                [chat, panel, question, turns],
            )
            question.submit(respond, *ask_io, api_visibility="private")
            send.click(respond, *ask_io, api_visibility="private")
            clear.click(lambda: ([], [], "<p></p>"), None, [chat, turns, panel],
                        api_visibility="private")  # fmt: skip
        with gr.Tab("Search"):
            with gr.Row():
                query = gr.Textbox(label="Query", scale=5, elem_id="search-query")
                k = gr.Slider(1, 50, value=10, step=1, label="Passages", scale=2)
                go = gr.Button("Search", variant="primary", scale=1, elem_id="search-btn")
            results = gr.Dataframe(
                headers=["rank", "score", "title", "lang", "date", "passage"],
                datatype=["number", "number", "html", "str", "str", "html"],
                column_widths=["5%", "7%", "22%", "6%", "10%", "50%"],
                interactive=False, wrap=True, elem_id="results",
            )  # fmt: skip
            search_state = gr.State({})
            detail = gr.HTML(elem_id="detail")
            with gr.Row():
                csv_btn = gr.Button("Export CSV", elem_id="export-csv")
                json_btn = gr.Button("Export JSON", elem_id="export-json")
                download = gr.File(label="Export", interactive=False, elem_id="export-file")
            search_io = ([query, k, *filters], [results, detail, search_state])
            go.click(do_search, *search_io, api_visibility="private")
            query.submit(do_search, *search_io, api_visibility="private")
            results.select(select_row, search_state, detail, api_visibility="private")
            csv_btn.click(lambda s: export(s, "csv"), search_state, download,
                          api_visibility="private")  # fmt: skip
            json_btn.click(lambda s: export(s, "json"), search_state, download,
                           api_visibility="private")  # fmt: skip
        with gr.Tab("Corpus"):
            docs_table = gr.Dataframe(
                value=corpus_table(),
                headers=DOC_HEADERS,
                interactive=False,
                wrap=True,
                column_widths=["20%", "32%", "5%", "15%", "9%", "6%", "9%", "4%"],
            )
            gr.Markdown(
                "Add documents (.txt, .md, .html, .pdf, .docx; at most "
                f"{assistant.settings.max_upload_mb:g} MB each). They are saved under "
                "`corpus/uploads/` and indexed incrementally."
            )
            with gr.Row():
                files = gr.File(
                    file_count="multiple", label="Upload", file_types=list(UPLOAD_SUFFIXES),
                    elem_id="upload",
                )  # fmt: skip
                with gr.Column():
                    add_btn = gr.Button("Add and re-index", variant="primary", elem_id="add-btn")
                    to_remove = gr.Dropdown(file_choices(), value=None, label="Remove a file")
                    rm_btn = gr.Button("Remove and re-index", variant="stop")
            corpus_log = gr.Textbox(label="Log", lines=4, interactive=False, elem_id="corpus-log")
            add_btn.click(upload, files, [corpus_log, docs_table, to_remove, status_md],
                          api_visibility="private", concurrency_id="index")  # fmt: skip
            rm_btn.click(remove, to_remove, [corpus_log, docs_table, to_remove, status_md],
                         api_visibility="private", concurrency_id="index")  # fmt: skip

        # Named API endpoints for scripts (gradio_client): plain JSON in, the CLI's JSON out.
        def api_ask(
            question: str,
            langs: list[str] | None = None,
            history: list[list[str]] | None = None,
            mode: str = "",
        ) -> dict[str, Any]:
            """Cited answer (as `rag ask --json`); mode: "" (default), "extractive" or "llm"."""
            turns_ = [(q, a) for q, a in (history or [])]
            try:
                answer = assistant.ask(question, history=turns_, mode=mode or None,
                                       filters=Filters(langs=tuple(langs or ())))  # fmt: skip
            except ValueError as exc:
                raise gr.Error(str(exc)) from exc
            return answer.to_json()

        def api_search(query: str, k: int = 5, langs: list[str] | None = None) -> dict[str, Any]:
            """Ranked passages (the same object as `rag search --json`)."""
            return assistant.search(query, int(k), Filters(langs=tuple(langs or ()))).to_json()

        def api_export(
            query: str, k: int = 10, langs: list[str] | None = None, fmt: str = "csv"
        ) -> str:
            """The Search tab's export: the result set with full citations as CSV or JSON text."""
            try:
                result = assistant.search(query, int(k), Filters(langs=tuple(langs or ())))
                return export_text(result.to_json(), fmt)
            except ValueError as exc:
                raise gr.Error(str(exc)) from exc

        gr.api(api_ask, api_name="ask")
        gr.api(api_export, api_name="export")
        gr.api(api_search, api_name="search")
    return app


def launch(
    app: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_upload_mb: float = 20.0,
    **kw: Any,
) -> None:
    """Serve ``app``: at most 4 requests at once; uploads over ``max_upload_mb`` are refused by
    Gradio before they reach its temp folder (``save_upload`` checks the size again)."""
    app.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, css=CSS, show_error=True,
        max_file_size=int(max_upload_mb * 1024 * 1024), **kw,
    )  # fmt: skip
