"""Batch search in the Search tab: upload a CSV or text file of terms (or paste them), run them
all with a progress bar, see one table of every hit and export it with full citations.

The batch runs in an event of its own with a concurrency limit of one (``BATCH_CONCURRENCY``):
a second batch waits in the queue, and questions and searches of other sessions keep their
own workers, so a 1,000-term batch does not hold up the app. **Stop** ends it after the term
being searched; what ran so far is shown and can be exported.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from rag.app.ui.cards import highlight, hit_card
from rag.app.ui.exports import batch_csv, batch_json, export_name, write_export
from rag.app.ui.widgets import (
    COPY_CITATION_JS,
    esc,
    export_row,
    filter_problem,
    filters_from,
    md_escape,
    warn_and_skip,
)
from rag.service import Assistant
from rag.service.batch import (
    COLUMNS,
    DEFAULT_K,
    FILTER_COLUMNS,
    MAX_TERMS,
    BatchFileError,
    BatchResult,
    read_terms,
    run_batch,
)
from rag.types import Hit

BATCH_CONCURRENCY = 1  # batches at once, over all sessions (their own queue, not the default 4)
SHOWN_ROWS = 2000  # rows in the table; the export holds every hit
PER_DOC_CHOICES = ["all", "1", "2", "3", "5", "10"]
HEADERS = ["term", "rank", "document", "jurisdiction", "language", "page", "passage", "score"]
HELP = (
    "Upload a **.csv** with a header row — a `term` column (or `query`, `question`) and, "
    f"optionally, {', '.join(f'`{c}`' for c in COLUMNS[3:])} — or a **.txt** with one term per "
    "line (UTF-8; a byte order mark is fine, empty rows are skipped). A row's own column "
    "replaces the shared filter of that field; several values go in one cell as `sv,nl`. "
    f"At most {MAX_TERMS:,} terms; one batch runs at a time and others wait their turn."
)
assert set(FILTER_COLUMNS) <= set(COLUMNS)


def per_doc_cap(choice: str | None, k: int) -> int:
    return k if not choice or choice == "all" else max(1, int(choice))


def batch_rows(result: BatchResult, limit: int = SHOWN_ROWS) -> list[list[Any]]:
    """The table: a row per hit (the passage with the term's words highlighted); a term without
    hits has one row saying why."""
    rows: list[list[Any]] = []
    for item in result.items:
        term, found = esc(item.term.term), item.result
        hits, lang = (found.hits, found.query_lang) if found else ((), "")
        if not hits:
            why = item.error or "no passage found"
            rows.append([term, None, "", "", "", None, f"<em>{esc(why)}</em>", None])
        for h in hits:
            text = h.text[:300] + ("…" if len(h.text) > 300 else "")
            doc = f"{esc(h.title)}<br><small>{esc(h.doc_id)}</small>"
            rows.append([term, h.rank, doc, h.jurisdiction, h.lang, h.page,
                         highlight(text, item.term.term, lang),
                         round(h.score, 3)])  # fmt: skip
        if len(rows) >= limit:
            break
    return rows[:limit]


def summary(result: BatchResult) -> str:
    done = f"{len(result.items):,} of {result.total:,} terms" if result.stopped else (
        f"{result.total:,} terms"
    )  # fmt: skip
    took = f"{result.hits:,} passages in {result.seconds:.1f} s"
    parts = [f"**{md_escape(result.file)}**: {done}, {took}"]
    if result.stopped:
        parts.append("stopped before the end")
    if result.errors:
        parts.append(f"{result.errors} term(s) refused (see their rows)")
    if result.hits + result.errors > SHOWN_ROWS:
        parts.append(f"the table shows the first {SHOWN_ROWS:,} rows, the export has all")
    return " · ".join(parts)


def _terms(path: str | None, pasted: str) -> tuple[list[Any], str]:
    if path:
        name = Path(path).name
        return read_terms(Path(path).read_bytes(), name), name
    if (pasted or "").strip():
        return read_terms(pasted, "pasted terms"), "pasted terms"
    raise BatchFileError("Upload a CSV or text file of terms, or paste terms one per line.")


def batch_panel(assistant: Assistant, filters: list[Any], cross: Any = None) -> None:
    """The batch accordion; ``filters`` are the shared filter boxes (lang, source, from, to,
    jurisdiction, type), which apply to every term; ``cross`` the Search tab's "Match across
    languages" checkbox (None: always across languages)."""
    stops: dict[str, threading.Event] = {}

    def run(path: str | None, pasted: str, k: float, per_doc: str, across: bool, langs: list[str],
            sources: list[str], date_from: str, date_to: str, jurisdictions: list[str] | None,
            types: list[str] | None, request: gr.Request,
            progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008  # fmt: skip
        if problem := filter_problem(date_from, date_to):
            return (*warn_and_skip(problem, 4), f"⚠️ {md_escape(problem)}")
        try:
            terms, name = _terms(path, pasted)
        except BatchFileError as exc:
            return (*warn_and_skip(str(exc), 4), f"⚠️ {md_escape(str(exc))}")
        session = request.session_hash or ""
        stop = stops[session] = threading.Event()

        def step(done: int, total: int) -> None:
            progress(done / total, desc=f"{done:,} / {total:,} terms")

        step(0, len(terms))

        f = filters_from(langs, sources, date_from, date_to, jurisdictions, types)
        search = functools.partial(assistant.search, cross_lingual=bool(across))
        try:
            result = run_batch(search, terms, k=int(k), filters=f, file=name,
                               per_doc=per_doc_cap(per_doc, int(k)), progress=step,
                               stop=stop.is_set)  # fmt: skip
        finally:
            stops.pop(session, None)
        return _shown(result, bool(across))

    def stop(request: gr.Request) -> str:
        if ev := stops.get(request.session_hash or ""):
            ev.set()
            return "Stopping after the current term…"
        return "No batch of yours is running."

    def select_row(state: dict[str, Any], evt: gr.SelectData) -> str:
        return _open_row(assistant, state, evt)

    with gr.Accordion("Batch search: a file of terms", open=False, elem_id="batch"):
        gr.Markdown(HELP)
        with gr.Row():
            upload = gr.File(label="CSV or text file", file_types=[".csv", ".tsv", ".txt"],
                             type="filepath", scale=2, elem_id="batch-file")  # fmt: skip
            pasted = gr.Textbox(label="…or paste terms, one per line", lines=4, scale=2,
                                elem_id="batch-paste")  # fmt: skip
            with gr.Column(scale=1):
                k = gr.Slider(1, 50, value=DEFAULT_K, step=1, label="Passages per term",
                              elem_id="batch-k")  # fmt: skip
                per_doc = gr.Dropdown(PER_DOC_CHOICES, value="3", label="Passages per document",
                                      elem_id="batch-per-doc")  # fmt: skip
        with gr.Row():
            go = gr.Button("Run batch", variant="primary", elem_id="batch-run")
            halt = gr.Button("Stop", elem_id="batch-stop")
        message = gr.Markdown(elem_id="batch-summary")
        table = gr.Dataframe(headers=HEADERS, datatype=["html", "number", "html", "str", "str",
                             "number", "html", "number"], interactive=False, wrap=True,
                             column_widths=["13%", "5%", "20%", "8%", "7%", "5%", "36%", "6%"],
                             max_height=600, elem_id="batch-results")  # fmt: skip
        state = gr.State({})
        detail = gr.HTML(elem_id="batch-detail", js_on_load=COPY_CITATION_JS)
        download = export_row("batch-", state, _export)
    across = gr.State(True) if cross is None else cross
    go.click(run, [upload, pasted, k, per_doc, across, *filters],
             [table, state, download, detail, message],
             concurrency_limit=BATCH_CONCURRENCY, concurrency_id="batch",
             api_visibility="private")  # fmt: skip
    halt.click(stop, None, message, queue=False, api_visibility="private")
    table.select(select_row, state, detail, api_visibility="private")


def _shown(result: BatchResult, across: bool) -> tuple[Any, ...]:
    """The panel after a batch: the table, its state (what the exports write), no file to
    download yet, no passage open, the summary."""
    state = {**result.to_json(), "cross_lingual": across, "name": Path(result.file).stem}
    return batch_rows(result), state, gr.update(value=None), None, summary(result)


def _export(state: dict[str, Any], fmt: str) -> Any:
    if not (state or {}).get("terms"):
        return warn_and_skip("Run a batch first.", 1)[0]
    name = export_name("batch", state.get("name", ""), fmt)
    data = {key: value for key, value in state.items() if key != "name"}
    text = batch_csv(data) if fmt == "csv" else batch_json(data)
    return write_export(name, text, bom=fmt == "csv")


def _open_row(assistant: Assistant, state: dict[str, Any], evt: gr.SelectData) -> str:
    """The selected row's passage in its document ("" for a term's "no passage" row)."""
    row = evt.index[0] if isinstance(evt.index, list | tuple) else int(evt.index)
    rows = _flat(state)
    hit = rows[row] if 0 <= row < len(rows) else None
    if hit is None:
        return ""
    return hit_card(assistant, Hit(**hit), "batch-detail-card", f"[{hit['rank']}]")


def _flat(state: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The table's rows as hits (None for a term's "no passage" row), to open a selected one."""
    rows: list[dict[str, Any] | None] = []
    for t in (state or {}).get("terms", []):
        rows.extend(t["hits"] or [None])
    return rows
