"""The Search tab: ranked passages with highlights, a passage viewer and CSV/JSON export."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from rag.app.ui.widgets import export_text, filters_from, highlight, hit_card
from rag.service import Assistant
from rag.types import Hit


def search_tab(assistant: Assistant, filters: list[Any]) -> None:
    """The tab's components and events; ``filters`` are the shared filter boxes."""

    def do_search(
        query: str, k: float, langs: list[str], sources: list[str], date_from: str, date_to: str
    ) -> tuple[Any, ...]:
        if not (query or "").strip():
            raise gr.Error("Type a query first.")
        try:
            result = assistant.search(
                query, int(k), filters_from(langs, sources, date_from, date_to)
            )
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        rows = [
            [h.rank, round(h.score, 3), html.escape(h.title), h.lang, h.date,
             highlight(h.text[:400] + ("…" if len(h.text) > 400 else ""), query, result.query_lang)]
            for h in result.hits
        ]  # fmt: skip
        detail = hit_card(assistant, result.hits[0], "detail", "[1]") if result.hits else (
            "<p>No passages match (check the filters).</p>"
        )  # fmt: skip
        return rows, detail, result.to_json()

    def select_row(state: dict[str, Any], evt: gr.SelectData) -> str:
        hits = (state or {}).get("hits", [])
        row = evt.index[0] if isinstance(evt.index, list | tuple) else int(evt.index)
        if not 0 <= row < len(hits):
            return ""
        h = Hit(**hits[row])
        return hit_card(assistant, h, "detail", f"[{h.rank}]")

    def export(state: dict[str, Any], fmt: str) -> str:
        hits = (state or {}).get("hits", [])
        if not hits:
            raise gr.Error("Run a search first.")
        folder = Path(tempfile.mkdtemp(prefix="govrag-export-"))
        path = folder / f"govrag-search.{'json' if fmt == 'json' else 'csv'}"
        with path.open("w", newline="", encoding="utf-8") as fh:
            fh.write(export_text(state, fmt))
        return str(path)

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
