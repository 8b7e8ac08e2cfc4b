"""The Search tab: ranked passages with highlights, a passage viewer and CSV/JSON export."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.batch import batch_panel
from rag.app.ui.cards import highlight, hit_card
from rag.app.ui.exports import export_name, export_text, write_export
from rag.app.ui.saved import saved_panel
from rag.app.ui.widgets import (
    COPY_CITATION_JS,
    esc,
    export_row,
    filter_problem,
    filters_from,
    filters_json,
    md_escape,
    warn_and_skip,
)
from rag.search.query_syntax import parse
from rag.service import Assistant
from rag.types import Filters, Hit, SearchResult

PER_DOC_CHOICES = ["all", "1", "2", "3", "5", "10"]
SYNTAX_HELP = """\
| write | finds |
|---|---|
| `AI liability rules` | passages about it, in any language (semantic, as before) |
| `"high-risk AI system"` | only passages that contain the exact phrase (case and spacing ignored; \
if none does, its words are searched and you are told) |
| `-ChatGPT`, `-"open source"` | leaves out passages that contain the word or phrase |
| `ChatGPT OR "generative AI"` | passages for either side (OR binds the terms next to it) |
| `lang:sv`, `jurisdiction:CN`, `type:law`, `doc:eu_ai_act`, `source:reuters` | \
only those documents (`lang:sv,nl`: either) |
| `date:2023`, `date:2023..2024`, `date:2023-05..` | documents dated in that year or range |

Phrases and exclusions are exact: whole words in Latin script, any substring in Chinese and
Japanese. Field filters narrow the Filters above; if they exclude each other you are told.
"Match across languages" off keeps passages in the query's language (or in `lang:`).
Open a passage in the **Document** tab ("open in the viewer") to see every hit in its document.
"""
SCORE_NOTE = (
    "**score** = how well a passage matches the query, before language balancing; the **rank** "
    "also balances languages, so a passage with a lower score can rank above one with a higher "
    "score."
)


def per_doc_cap(choice: str | None, k: int) -> int:
    """The Search tab's "Passages per document" choice as ``per_doc`` (``all``: no cap)."""
    return k if not choice or choice == "all" else max(1, int(choice))


def query_words(query: str) -> str:
    """The words and phrases of a query in the search syntax, without its operators and field
    filters (what the results highlight)."""
    try:
        parsed = parse(query)
    except ValueError:
        return query
    return " ".join([*parsed.phrases, *parsed.words])


def result_rows(result: SearchResult, query: str) -> list[list[Any]]:
    query = query_words(query)
    return [
        [h.rank, round(h.score, 3), esc(h.title), h.lang, h.date,
         highlight(h.text[:400] + ("…" if len(h.text) > 400 else ""), query, result.query_lang)]
        for h in result.hits
    ]  # fmt: skip


def run_search(
    assistant: Assistant, query: str, k: int, per_doc: str | None, f: Filters,
    cross_lingual: bool = True,
) -> tuple[SearchResult, dict[str, Any]]:  # fmt: skip
    """The search and what its export records: the result, the filters and the per-document
    choice it ran with."""
    result = assistant.search(query, k, f, per_doc=per_doc_cap(per_doc, k),
                              cross_lingual=cross_lingual)  # fmt: skip
    return result, {**result.to_json(), "filters": filters_json(f),
                    "per_document": per_doc or "all", "cross_lingual": cross_lingual}  # fmt: skip


def search_tab(assistant: Assistant, filters: list[Any], filter_msg: Any) -> None:
    """The tab's components and events; ``filters`` are the shared filter boxes and
    ``filter_msg`` the line under them that says what is wrong with them."""

    def do_search(
        query: str, k: float, per_doc: str, cross: bool, langs: list[str], sources: list[str],
        date_from: str, date_to: str, jurisdictions: list[str] | None = None,
        types: list[str] | None = None,
    ) -> tuple[Any, ...]:  # fmt: skip
        if not (query or "").strip():
            return warn_and_skip("Type a query first.", 6)
        if problem := filter_problem(date_from, date_to):
            return (*warn_and_skip(problem, 5, filter_msg=True), gr.skip())
        f = filters_from(langs, sources, date_from, date_to, jurisdictions, types)
        try:
            result, state = run_search(assistant, query, int(k), per_doc, f, bool(cross))
        except ValueError as exc:  # bad syntax says what is wrong, under the box and in a toast
            return (*warn_and_skip(str(exc), 5), f"⚠ {md_escape(str(exc))}")
        detail = hit_card(assistant, result.hits[0], "detail", "[1]", query=query) if (
            result.hits
        ) else "<p>No passages match (check the query and the filters).</p>"  # fmt: skip
        # A new search never offers the previous search's file; the note says when a phrase was
        # searched as words.
        note = f"ℹ {md_escape(result.note)}" if result.note else ""
        return result_rows(result, query), detail, state, gr.update(value=None), "", note

    def select_row(state: dict[str, Any], evt: gr.SelectData) -> str:
        hits = (state or {}).get("hits", [])
        row = evt.index[0] if isinstance(evt.index, list | tuple) else int(evt.index)
        if not 0 <= row < len(hits):
            return ""
        h = Hit(**hits[row])
        return hit_card(assistant, h, "detail", f"[{h.rank}]", query=state.get("query", ""))

    def export(state: dict[str, Any], fmt: str) -> Any:
        if not (state or {}).get("hits"):
            return warn_and_skip("Run a search first.", 1)[0]
        name = export_name("search", state.get("query", ""), fmt)
        return write_export(name, export_text(state, fmt), bom=fmt == "csv")

    with gr.Tab("Search"):
        with gr.Row():
            query = gr.Textbox(label="Query", scale=5, elem_id="search-query")
            k = gr.Slider(1, 50, value=10, step=1, label="Passages", scale=2)
            per_doc = gr.Dropdown(PER_DOC_CHOICES, value="all", label="Passages per document",
                                  scale=1, elem_id="per-doc")  # fmt: skip
            go = gr.Button("Search", variant="primary", scale=1, elem_id="search-btn")
        with gr.Row():
            cross = gr.Checkbox(True, label="Match across languages (off: only passages in the "
                                "query's language)", elem_id="cross-lingual")  # fmt: skip
            syntax_msg = gr.Markdown("", elem_id="syntax-msg")
        with gr.Accordion("Search syntax", open=False, elem_id="syntax-help"):
            gr.Markdown(SYNTAX_HELP)
        results = gr.Dataframe(
            headers=["rank", "score", "title", "lang", "date", "passage"],
            datatype=["number", "number", "html", "str", "str", "html"],
            column_widths=["5%", "7%", "22%", "6%", "10%", "50%"],
            interactive=False, wrap=True, max_height=600, elem_id="results",
        )  # fmt: skip
        gr.Markdown(SCORE_NOTE, elem_id="score-note")
        search_state = gr.State({})
        detail = gr.HTML(elem_id="detail", js_on_load=COPY_CITATION_JS)
        download = export_row("", search_state, export)
        batch_panel(assistant, filters, cross)  # rag/app/ui/batch.py
        saved_panel(assistant, query, k, per_doc, filters, go, cross)  # rag/app/ui/saved.py
        search_io = ([query, k, per_doc, cross, *filters],
                     [results, detail, search_state, download, filter_msg, syntax_msg])  # fmt: skip
        go.click(do_search, *search_io, api_visibility="private")
        query.submit(do_search, *search_io, api_visibility="private")
        results.select(select_row, search_state, detail, api_visibility="private")
