"""The Gradio app: Ask (chat with cited sources), Search (analysts' desk), Corpus (documents).

``build_app(assistant)`` returns the Blocks; ``launch(app, host, port)`` serves it with its CSS.
One module per tab (``ask``, ``search``, ``corpus``), the named API endpoints (``api``) and what
they share (``widgets``). The only package that imports gradio.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.api import register_api
from rag.app.ui.ask import ask_tab
from rag.app.ui.corpus import corpus_tab
from rag.app.ui.search import search_tab
from rag.app.ui.widgets import CSS, choices, status
from rag.service import Assistant


def build_app(assistant: Assistant) -> gr.Blocks:
    """The whole UI around one shared Assistant (model and index load once per process)."""
    langs, sources = choices(assistant)
    with gr.Blocks(title="govrag") as app:
        gr.Markdown("## govrag — cited answers from AI-governance documents, in any language")
        status_md = gr.Markdown(status(assistant))
        with gr.Accordion("Filters (apply to Ask and Search)", open=False), gr.Row():
            f_lang = gr.CheckboxGroup(langs, label="Document languages", value=[])
            f_source = gr.Dropdown(sources, multiselect=True, label="Sources", value=[])
            f_from = gr.Textbox(label="From date", placeholder="YYYY[-MM[-DD]]")
            f_to = gr.Textbox(label="To date", placeholder="YYYY[-MM[-DD]]")
        filters = [f_lang, f_source, f_from, f_to]
        ask_tab(assistant, filters)
        search_tab(assistant, filters)
        corpus_tab(assistant, status_md)
        register_api(assistant)
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
