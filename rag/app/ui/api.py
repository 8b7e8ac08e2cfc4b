"""Named API endpoints for scripts (``gradio_client``): plain JSON in, the CLI's JSON out."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.exports import export_text
from rag.app.ui.widgets import filters_json, user_error
from rag.service import Assistant
from rag.service.batch import read_terms, run_batch
from rag.service.saved import SavedSearches, searches_path
from rag.types import Filters


def _filters(
    langs: list[str] | None, jurisdictions: list[str] | None, types: list[str] | None
) -> Filters:
    return Filters(langs=tuple(langs or ()), jurisdictions=tuple(jurisdictions or ()),
                   types=tuple(types or ()))  # fmt: skip


def register_api(assistant: Assistant) -> None:
    """``/ask``, ``/compare``, ``/search``, ``/export``, ``/batch`` and ``/alerts``; call inside
    the Blocks. Every endpoint but ``/alerts`` takes ``langs``, ``jurisdictions`` (``US`` also
    matches ``US-CO``) and ``types`` filters."""

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
        cross_lingual: bool = True,
    ) -> dict[str, Any]:  # fmt: skip
        """Ranked passages (the same object as `rag search --json`); ``query`` takes the search
        syntax ("phrase", -word, a OR b, lang:sv, date:2023..2024, …); ``cross_lingual``: False
        for passages in the query's language only."""
        try:
            f = _filters(langs, jurisdictions, types)
            return assistant.search(query, int(k), f, cross_lingual=bool(cross_lingual)).to_json()
        except ValueError as exc:
            raise user_error(exc) from exc

    def api_export(
        query: str, k: int = 10, langs: list[str] | None = None, fmt: str = "csv",
        jurisdictions: list[str] | None = None, types: list[str] | None = None,
        cross_lingual: bool = True,
    ) -> str:  # fmt: skip
        """The Search tab's export: the result set with full citations as CSV or JSON text."""
        try:
            f = _filters(langs, jurisdictions, types)
            result = assistant.search(query, int(k), f, cross_lingual=bool(cross_lingual))
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
    register_desk_api(assistant)


def register_desk_api(assistant: Assistant) -> None:
    """``/batch`` (one at a time, in the Search tab's batch queue) and ``/alerts``."""

    def api_batch(
        terms: str, name: str = "terms.txt", k: int = 5, langs: list[str] | None = None,
        jurisdictions: list[str] | None = None, types: list[str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Batch search (as `rag batch --json`): ``terms`` is the text of a CSV (``name`` ending
        in .csv, with a header) or of a list, one term per line; one batch runs at a time."""
        try:
            f = _filters(langs, jurisdictions, types)
            result = run_batch(assistant.search, read_terms(terms, name), k=int(k), filters=f,
                               file=name)  # fmt: skip
            return result.to_json()
        except ValueError as exc:
            raise user_error(exc) from exc

    def api_alerts(mark_seen: bool = False) -> dict[str, Any]:
        """Every saved search run now (as `rag alerts --list --json`): its new hits since they
        were last seen; ``mark_seen`` marks them seen."""
        store = SavedSearches(searches_path(assistant.settings))
        checked = store.check(assistant.search)
        if mark_seen:
            store.mark_seen(checked)
        return {"file": str(store.path), "searches": len(checked),
                "alerts": [a.to_json() for a in checked]}  # fmt: skip

    gr.api(api_alerts, api_name="alerts")
    gr.api(api_batch, api_name="batch", concurrency_limit=1, concurrency_id="batch")
