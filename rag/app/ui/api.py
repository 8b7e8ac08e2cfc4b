"""Named API endpoints for scripts (``gradio_client``): plain JSON in, the CLI's JSON out."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.exports import export_text
from rag.app.ui.widgets import filters_json, user_error
from rag.service import Assistant
from rag.types import Filters


def _filters(
    langs: list[str] | None, jurisdictions: list[str] | None, types: list[str] | None
) -> Filters:
    return Filters(langs=tuple(langs or ()), jurisdictions=tuple(jurisdictions or ()),
                   types=tuple(types or ()))  # fmt: skip


def register_api(assistant: Assistant) -> None:
    """``/ask``, ``/compare``, ``/search`` and ``/export``; call inside the Blocks. Every endpoint
    takes ``langs``, ``jurisdictions`` (``US`` also matches ``US-CO``) and ``types`` filters."""

    def api_ask(
        question: str,
        langs: list[str] | None = None,
        history: list[list[str]] | None = None,
        mode: str = "",
        jurisdictions: list[str] | None = None,
        types: list[str] | None = None,
    ) -> dict[str, Any]:
        """Cited answer (as `rag ask --json`); mode: "" (default), "extractive" or "llm"."""
        turns_ = [(q, a) for q, a in (history or [])]
        try:
            answer = assistant.ask(question, history=turns_, mode=mode or None,
                                   filters=_filters(langs, jurisdictions, types))  # fmt: skip
        except ValueError as exc:
            raise user_error(exc) from exc
        return answer.to_json()

    def api_search(
        query: str, k: int = 5, langs: list[str] | None = None,
        jurisdictions: list[str] | None = None, types: list[str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Ranked passages (the same object as `rag search --json`)."""
        try:
            f = _filters(langs, jurisdictions, types)
            return assistant.search(query, int(k), f).to_json()
        except ValueError as exc:
            raise user_error(exc) from exc

    def api_export(
        query: str, k: int = 10, langs: list[str] | None = None, fmt: str = "csv",
        jurisdictions: list[str] | None = None, types: list[str] | None = None,
    ) -> str:  # fmt: skip
        """The Search tab's export: the result set with full citations as CSV or JSON text."""
        try:
            f = _filters(langs, jurisdictions, types)
            result = assistant.search(query, int(k), f)
            return export_text({**result.to_json(), "filters": filters_json(f)}, fmt)
        except ValueError as exc:
            raise user_error(exc) from exc

    def api_compare(
        question: str,
        by: str = "jurisdiction",
        only: list[str] | None = None,
        langs: list[str] | None = None,
        mode: str = "",
        types: list[str] | None = None,
    ) -> dict[str, Any]:
        """One answer per jurisdiction, document type or language (as `rag compare --json`);
        by: "jurisdiction", "type" or "language"; only: these groups, in this order."""
        try:
            f = _filters(langs, None, types)
            result = assistant.compare(question, by=by, only=tuple(only or ()), filters=f,
                                       mode=mode or None)  # fmt: skip
            return result.to_json()
        except ValueError as exc:
            raise user_error(exc) from exc

    gr.api(api_ask, api_name="ask")
    gr.api(api_compare, api_name="compare")
    gr.api(api_export, api_name="export")
    gr.api(api_search, api_name="search")
