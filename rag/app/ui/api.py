"""Named API endpoints for scripts (``gradio_client``): plain JSON in, the CLI's JSON out."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.exports import export_text
from rag.app.ui.widgets import filters_json, user_error
from rag.service import Assistant
from rag.types import Filters


def register_api(assistant: Assistant) -> None:
    """``/ask``, ``/search`` and ``/export``; call inside the Blocks."""

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
            raise user_error(exc) from exc
        return answer.to_json()

    def api_search(query: str, k: int = 5, langs: list[str] | None = None) -> dict[str, Any]:
        """Ranked passages (the same object as `rag search --json`)."""
        try:
            return assistant.search(query, int(k), Filters(langs=tuple(langs or ()))).to_json()
        except ValueError as exc:
            raise user_error(exc) from exc

    def api_export(
        query: str, k: int = 10, langs: list[str] | None = None, fmt: str = "csv"
    ) -> str:
        """The Search tab's export: the result set with full citations as CSV or JSON text."""
        try:
            f = Filters(langs=tuple(langs or ()))
            result = assistant.search(query, int(k), f)
            return export_text({**result.to_json(), "filters": filters_json(f)}, fmt)
        except ValueError as exc:
            raise user_error(exc) from exc

    gr.api(api_ask, api_name="ask")
    gr.api(api_export, api_name="export")
    gr.api(api_search, api_name="search")
