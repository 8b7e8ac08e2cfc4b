"""The Gradio app: Ask (chat with cited sources), Search (analysts' desk), Compare (one question
per jurisdiction), Corpus (documents), Document (one document whole, with the query's hits).

``build_app(assistant)`` returns the Blocks; ``launch(app, host, port)`` serves it with its CSS.
One module per tab (``ask``, ``search``, ``compare``, ``corpus``), the named API endpoints
(``api``) and what they share (``widgets``, source ``cards``, ``exports``). The only package that
imports gradio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from rag.app.ui.api import register_api
from rag.app.ui.ask import ask_tab
from rag.app.ui.compare import compare_tab
from rag.app.ui.corpus import Changes, corpus_tab, corpus_views
from rag.app.ui.files import corpus_route
from rag.app.ui.search import search_tab
from rag.app.ui.viewer import VIEWER_CSS, open_from_link, open_from_table, viewer_tab
from rag.app.ui.widgets import CSS, choices, filter_problem, md_escape, status
from rag.service import Assistant

REFRESH_SECONDS = 10  # how soon an open page shows a change made in another one
INDEXING_SECONDS = 2  # how often the status line follows the background build while it runs


def build_app(assistant: Assistant) -> gr.Blocks:
    """The whole UI around one shared Assistant (model and index load once per process)."""
    langs, sources, jurisdictions, types = choices(assistant)
    changes = Changes()
    with gr.Blocks(title="govrag") as app:
        gr.Markdown("## govrag — cited answers from AI-governance documents, in any language")
        status_md = gr.Markdown(status(assistant), elem_id="status")
        with gr.Accordion("Filters (apply to Ask, Search and Compare)", open=False):
            with gr.Row():
                f_lang = gr.CheckboxGroup(langs, label="Document languages", value=[],
                                          elem_id="filter-langs")  # fmt: skip
                f_source = gr.Dropdown(sources, multiselect=True, label="Sources", value=[],
                                       elem_id="filter-sources")  # fmt: skip
                f_from = gr.Textbox(label="From date", placeholder="YYYY[-MM[-DD]]",
                                    elem_id="filter-from")  # fmt: skip
                f_to = gr.Textbox(label="To date", placeholder="YYYY[-MM[-DD]]",
                                  elem_id="filter-to")  # fmt: skip
            with gr.Row():
                f_jur = gr.Dropdown(jurisdictions, multiselect=True, value=[],
                                    label="Jurisdictions (US also covers US-CA, US-CO)",
                                    elem_id="filter-jurisdictions")  # fmt: skip
                f_type = gr.Dropdown(types, multiselect=True, label="Document types", value=[],
                                     elem_id="filter-types")  # fmt: skip
            filter_msg = gr.Markdown("", elem_id="filter-msg")
        for box in (f_from, f_to):  # say what is wrong in the box's own words, as it is left
            for event in (box.blur, box.submit):
                event(lambda a, b: md_escape(filter_problem(a, b)), [f_from, f_to], filter_msg,
                      queue=False, show_progress="hidden", api_visibility="private")  # fmt: skip
        filters = [f_lang, f_source, f_from, f_to, f_jur, f_type]
        with gr.Tabs() as tabs:
            ask_tab(assistant, filters, filter_msg)
            search_tab(assistant, filters, filter_msg)
            compare_tab(assistant, filters, filter_msg)
            table, to_remove, changing = corpus_tab(assistant, changes)
            viewer = viewer_tab(assistant)
        open_from_link(app, assistant, tabs, viewer)
        open_from_table(table, tabs, viewer, assistant)
        _refresh_views(app, assistant, changes,
                       [status_md, f_lang, f_source, table, to_remove, f_jur, f_type],
                       changing)  # fmt: skip
        _follow_indexing(assistant, status_md)
        register_api(assistant)
    return app


def _refresh_views(
    app: gr.Blocks, assistant: Assistant, changes: Changes, views: list[Any], changing: list[Any]
) -> None:
    """Every page reads the corpus views from the index when it loads, after each change it makes,
    and within ``REFRESH_SECONDS`` of a change another page made or of a batch the background
    build committed."""
    seen = gr.State("")
    inputs, outputs = [views[1], views[2], views[4], views[5], views[6]], [seen, *views]

    def version() -> str:
        return f"{changes.seen}.{assistant.indexing.commits}.{assistant.indexing.running}"

    def refresh(langs: list[str], sources: list[str], removal: str | None,
                jurisdictions: list[str] | None = None,
                types: list[str] | None = None) -> tuple[Any, ...]:  # fmt: skip
        views = corpus_views(assistant, langs, sources, removal, jurisdictions, types)
        return (version(), *views)

    def refresh_if_changed(
        last: str, langs: list[str], sources: list[str], removal: str | None,
        jurisdictions: list[str] | None = None, types: list[str] | None = None,
    ) -> tuple[Any, ...]:  # fmt: skip
        if last == version():
            return tuple(gr.skip() for _ in outputs)
        return refresh(langs, sources, removal, jurisdictions, types)

    quiet: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
    app.load(refresh, inputs, outputs, **quiet)
    for event in changing:
        event.then(refresh, inputs, outputs, **quiet)
    gr.Timer(REFRESH_SECONDS).tick(
        refresh_if_changed, [seen, *inputs], outputs, queue=False, **quiet
    )


def _follow_indexing(assistant: Assistant, status_md: Any) -> None:
    """While the background build runs, the status line says how far it is ("Indexing 1,240 /
    9,800 passages…") every ``INDEXING_SECONDS``; each page's timer stops at its first tick
    after the build is done (or when none runs)."""
    timer = gr.Timer(INDEXING_SECONDS)

    def follow() -> tuple[str, Any]:
        return status(assistant), gr.Timer(active=assistant.indexing.running)

    timer.tick(follow, None, [status_md, timer], queue=False, show_progress="hidden",
               api_visibility="private")  # fmt: skip


def launch(
    app: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_upload_mb: float = 20.0,
    corpus_dir: Path | None = None,
    **kw: Any,
) -> None:
    """Serve ``app``: at most 4 requests at once; uploads over ``max_upload_mb`` are refused by
    Gradio before they reach its temp folder (``save_upload`` checks the size again); with
    ``corpus_dir``, its files are served read-only under ``/corpus/`` (citations link to them)."""
    routes = [corpus_route(corpus_dir)] if corpus_dir is not None else []
    app.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, css=CSS + VIEWER_CSS, show_error=True,
        max_file_size=int(max_upload_mb * 1024 * 1024), app_kwargs={"routes": routes}, **kw,
    )  # fmt: skip
